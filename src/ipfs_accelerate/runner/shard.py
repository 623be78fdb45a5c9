"""Deterministic, duration-balanced sharding of test files (`--shard k/N`).

A file is never split: its tests share one build per (model, hardware) in a worker. Weights are
the file's recorded duration in a previous results.json when one exists, else its test count
times the median per-test duration seen (1 s with no history). Files are taken longest first and
each goes to the lightest shard (ties: lowest index) — the same inputs give the same split on
every machine, so N CI jobs can each run one shard of one selection.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from ..results.run import RunResult


def durations_by_file(run: RunResult | None) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    if run is None:
        return {}
    for t in run.tests:
        out[t.file] += t.duration_s
    return dict(out)


def weights(counts: dict[str, int], history: dict[str, float]) -> dict[str, float]:
    known = [history[f] / counts[f] for f in counts if f in history and counts[f] and history[f] > 0]
    per_test = statistics.median(known) if known else 1.0
    return {f: history[f] if history.get(f, 0) > 0 else counts[f] * per_test for f in counts}


def assign(file_weights: dict[str, float], n: int) -> list[list[str]]:
    """Longest-processing-time-first: files (by weight desc, then name) to the lightest shard."""
    loads = [0.0] * n
    shards: list[list[str]] = [[] for _ in range(n)]
    for f in sorted(file_weights, key=lambda f: (-round(file_weights[f], 6), f)):
        i = min(range(n), key=lambda j: (loads[j], j))
        shards[i].append(f)
        loads[i] += file_weights[f]
    return [sorted(s) for s in shards]


def pick(counts: dict[str, int], history: dict[str, float], k: int, n: int) -> list[str]:
    """Files of shard k (1-based) of n."""
    return assign(weights(counts, history), n)[k - 1]


def latest_results(output_dir: Path, exclude: Path | None = None) -> RunResult | None:
    """Newest complete results.json under `output_dir` (skipping `exclude`), for duration history."""
    from ..results.store import RESULTS, load_results, run_dirs

    for d in reversed(run_dirs(output_dir)):
        if exclude is not None and d.resolve() == exclude.resolve():
            continue
        if (d / RESULTS).exists():
            try:
                return load_results(d / RESULTS)
            except Exception:
                continue
    return None
