"""Expected-results fingerprints: compact numbers describing a case's CPU outputs.

A fingerprint holds, per output, shape, dtype, mean/std/min/max and the first few values, plus
generated token ids. It is committed under ``test/expected_results/<model>.<task>.json`` and a
run compares against it with tolerances; a mismatch fails with a readable diff. Only an explicit
update (``--update-expected``) rewrites it, atomically.
"""

from __future__ import annotations

import json
import os  # noqa: F401  (tests spy on fp.os.replace, which results._io calls)
from pathlib import Path

import numpy as np

from ..results._io import write_atomic  # seam(history-2): the one atomic write
from ..results.schema import ArrayStats, Fingerprint

HEAD = 4
RTOL = 1e-3
ATOL = 1e-4


def _round(x: float) -> float:
    return float(f"{x:.7g}")


def stats(value: np.ndarray) -> ArrayStats:
    out = ArrayStats(shape=list(value.shape), dtype=str(value.dtype))
    if value.size and value.dtype.kind in "fiub":
        v = value.astype(np.float64)
        out.mean, out.std = _round(v.mean()), _round(v.std())
        out.min, out.max = _round(v.min()), _round(v.max())
        out.head = [_round(x) for x in v.ravel()[:HEAD]]
    return out


def make(model: str, task: str, arrays: dict[str, np.ndarray], tokens: np.ndarray | None, source: str = "tiny-random") -> Fingerprint:
    return Fingerprint(
        model=model,
        task=task,
        source=source,
        outputs={k: stats(v) for k, v in arrays.items()},
        tokens=None if tokens is None else tokens.astype(int).tolist(),
    )


def path_for(expected_dir: Path, model: str, task: str) -> Path:
    return Path(expected_dir) / f"{model}.{task}.json"


def load(path: Path) -> Fingerprint | None:
    if not path.exists():
        return None
    return Fingerprint.model_validate_json(path.read_text(encoding="utf-8"))


def save(path: Path, fp: Fingerprint) -> None:
    write_atomic(path, json.dumps(fp.model_dump(), indent=1, sort_keys=True) + "\n")


def _close(a: float | None, b: float | None, scale: float) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= ATOL * max(1.0, scale) + RTOL * abs(b)


def diff(expected: Fingerprint, actual: Fingerprint) -> list[str]:
    """Human-readable differences; empty when the fingerprints agree within tolerance."""
    lines: list[str] = []
    for name in sorted(set(expected.outputs) | set(actual.outputs)):
        e, a = expected.outputs.get(name), actual.outputs.get(name)
        if e is None or a is None:
            lines.append(f"output {name!r}: {'missing' if a is None else 'unexpected'} (expected {e and e.shape}, got {a and a.shape})")
            continue
        if e.shape != a.shape or e.dtype != a.dtype:
            lines.append(f"output {name!r}: shape/dtype {a.shape} {a.dtype} != expected {e.shape} {e.dtype}")
            continue
        scale = max(abs(e.min or 0.0), abs(e.max or 0.0), e.std or 0.0)
        for field in ("mean", "std", "min", "max"):
            ev, av = getattr(e, field), getattr(a, field)
            if not _close(av, ev, scale):
                lines.append(f"output {name!r}: {field} {av} != expected {ev}")
        if len(e.head) != len(a.head) or not all(_close(x, y, scale) for x, y in zip(a.head, e.head, strict=False)):
            lines.append(f"output {name!r}: first values {a.head} != expected {e.head}")
    if expected.tokens != actual.tokens:
        lines.append(f"tokens {actual.tokens} != expected {expected.tokens}")
    return lines


def check(expected_dir: Path, model: str, task: str, actual: Fingerprint, update: bool) -> tuple[str, str]:
    """The expected-results verdict for one case, for model and diffusion cases alike:
    ('match'|'mismatch'|'missing'|'updated', diff or path). Only `update` rewrites the file."""
    path = path_for(expected_dir, model, task)
    if update:
        save(path, actual)
        return "updated", str(path)
    expected = load(path)
    if expected is None:
        return "missing", f"no expected results at {path}; run with --update-expected to create them"
    lines = diff(expected, actual)
    return ("mismatch", "\n".join(lines)) if lines else ("match", "")
