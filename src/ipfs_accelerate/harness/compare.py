"""Numeric comparison: parity against CPU, batch-vs-single rows, and flat-output detection.

Tolerances are keyed by (backend, precision); a registry entry may override one with a reason.
The fp32 defaults follow transformers' export tests and optimum-intel (atol 1e-4); reduced
precisions widen as those projects do.
"""

from __future__ import annotations

import numpy as np

from ..registry import ModelSpec, Tolerance
from ..results.schema import BatchCheck, OutputParity, Parity

# (backend, precision) -> (atol, rtol, min_cosine)
TOLERANCES: dict[tuple[str, str], tuple[float, float, float]] = {
    ("cpu", "fp32"): (0.0, 0.0, 1.0),
    ("cpu", "bf16"): (3e-2, 3e-2, 0.995),
    ("openvino", "fp32"): (1e-4, 1e-3, 0.99999),
    ("openvino", "default"): (5e-2, 5e-2, 0.99),
    ("cuda", "fp32"): (1e-4, 1e-3, 0.99999),
    ("cuda", "fp16"): (1.6e-2, 1.6e-2, 0.999),
    ("cuda", "bf16"): (3e-2, 3e-2, 0.995),
}
FLAT_STD = 1e-6  # an output whose spread is below this proves nothing under an absolute tolerance


def tolerance(spec: ModelSpec, backend: str, precision: str) -> tuple[float, float, float, str]:
    base_precision = precision.split("(")[0]
    override: Tolerance | None = spec.tolerances.get(f"{backend}:{base_precision}") or spec.tolerances.get(backend)
    atol, rtol, cos = TOLERANCES.get((backend, base_precision), (1e-4, 1e-3, 0.99999))
    if override:
        return override.atol, override.rtol, override.min_cosine or cos, override.reason
    return atol, rtol, cos, ""


# A difference that is not a number (shape mismatch, inf against a finite value, NaN) is recorded
# as HUGE: result files are strict JSON, where inf/NaN become null and fail schema validation.
HUGE = 1e308


def absdiff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in float64 where equal values (masked -inf logits included) differ by 0 and
    anything non-finite that is not equal counts as HUGE."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(a - b)
    d[a == b] = 0.0
    d[~np.isfinite(d)] = HUGE
    return d


def is_flat(ref: np.ndarray) -> bool:
    return ref.dtype.kind == "f" and ref.size > 1 and float(np.std(ref.astype(np.float64))) < FLAT_STD


def compare_arrays(name: str, actual: np.ndarray, ref: np.ndarray, atol: float, rtol: float, min_cos: float) -> OutputParity:
    if actual.shape != ref.shape:
        return OutputParity(name=name, max_abs=HUGE, max_rel=HUGE, cosine=0.0, ok=False)
    a = actual.astype(np.float64).ravel()
    b = ref.astype(np.float64).ravel()
    diff = absdiff(a, b)
    finite = np.isfinite(a) & np.isfinite(b)
    a, b = np.where(finite, a, 0.0), np.where(finite, b, 0.0)
    max_abs = float(diff.max()) if diff.size else 0.0
    with np.errstate(over="ignore"):
        max_rel = min(HUGE, float((diff / np.maximum(np.abs(b), 1e-12)).max())) if diff.size else 0.0
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cosine = float(a @ b / (na * nb)) if na > 0 and nb > 0 else float(na == nb)
    if ref.dtype.kind in "iub":
        ok = bool(np.array_equal(actual, ref))
    else:
        ok = bool(np.all(diff <= atol + rtol * np.abs(b))) and (cosine >= min_cos or max_abs <= atol)
    return OutputParity(name=name, max_abs=max_abs, max_rel=max_rel, cosine=cosine, ok=ok, flat=is_flat(ref))


def parity(
    actual: dict[str, np.ndarray],
    ref: dict[str, np.ndarray],
    tokens: np.ndarray | None,
    ref_tokens: np.ndarray | None,
    tol: tuple[float, float, float, str],
) -> Parity:
    atol, rtol, min_cos, reason = tol
    rows = []
    for name, r in ref.items():
        if name not in actual:
            rows.append(OutputParity(name=name, max_abs=HUGE, max_rel=HUGE, cosine=0.0, ok=False))
            continue
        rows.append(compare_arrays(name, actual[name], r, atol, rtol, min_cos))
    tokens_match = None if ref_tokens is None else bool(tokens is not None and np.array_equal(tokens, ref_tokens))
    ok = all(r.ok for r in rows) and tokens_match is not False
    return Parity(atol=atol, rtol=rtol, min_cosine=min_cos, tolerance_reason=reason, outputs=rows, tokens_match=tokens_match, ok=ok)


def batch_vs_single(
    batch_out: dict[str, np.ndarray],
    singles: list[dict[str, np.ndarray]],
    batch_tokens: np.ndarray | None,
    single_tokens: list[np.ndarray | None],
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> BatchCheck:
    """Row i of every batch-leading output must equal single run i within tolerance."""
    n = len(singles)
    worst = 0.0
    ok = True
    flat = []
    compared = 0
    for name, value in batch_out.items():
        if value.ndim == 0 or value.shape[0] != n or any(name not in s for s in singles):
            continue
        if any(s[name].ndim == 0 or s[name].shape[0] != 1 for s in singles):
            continue  # not batch-leading (e.g. RF-DETR's per-layer states): its first dim only equals n by chance
        # dual encoders' text i x image j (CLIP: logits_per_*; PE Audio: logits_audio_text)
        pairwise = (name.startswith("logits_per_") or (name.startswith("logits_") and name.endswith("_text"))) and value.shape == (n, n)
        # seam(multimodal): (n, n, ...) in the batch but (1, 1, ...) alone is pairwise too (X-CLIP's
        # text embeddings conditioned on each video: videos x texts x dim)
        pairwise |= value.ndim > 2 and value.shape[1] == n and all(s[name].shape[:2] == (1, 1) for s in singles)
        for i, single in enumerate(singles):
            row = value[i : i + 1, i : i + 1] if pairwise else value[i : i + 1]  # pair i alone is the diagonal
            ref = single[name]
            if row.shape != ref.shape:
                ok = False
                worst = HUGE
                continue
            compared += 1
            d = absdiff(row, ref)
            worst = max(worst, float(d.max()) if d.size else 0.0)
            with np.errstate(invalid="ignore", over="ignore"):
                bound = atol + rtol * np.nan_to_num(np.abs(ref.astype(np.float64)), posinf=0.0)
            ok &= bool(np.all(d <= bound))
        if is_flat(value):
            flat.append(name)
    if compared == 0:
        ok = False
    tokens_match = None
    if batch_tokens is not None:
        tokens_match = all(
            t is not None and np.array_equal(batch_tokens[i : i + 1], t) for i, t in enumerate(single_tokens)
        )
        ok &= tokens_match
    return BatchCheck(batch_size=n, max_abs=worst, ok=bool(ok), flat_outputs=flat, tokens_match=tokens_match)
