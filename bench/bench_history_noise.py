#!/usr/bin/env python3
"""False latency regressions between identical real runs, measured on this machine.

    .venv/bin/python bench/bench_history_noise.py [--pairs 3] [--models bert gpt2]

Runs the same tiny models (CPU, one worker, `-k metrics`) 1 + N times into one history database
and compares each run with the one before it (`compare --baseline previous`), printing per pair
the cases judged, the median-ratio range and any latency verdicts. Identical code should give no
latency change beyond the noise floor (`results/compare.py`); when the machine's load changes
between two runs it may, which is why this is a bench and not a unit test (the unit test of the
same flow, tests/test_history_real_runs.py, asserts only what does not depend on load).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["bert", "gpt2"])
    args = parser.parse_args(argv)

    from ipfs_accelerate.results import compare as cmp
    from ipfs_accelerate.results import history as hist
    from ipfs_accelerate.runner.cli import run_from_argv

    false_regressions = judged = 0
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        out = Path(tmp) / "results"
        argv_run = ["--type", "model", "--models", *args.models, "--hardware", "cpu", "--impl-type", "tiny",
                    "--workers", "1", "-k", "metrics", "--no-cache", "--test-dir", str(REPO / "test"),
                    "--output-dir", str(out)]
        for _ in range(args.pairs + 1):
            if run_from_argv(argv_run) != 0:
                print("a run failed: see its report", file=sys.stderr)
                return 1
        db = hist.default_path(out)
        runs = list(reversed(hist.runs(db)))  # oldest first
        for base, head in zip(runs, runs[1:], strict=False):
            result = cmp.compare(base.run_id, hist.tests(db, base.run_id), head.run_id, hist.tests(db, head.run_id))
            regressions = [c for c in result.changes if c.kind == "latency-regression"]
            ratios = [c.ratio for c in result.changes if c.ratio]
            judged += result.judged
            false_regressions += len(regressions)
            print(json.dumps({"base": base.run_id, "head": head.run_id, "judged": result.judged,
                              "changes": [c.kind for c in result.changes], "ratios": ratios}))
    print(f"identical-code pairs: {args.pairs}, cases judged: {judged}, false latency regressions: {false_regressions}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
