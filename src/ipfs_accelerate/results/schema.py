"""Result records (pydantic): one per (model, task, hardware, precision) case, and a run file.

Runner, reports and the generated tests all read and write these; `SCHEMA_VERSION` changes only
with a migration note.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class Record(BaseModel):
    """Base of every result model. Validators are built at first use or by `run.build_validators`,
    not at import: the runner starts its workers first, then pays pydantic (~0.3 s) meanwhile."""

    model_config = ConfigDict(defer_build=True)



from .status import Status  # noqa: E402  (the one vocabulary; re-exported for the models below)


class Latency(Record):
    """Latency summary in milliseconds over `n` timed runs after `warmup` runs."""

    n: int
    warmup: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    samples_ms: list[float] = Field(default_factory=list)  # the timed runs, so run-to-run comparisons are statistical
    stopped_by: str = ""  # seam(scale): the clock, and whether the count or the time budget ended the runs
    steady: bool | None = None  # seam(scale): warm-up ended with its last 3 times within 10 % (None: too few)


class ArrayStats(Record):
    shape: list[int]
    dtype: str
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    head: list[float] = Field(default_factory=list)


class Fingerprint(Record):
    """Compact CPU fingerprint of one case's outputs, committed under test/expected_results."""

    model: str
    task: str
    source: str = "tiny-random"
    outputs: dict[str, ArrayStats]
    tokens: list[list[int]] | None = None

    def digest(self) -> str:
        """Short stable hash of the outputs: run history compares it to find fingerprint drift."""
        import hashlib
        import json

        body = json.dumps({"outputs": {k: v.model_dump() for k, v in self.outputs.items()}, "tokens": self.tokens},
                          sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]


class OutputParity(Record):
    name: str
    max_abs: float
    max_rel: float
    cosine: float
    ok: bool
    flat: bool = False


class Parity(Record):
    """Backend outputs vs CPU on identical inputs."""

    reference: str = "cpu"
    atol: float
    rtol: float
    min_cosine: float
    tolerance_reason: str = ""
    outputs: list[OutputParity] = Field(default_factory=list)
    tokens_match: bool | None = None
    ok: bool = False


class BatchCheck(Record):
    """Batch result vs single results, row by row."""

    batch_size: int
    max_abs: float
    ok: bool
    flat_outputs: list[str] = Field(default_factory=list)
    tokens_match: bool | None = None


class PrecisionVariant(Record):
    """Another precision of the same prepared model (e.g. OpenVINO's default), vs CPU fp32."""

    precision: str
    max_abs: float | None = None  # None only when the variant could not run (see error)
    cosine: float | None = None
    tokens_match: bool | None = None
    p50_ms: float | None = None
    error: str = ""  # seam(lead): why this precision could not be compiled or run (e.g. a native crash)
    # seam(scale): benchmark fields (--scale full): speed-up vs PyTorch f32 p50 on the same input,
    # the precision's tolerance and verdict, greedy-token agreement, and the compression oracle
    speedup_vs_torch: float | None = None
    min_cosine: float | None = None
    ok: bool | None = None
    token_agreement: float | None = None
    compressed_nodes: int | None = None
    size_mb: float | None = None
    prepare_s: float | None = None
    prepare_peak_mb: float | None = None
    latency: Latency | None = None  # seam(scale): the variant's own measurement (its spread)


class CacheUse(Record):
    """One artifact-cache lookup by a case's stage (issue 12). status: hit, miss, replaced (the
    entry failed CID verification: evicted and rebuilt), off (--no-cache), error (cache unusable)."""

    stage: str
    status: Literal["hit", "miss", "replaced", "off", "error"]
    cid: str = ""
    bytes: int = 0
    build_s: float = 0.0
    saved_s: float = 0.0
    detail: str = ""


class Metrics(Record):
    build_s: float | None = None
    prepare_s: float | None = None
    first_inference_ms: float | None = None
    latency: Latency | None = None
    batch_latency: dict[str, Latency] = Field(default_factory=dict)
    throughput_per_s: dict[str, float] = Field(default_factory=dict)
    peak_rss_mb: float | None = None
    cuda_max_allocated_mb: float | None = None
    params: int | None = None
    # seam(scale): full-scale benchmark context
    scale: str = "tiny"
    reference: str = ""
    threads: int | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    seq_latency: dict[str, Latency] = Field(default_factory=dict)  # "batch x seq" -> latency
    cache: list[CacheUse] = Field(default_factory=list)  # seam(cache): artifact-cache lookups


class CaseResult(Record):
    model: str
    task: str
    category: str
    hardware: str
    precision: str = "fp32"
    source: str = "tiny-random"
    status: Status
    reason: str = ""
    device: str = ""
    conversion: str = ""
    metrics: Metrics = Field(default_factory=Metrics)
    parity: Parity | None = None
    batch: BatchCheck | None = None
    expected: Literal["match", "mismatch", "missing", "updated", "not-checked"] = "not-checked"
    expected_diff: str = ""
    fingerprint: str | None = None  # Fingerprint.digest() of this run's outputs (CPU fp32 cases)
    flags: list[str] = Field(default_factory=list)
    variants: list[PrecisionVariant] = Field(default_factory=list)
    duration_s: float | None = None
