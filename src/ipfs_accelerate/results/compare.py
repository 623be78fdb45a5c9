"""Compare two runs: new failures, fixes, new skips/xfails, fingerprint drift, and latency /
memory changes judged statistically.

Latency: each metrics test stores its timed samples. A change is reported only when the 95 %
bootstrap interval of the ratio of medians (head / base, 2,000 seeded resamples, so the verdict
is reproducible) lies wholly beyond the noise floor (default 25 %: on this shared 2-core VM a whole
run shifts by up to ±10 % against another when other jobs share the CPUs, which per-case samples
cannot see, so the floor must exceed it). Under the noise model in tests/test_history.py (5
samples per case, the default run) this gave 0 false regressions in 440 identical-code case pairs
and caught a 2x slowdown in 32 of 40 pairs; `--benchmark` runs time 20 samples. Effect size is
the ratio itself and Cliff's delta. Symmetric: a speed-up is reported as an improvement. A case
with too few samples on either side is not judged (said so, never guessed from one number).
Memory (peak RSS, one value per case) is judged against a floor of 20 % and 32 MB together.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .history import TestRow
from .status import FAILING, Status

NOISE_FLOOR = 0.25
MIN_SAMPLES = 5
RESAMPLES = 2000
MEMORY_FLOOR = 0.20
MEMORY_FLOOR_MB = 32.0
FAIL_ON = ("regression", "new-failure", "fingerprint", "new-skip")


@dataclass
class Judgement:
    """Latency of one test, base vs head."""

    verdict: str  # "regression" | "improvement" | "same" | "not-judged"
    ratio: float  # head median / base median
    ci: tuple[float, float]
    cliffs_delta: float
    n_base: int
    n_head: int


def _median_ratio_ci(base: np.ndarray, head: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    bi = rng.integers(0, len(base), size=(RESAMPLES, len(base)))
    hi = rng.integers(0, len(head), size=(RESAMPLES, len(head)))
    ratios = np.median(head[hi], axis=1) / np.median(base[bi], axis=1)
    lo, hi_ = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi_)


def cliffs_delta(base: np.ndarray, head: np.ndarray) -> float:
    """P(head > base) - P(head < base): +1 every head sample slower, 0 no shift."""
    diff = head[:, None] - base[None, :]
    return float((np.sign(diff)).mean())


def judge(base: list[float], head: list[float], *, floor: float = NOISE_FLOOR, seed: int = 0) -> Judgement:
    """Is `head` slower or faster than `base` beyond the noise floor, at 95 % confidence?"""
    b = np.asarray([x for x in base if x > 0 and math.isfinite(x)], dtype=np.float64)
    h = np.asarray([x for x in head if x > 0 and math.isfinite(x)], dtype=np.float64)
    if len(b) < MIN_SAMPLES or len(h) < MIN_SAMPLES:
        ratio = float(np.median(h) / np.median(b)) if len(b) and len(h) else float("nan")
        return Judgement("not-judged", ratio, (float("nan"), float("nan")), 0.0, len(b), len(h))
    ratio = float(np.median(h) / np.median(b))
    lo, hi = _median_ratio_ci(b, h, np.random.default_rng(seed))
    verdict = "regression" if lo > 1 + floor else "improvement" if hi < 1 / (1 + floor) else "same"
    return Judgement(verdict, ratio, (lo, hi), cliffs_delta(b, h), len(b), len(h))


@dataclass
class Change:
    kind: str  # new-failure | fixed | new-skip | new-xfail | fingerprint | latency-regression | latency-improvement | memory-regression | memory-improvement | missing | new-test
    nodeid: str
    model: str | None
    hardware: str | None
    base: str
    head: str
    detail: str = ""
    ratio: float | None = None
    ci: tuple[float, float] | None = None
    effect: float | None = None


@dataclass
class Comparison:
    base: str
    head: str
    floor: float
    changes: list[Change] = field(default_factory=list)
    judged: int = 0
    not_judged: int = 0

    def of(self, *kinds: str) -> list[Change]:
        return [c for c in self.changes if c.kind in kinds]

    @property
    def regressions(self) -> list[Change]:
        return self.of("latency-regression", "memory-regression")

    def failing(self, fail_on: list[str]) -> list[str]:
        """Which `--fail-on` categories have something in them."""
        want = {"regression": self.regressions, "new-failure": self.of("new-failure"),
                "fingerprint": self.of("fingerprint"), "new-skip": self.of("new-skip", "new-xfail")}
        return [k for k in fail_on if want.get(k)]

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "head": self.head, "noise_floor": self.floor, "latency_judged": self.judged,
                "latency_not_judged": self.not_judged, "counts": self.counts(), "changes": [asdict(c) for c in self.changes]}

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.kind] = out.get(c.kind, 0) + 1
        return out


def _ok(status: str) -> bool:
    return status == Status.PASSED


def compare(base_id: str, base: dict[str, TestRow], head_id: str, head: dict[str, TestRow], *,
            floor: float = NOISE_FLOOR) -> Comparison:
    """Every difference between two runs' tests that a person should hear about."""
    out = Comparison(base=base_id, head=head_id, floor=floor)
    for nodeid in sorted(set(base) | set(head)):
        b, h = base.get(nodeid), head.get(nodeid)
        if b is None or h is None:
            continue  # selection differences are not changes in behaviour
        mk = dict(nodeid=nodeid, model=h.model, hardware=h.hardware, base=b.status, head=h.status)
        if h.status in FAILING and b.status not in FAILING:
            out.changes.append(Change("new-failure", detail=h.reason.splitlines()[0][:200] if h.reason else "", **mk))
        elif b.status in FAILING and _ok(h.status):
            out.changes.append(Change("fixed", **mk))
        elif _ok(b.status) and h.status == Status.SKIPPED:
            out.changes.append(Change("new-skip", detail=h.reason.splitlines()[0][:200] if h.reason else "", **mk))
        elif _ok(b.status) and h.status == Status.XFAILED:
            out.changes.append(Change("new-xfail", detail=h.reason.splitlines()[0][:200] if h.reason else "", **mk))
        if b.fingerprint and h.fingerprint and b.fingerprint != h.fingerprint:
            out.changes.append(Change("fingerprint", detail=f"{b.fingerprint} → {h.fingerprint}", **mk))
        elif b.expected == "match" and h.expected == "mismatch":
            out.changes.append(Change("fingerprint", detail="expected results now mismatch", **mk))
        if b.samples or h.samples:
            j = judge(b.samples, h.samples, floor=floor, seed=_seed(nodeid))
            if j.verdict == "not-judged":
                out.not_judged += 1
            else:
                out.judged += 1
            if j.verdict in ("regression", "improvement"):
                out.changes.append(Change(f"latency-{j.verdict}", ratio=j.ratio, ci=j.ci, effect=j.cliffs_delta,
                                          detail=f"p50 {np.median(b.samples):.3f} → {np.median(h.samples):.3f} ms "
                                                 f"(×{j.ratio:.2f}, 95% CI {j.ci[0]:.2f}–{j.ci[1]:.2f}, Cliff's δ {j.cliffs_delta:+.2f})",
                                          **mk))
        if b.peak_rss_mb and h.peak_rss_mb:
            delta = h.peak_rss_mb - b.peak_rss_mb
            ratio = h.peak_rss_mb / b.peak_rss_mb
            if abs(delta) >= MEMORY_FLOOR_MB and abs(ratio - 1) >= MEMORY_FLOOR:
                kind = "memory-regression" if delta > 0 else "memory-improvement"
                out.changes.append(Change(kind, ratio=ratio, detail=f"peak RSS {b.peak_rss_mb:.0f} → {h.peak_rss_mb:.0f} MB", **mk))
    return out


def _seed(nodeid: str) -> int:
    """Per-test seed from its name: the same pair of runs always gets the same verdicts."""
    import zlib

    return zlib.crc32(nodeid.encode())


TITLES = {
    "new-failure": "New failures", "fixed": "Fixed", "new-skip": "Newly skipped", "new-xfail": "Newly expected failures",
    "fingerprint": "Fingerprint drift", "latency-regression": "Latency regressions", "latency-improvement": "Latency improvements",
    "memory-regression": "Memory regressions", "memory-improvement": "Memory improvements",
}
