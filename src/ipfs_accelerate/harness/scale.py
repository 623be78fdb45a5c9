"""`--scale full`: the real architecture at a real size, with seeded random weights, offline.

Tiny models prove an architecture computes the right numbers; their latency says nothing about
production. A model built at its reference configuration with random weights has the compute and
memory of the real one (optimum-benchmark's no-weights idea), so that is what `full` builds:
the config class's defaults, the registry entry's non-size settings, then the named reference
size below (data, one row per registry name; a name without a row gets the config defaults).

Before anything is allocated the model is built on the `meta` device: parameters are counted
exactly and the memory the case would need is estimated; a case that would not fit the budget
is skipped with both numbers instead of starting an allocation that would OOM the worker.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from ..registry import ModelSpec, TaskSpec
from . import assets
from .build import Built, _merge, config_class, head_class, seeded_init

SCALES = ("tiny", "full")


@dataclass(frozen=True)
class Reference:
    """A published model size: its name, its parameter count, and the config fields that make it."""

    name: str
    params_m: float  # published parameter count, millions (the head the registry builds by default)
    config: dict[str, Any] = field(default_factory=dict)


# Fields the registry's tiny overrides may set that full scale must not inherit.
_SIZE_FIELDS = {
    "image_size", "patch_size", "max_source_positions", "max_target_positions", "num_labels",
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
}

REFERENCES: dict[str, Reference] = {
    "bert": Reference("bert-base-uncased", 110.0),
    "gpt2": Reference("gpt2", 124.0),
    "t5": Reference("t5-small", 60.5),
    "vit": Reference("vit-base-patch16-224", 86.0, {"image_size": 224, "patch_size": 16}),
    "whisper": Reference("whisper-tiny", 37.8, {"max_source_positions": 1500, "max_target_positions": 448}),
    # Llama-3.2-1B's shape (tied embeddings); `llama` at config defaults is the 7B of Llama 2
    "llama": Reference(
        "llama-3.2-1b", 1236.0,
        {"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
         "intermediate_size": 8192, "vocab_size": 128256, "tie_word_embeddings": True, "head_dim": 64},
    ),
}
# Reference sizes we also know but do not build by default (`full_config(..., reference=...)`).
NAMED: dict[str, Reference] = {
    "whisper-base": Reference("whisper-base", 72.6, {
        "d_model": 512, "encoder_layers": 6, "decoder_layers": 6, "encoder_attention_heads": 8,
        "decoder_attention_heads": 8, "encoder_ffn_dim": 2048, "decoder_ffn_dim": 2048,
        "max_source_positions": 1500, "max_target_positions": 448}),
    "llama-7b": Reference("llama-2-7b", 6738.0),
}

# Bytes needed per fp32 parameter byte, by backend: weights, plus what preparing it copies.
# OpenVINO: the torch model + the traced/converted graph's constants + the compiled model, and
# NNCF's compressed copy while it is made. Measured on bert-base here (see bench/bench_scale.py).
MEMORY_FACTOR = {"cpu": 1.3, "cuda": 1.3, "openvino": 4.0}
ACTIVATION_MARGIN_MB = 512.0


def _non_size(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _SIZE_FIELDS}


def full_config(spec: ModelSpec, task_spec: TaskSpec | None = None, reference: str | None = None):
    """Config defaults + the registry's non-size settings + the reference size; no cache."""
    cls = config_class(spec)
    ref = NAMED[reference] if reference else REFERENCES.get(spec.name)
    kwargs = _non_size(spec.config)
    if task_spec is not None:
        kwargs = _merge(kwargs, _non_size(task_spec.config))
    if ref is not None:
        kwargs = _merge(kwargs, ref.config)
    kwargs["use_cache"] = False
    config = cls(**kwargs)
    if config.model_type != spec.name:
        raise AssertionError(f"registry entry {spec.name!r} built config of type {config.model_type!r}")
    return config


@dataclass(frozen=True)
class Estimate:
    params: int
    weights_mb: float
    need_mb: float
    budget_mb: float
    reference: str

    @property
    def fits(self) -> bool:
        return self.need_mb <= self.budget_mb

    def reason(self) -> str:
        return (
            f"{self.reference} at full scale needs ~{self.need_mb:,.0f} MB ({self.params / 1e6:,.0f} M params, "
            f"{self.weights_mb:,.0f} MB fp32 weights) but the budget is {self.budget_mb:,.0f} MB"
        )


def count_params_meta(spec: ModelSpec, task_spec: TaskSpec, config: Any = None) -> int:
    """Exact parameter count (tied weights once) from a model built on `meta`: allocates nothing."""
    import torch

    config = config if config is not None else full_config(spec, task_spec)
    with torch.device("meta"):
        model = head_class(task_spec)(config)
    return sum(p.numel() for p in model.parameters())


def budget_mb() -> float:
    """Memory this worker may still use: available RAM, capped by the runner's per-worker cap
    (`IPFS_ACCEL_MAX_MEMORY_MB`, minus what the worker already holds)."""
    import psutil

    avail = psutil.virtual_memory().available / 2**20
    cap = os.environ.get("IPFS_ACCEL_MAX_MEMORY_MB")
    if cap:
        rss = psutil.Process().memory_info().rss / 2**20
        avail = min(avail, float(cap) - rss)
    return max(avail, 0.0)


def estimate(spec: ModelSpec, task_spec: TaskSpec, hardware: str, budget: float | None = None,
             reference: str | None = None) -> Estimate:
    config = full_config(spec, task_spec, reference)
    params = count_params_meta(spec, task_spec, config)
    weights = params * 4 / 2**20
    need = weights * MEMORY_FACTOR.get(hardware, 1.3) + ACTIVATION_MARGIN_MB
    ref = NAMED[reference].name if reference else (REFERENCES[spec.name].name if spec.name in REFERENCES else f"{spec.name} (config defaults)")
    return Estimate(params, weights, need, budget_mb() if budget is None else budget, ref)


def gate_full(spec: ModelSpec, task_spec: TaskSpec, hardware: str) -> str:
    """'' when the full-size case fits this worker's memory budget, else the skip reason."""
    est = estimate(spec, task_spec, hardware)
    return "" if est.fits else est.reason()


def build_full(spec: ModelSpec, task_spec: TaskSpec, *, seed: int = 0) -> Built:
    """The full-size model with seeded weights (same per-parameter init as tiny models)."""
    import torch

    start = time.perf_counter()
    config = full_config(spec, task_spec)
    torch.manual_seed(seed)
    model = head_class(task_spec)(config)
    seeded_init(model, seed=seed, std=spec.init_std)
    model.eval()
    if spec.patches:
        from .patches import apply

        model = apply(spec.patches, model, config)
    return Built(
        model=model,
        config=model.config,
        tokenizer=assets.tokenizer(),
        build_s=time.perf_counter() - start,
        params=sum(p.numel() for p in model.parameters()),
        source="full-random",
        extras={"reference": REFERENCES[spec.name].name if spec.name in REFERENCES else "config-defaults"},
    )


# ---- benchmark at full scale (called from Case.measure_variants after its batch sweep) ----------
SEQ_SWEEP = (32, 128)  # prompt lengths at batch 1 (the batch sweep runs at the task's own length)
BENCH_TIME_S = 20.0  # per measurement: warm-up and runs stop once it is spent


def lengthen(inputs: dict[str, Any], seq: int) -> dict[str, Any]:
    """The same prompt tiled to `seq` tokens: every (batch, length) input that shares the prompt's
    length grows along it (the fixed prompts are shorter than real sequence lengths)."""
    import numpy as np

    base = inputs["input_ids"].shape[1]
    out = {}
    for k, v in inputs.items():
        if k != "decoder_input_ids" and v.ndim == 2 and v.shape[1] == base:
            v = np.tile(v, (1, -(-seq // base)))[:, :seq]
        out[k] = v
    return out


def full_benchmark(case: Any) -> list[Any]:
    """Sequence sweep, time to first token and tokens/s, threads; on OpenVINO the precisions
    (f32, device default, int8, int4) with speed-up vs PyTorch f32 and accuracy cost."""
    from ..hardware.backends import get_backend
    from . import trackers

    m, s = case.metrics, case.settings
    m.scale = "full"
    m.reference = case.built.extras.get("reference", "")
    m.threads = s.threads
    prepared = case.prepared
    timer = trackers.timer_for(prepared.device if case.hardware == "cuda" else case.hardware)
    # greedy loops: causal / seq2seq generation, and seq2seq speech recognition (whisper)
    generation = case.task.skill == "generation" or "decoder_input_ids" in case.single_inputs

    def timed(fn: Any) -> Any:
        return trackers.measure(fn, warmup=s.warmup, runs=s.runs, max_time_s=BENCH_TIME_S, timer=timer)

    if case.task.skill in ("text", "generation"):
        for seq in SEQ_SWEEP:
            inputs = lengthen(case.single_inputs, seq)
            m.seq_latency[f"1x{seq}"] = timed(lambda i=inputs: case.skill.run(prepared, i, case.built, case.task))
    if generation:
        # first token = one forward over the prompt; tokens/s over the whole greedy loop (batch 1)
        m.ttft_ms = timed(lambda: prepared(case.single_inputs)).p50_ms
        if m.latency is not None and m.latency.p50_ms > 0:
            m.tokens_per_s = case.skill.new_tokens(case.task) * 1000.0 / m.latency.p50_ms
    if case.hardware == "cuda":  # fp16 / bf16 vs this GPU's own fp32 (the case's latency)
        base = m.latency.p50_ms if m.latency is not None else 0.0
        return [cuda_variant(case, p, base, timed) for p in ("fp16", "bf16")]
    if case.hardware != "openvino":
        return []
    torch_f32 = get_backend("cpu", threads=s.threads).prepare(case.built.model, case.single_inputs, [])
    torch_p50 = timed(lambda: case.skill.run(torch_f32, case.single_inputs, case.built, case.task)).p50_ms
    return [precision_variant(case, name, torch_p50, timed) for name in ("fp32", "default", "int8", "int4")]


def precision_variant(case: Any, name: str, torch_p50: float, timed: Any) -> Any:
    """Convert (once per case, memoised on it), compress, compile and measure one precision."""
    import numpy as np

    from ..hardware.backends import ov_precision
    from ..hardware.backends.openvino import OpenVINOBackend
    from ..results.schema import PrecisionVariant
    from . import compare
    from .trackers import MemoryTracker

    plan = ov_precision.PLANS[name]
    backend = OpenVINOBackend(threads=case.settings.threads)
    names = list(case.reference["single"].arrays)
    with MemoryTracker() as mem:
        if not hasattr(case, "_ov_f32"):
            case._ov_f32 = backend._convert(case.built.model, case.skill.example(case.built, case.task), names)
        ov_model, path, order = case._ov_f32
        start = time.perf_counter()
        model = ov_precision.compress(ov_model, plan)
        prepared = backend._compile(model, path, order, names, plan.inference)
        prepare_s = time.perf_counter() - start
    ref = case.reference["single"]
    got = case.skill.run(prepared, case.single_inputs, case.built, case.task)
    rows = [compare.compare_arrays(k, got.arrays[k], v, 0, 0, 0) for k, v in ref.arrays.items() if k in got.arrays]
    cosine = min((r.cosine for r in rows), default=1.0)
    agreement = None
    if ref.tokens is not None and got.tokens is not None:
        agreement = float(np.mean(got.tokens == ref.tokens))
    ok = cosine >= plan.min_cosine and (agreement is None or agreement >= plan.min_token_agreement)
    lat = timed(lambda: case.skill.run(prepared, case.single_inputs, case.built, case.task))
    return PrecisionVariant(
        precision=prepared.precision if name == "default" else name,
        max_abs=max((r.max_abs for r in rows), default=0.0),
        cosine=cosine,
        tokens_match=None if agreement is None else agreement == 1.0,
        p50_ms=lat.p50_ms,
        speedup_vs_torch=torch_p50 / lat.p50_ms if lat.p50_ms > 0 else None,
        min_cosine=plan.min_cosine,
        ok=ok,
        token_agreement=agreement,
        compressed_nodes=ov_precision.compressed_nodes(model),
        size_mb=ov_precision.size_on_disk_mb(model),
        prepare_s=prepare_s,
        prepare_peak_mb=mem.peak_mb,
        latency=lat,
    )


def cuda_variant(case: Any, precision: str, fp32_p50: float, timed: Any) -> Any:
    """PyTorch at fp16/bf16 on the GPU, from a copy of the model (casting in place would change
    the fp32 model the other stages share), vs the CPU fp32 reference outputs."""
    import copy

    import numpy as np

    from ..hardware.backends import get_backend
    from ..results.schema import PrecisionVariant
    from . import compare

    _, _, min_cos, _ = compare.tolerance(case.spec, "cuda", precision)
    prepared = get_backend("cuda", precision=precision).prepare(copy.deepcopy(case.built.model), case.single_inputs, [])
    ref = case.reference["single"]
    got = case.skill.run(prepared, case.single_inputs, case.built, case.task)
    rows = [compare.compare_arrays(k, got.arrays[k], v, 0, 0, 0) for k, v in ref.arrays.items() if k in got.arrays]
    cosine = min((r.cosine for r in rows), default=1.0)
    agreement = None if ref.tokens is None or got.tokens is None else float(np.mean(got.tokens == ref.tokens))
    lat = timed(lambda: case.skill.run(prepared, case.single_inputs, case.built, case.task))
    return PrecisionVariant(
        precision=precision, max_abs=max((r.max_abs for r in rows), default=0.0), cosine=cosine,
        tokens_match=None if agreement is None else agreement == 1.0, p50_ms=lat.p50_ms,
        speedup_vs_torch=fp32_p50 / lat.p50_ms if lat.p50_ms > 0 and fp32_p50 > 0 else None,
        min_cosine=min_cos, ok=cosine >= min_cos, token_agreement=agreement, latency=lat,
    )
