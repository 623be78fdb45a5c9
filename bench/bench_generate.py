#!/usr/bin/env python3
"""Benchmark the test generators against the issue's budgets.

    .venv/bin/python bench/bench_generate.py [--repeat 5]

Measures, as a user would see it (a fresh interpreter per command, run from test/, median of
--repeat runs), and in-process (the engine alone, imports already paid):
  * generating every model and API test plus the status file into an empty folder (budget 2 s);
  * regenerating over an up-to-date tree (everything "unchanged");
  * ``--list-missing`` for the whole registry (budget 0.5 s).
Exits 1 if a median is over its budget. Writes only into a temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_DIR = REPO / "test"
sys.path.insert(0, str(REPO / "src"))

BUDGET_ALL_S = 2.0
BUDGET_LIST_S = 0.5


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=TEST_DIR, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return elapsed


def in_process(argv: list[str]) -> float:
    import contextlib
    import io

    from ipfs_accelerate.generate.cli import unified_main

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = unified_main(argv)
    elapsed = time.perf_counter() - start
    if rc != 0:
        raise SystemExit(f"generate {argv} exited {rc}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from ipfs_accelerate import registry
    from ipfs_accelerate.api.providers import PROVIDERS

    n_models, n_apis = len(registry.list_models()), len(PROVIDERS)
    rows: list[tuple[str, list[float], float | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        script = [sys.executable, "generate_unified_test.py"]
        fresh, rerun, listing = [], [], []
        for i in range(args.repeat):
            out = tmp_path / f"cold{i}"
            fresh.append(wall([*script, "--type", "all", "--output-dir", str(out)]))
            rerun.append(wall([*script, "--type", "all", "--output-dir", str(out)]))
            listing.append(wall([*script, "--type", "all", "--list-missing", "--output-dir", str(tmp_path / "empty")]))
        rows += [
            (f"CLI: generate all ({n_models} models + {n_apis} APIs + status), empty folder", fresh, BUDGET_ALL_S),
            ("CLI: regenerate all over an up-to-date tree", rerun, BUDGET_ALL_S),
            ("CLI: --list-missing, whole registry", listing, BUDGET_LIST_S),
        ]
        in_process(["--type", "all", "--output-dir", str(tmp_path / "warm"), "--no-status"])  # pay imports once
        gen = [in_process(["--type", "all", "--output-dir", str(tmp_path / f"ip{i}")]) for i in range(args.repeat)]
        lst = [in_process(["--type", "all", "--list-missing", "--output-dir", str(tmp_path / "empty")]) for _ in range(args.repeat)]
        rows += [("in-process: generate all + status", gen, None), ("in-process: --list-missing", lst, None)]

    over = False
    print(f"python {sys.version.split()[0]}, {n_models} registry models, {n_apis} APIs, median of {args.repeat}")
    for name, times, budget in rows:
        med = statistics.median(times)
        verdict = "" if budget is None else ("  ok" if med <= budget else "  OVER BUDGET") + f" (budget {budget:.1f} s)"
        over |= budget is not None and med > budget
        print(f"{name:<78} median {med * 1000:7.1f} ms  min {min(times) * 1000:7.1f} ms{verdict}")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
