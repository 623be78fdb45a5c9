#!/usr/bin/env python
"""Warm-server benchmark: a forked worker's imports vs a cold worker's, measured in one run.

    flock /tmp/ipfs-cpu.lock nice -n 19 .venv/bin/python bench/bench_warm.py [--rounds 3] [--preload torch]

Why a bench and not a unit test: `tests/test_runner_warm.py` proves the behaviour (a warm worker
is a fork of the one server that imported torch; a cold worker imports it itself); how much time
that saves depends on the host's load, so the numbers live here, as ratios of runs made
back-to-back (ABBA order: a load that drifts weighs on both sides).

Prints, per mode, the median `import_s` and `startup_s` the runner recorded for its worker and
the cold / warm ratios. Expect import ratio >> 1 (a fork inherits torch; ~0.0 s vs ~1-5 s here).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_SUITE = "def test_one():\n    assert 1 + 1 == 2\n"


def run_once(suite: Path, out: Path, run_id: str, preload: str, warm: bool) -> dict:
    """One runner invocation with one worker; returns that worker's record."""
    cmd = [sys.executable, "-m", "ipfs_accelerate.cli", "run", str(suite / "test_one.py"), "--test-dir", str(suite),
           "--output-dir", str(out), "--run-id", run_id, "--workers", "1", "--preload", preload, "--plain",
           *(["--warm", "120"] if warm else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=suite)
    results = out / run_id / "results.json"
    if proc.returncode != 0 or not results.exists():
        raise SystemExit(f"run {run_id} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    [worker] = json.loads(results.read_text())["workers"]
    if worker["forked"] != warm:
        raise SystemExit(f"run {run_id}: expected forked={warm}, got {worker}")
    return worker


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="ABBA rounds (each: one warm and one cold run)")
    ap.add_argument("--preload", default="torch", help="preload groups, as `run --preload`")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ipw-bench-", dir="/tmp"))  # short: AF_UNIX socket paths
    os.environ["IPFS_ACCELERATE_WARM_DIR"] = str(tmp / "sock")
    suite, out = tmp / "suite", tmp / "out"
    suite.mkdir()
    (suite / "test_one.py").write_text(_SUITE)
    try:
        run_once(suite, out, "000-start-server", args.preload, warm=True)  # untimed: starts the server
        seen: dict[bool, list[dict]] = {True: [], False: []}
        for i in range(args.rounds):
            for warm in ((True, False) if i % 2 == 0 else (False, True)):
                seen[warm].append(run_once(suite, out, f"{i + 1:03d}-{'warm' if warm else 'cold'}", args.preload, warm))
        med = {(warm, key): statistics.median(float(w[key] or 0.0) for w in seen[warm])
               for warm in (True, False) for key in ("import_s", "startup_s")}
        for warm in (True, False):
            print(f"{'warm' if warm else 'cold'}: import_s median {med[warm, 'import_s']:.3f} s, "
                  f"startup_s median {med[warm, 'startup_s']:.3f} s over {args.rounds} runs")
        for key in ("import_s", "startup_s"):
            ratio = med[False, key] / max(med[True, key], 1e-3)
            print(f"cold / warm {key}: {ratio:.1f}x")
    finally:
        for sock in (tmp / "sock").glob("*.sock"):
            from ipfs_accelerate.runner.warm import WarmClient

            WarmClient(sock).stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
