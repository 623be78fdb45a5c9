#!/usr/bin/env python
"""The main job, timed: the whole registry on CPU + OpenVINO, as the README advertises it
(`ipfs-accelerate run --type model --hardware cpu openvino`), with a per-model split.

    python bench/bench_matrix.py [--hardware cpu openvino] [--workers N] [--repeat 1] [--out test_results/bench]

Per model: import (first use of its modelling code: the CPU test_init's time beyond the build it
reports), build, convert (OpenVINO prepare), and the rest of its tests' time (inference, checks,
latency measurement). `--repeat N` runs the same selection N
times and reports any test whose status changed (determinism; the acceptance bar is zero flaky
results in 5 reruns of the CPU matrix: `--hardware cpu --repeat 5`). Target: <= 3 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


def cli() -> list[str]:
    return [sys.executable, "-m", "ipfs_accelerate.cli"]


def generate(dest: Path) -> int:
    from ipfs_accelerate import registry

    subprocess.run([*cli(), "generate", "--type", "model", "--category", "all", "--profile", "unified",
                    "--output-dir", str(dest), "--no-status"], check=True, capture_output=True, text=True)
    return len(registry.load())


def split(data: dict) -> list[dict]:
    per: dict[str, dict] = defaultdict(lambda: {"tests_s": 0.0, "statuses": defaultdict(int), "init_cpu_s": 0.0, "init_ov_s": 0.0})
    cases: dict[tuple[str, str], dict] = {}
    for t in data["tests"]:
        if not t.get("model") or t.get("impl") != "mock":
            continue
        row = per[t["model"]]
        row["tests_s"] += t["duration_s"]
        row["statuses"][t["status"]] += 1
        if t["nodeid"].endswith("::test_init[cpu]"):
            row["init_cpu_s"] = t["duration_s"]
        if t["nodeid"].endswith("::test_init[openvino]"):
            row["init_ov_s"] = t["duration_s"]
        if t.get("case"):
            cases[(t["model"], t["hardware"])] = t["case"]["metrics"]
    out = []
    for model, row in per.items():
        cpu, ov = cases.get((model, "cpu"), {}), cases.get((model, "openvino"), {})
        cpu_build, ov_build = cpu.get("build_s") or 0.0, ov.get("build_s") or 0.0
        # the CPU case runs first in its worker: its test_init pays the modelling-code import on top of the build
        imp = max(0.0, row["init_cpu_s"] - cpu_build)
        build = ov_build if ov else cpu_build
        prepare = ov.get("prepare_s") or 0.0
        # the artifact cache's events split OpenVINO's prepare: conversion (an IR miss's build time)
        # and compile (a compiled-blob miss's); a hit's read/verify/import is the prepare left over
        convert = sum(e.get("build_s") or 0.0 for e in ov.get("cache") or [] if e["stage"] == "openvino-ir" and e["status"] != "hit")
        if not ov:  # no case record (a failed or declared-failing conversion): its test_init is the attempt
            prepare = convert = row["init_ov_s"]
        compile_ = min(prepare - convert, sum(e.get("build_s") or 0.0 for e in ov.get("cache") or []
                                              if e["stage"] == "openvino-compiled" and e["status"] != "hit"))
        latency = sum(6 * ((c.get("latency") or {}).get("p50_ms") or 0.0) / 1000 for c in (cpu, ov))  # warm-up + 5 runs
        out.append({"model": model, "total_s": row["tests_s"], "import_s": imp, "build_s": build, "convert_s": convert,
                    "compile_s": max(0.0, compile_), "cache_read_s": max(0.0, prepare - convert - max(0.0, compile_)),
                    "latency_s": latency, "rest_s": max(0.0, row["tests_s"] - imp - cpu_build - ov_build - prepare - latency),
                    "statuses": dict(row["statuses"])})
    return sorted(out, key=lambda r: -r["total_s"])


def run_once(test_dir: Path, out: Path, hardware: list[str], workers: int | None, extra: list[str]) -> tuple[float, dict]:
    cmd = [*cli(), "run", "--type", "model", "--hardware", *hardware, "--test-dir", str(test_dir), "--output-dir", str(out), "--plain", *extra]
    if workers:
        cmd += ["--workers", str(workers)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    runs = sorted(p for p in out.iterdir() if (p / "results.json").exists())
    if not runs:
        raise SystemExit(f"runner wrote no results (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    data = json.loads((runs[-1] / "results.json").read_text())
    data["_exit"], data["_report"] = proc.returncode, str(runs[-1] / "report.md")
    return wall, data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hardware", nargs="+", default=["cpu", "openvino"])
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--test-dir", type=Path, default=None, help="use these generated tests instead of generating into a temp folder")
    ap.add_argument("--out", type=Path, default=Path("test_results") / "bench")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more runner options, e.g. --impl-type mock")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-matrix-") as tmp:
        test_dir = args.test_dir
        if test_dir is None:
            test_dir = Path(tmp) / "test"
            n = generate(test_dir)
        else:
            n = len(list((test_dir / "skills").glob("test_hf_*.py")))
        print(f"{n} registry models, hardware {' '.join(args.hardware)}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
        for i in range(args.repeat):
            wall, data = run_once(test_dir, args.out / f"matrix-{int(time.time())}-{i}", args.hardware, args.workers, args.extra)
            runs.append((wall, data))
            s = data["summary"]
            print(f"run {i + 1}: {wall:6.1f} s wall, exit {data['_exit']}, " + ", ".join(f"{n} {k}" for k, n in s.items() if n)
                  + f"; report {data['_report']}", flush=True)
    wall, data = runs[0]
    rows = split(data)
    tot = {k: sum(r[k] for r in rows) for k in ("total_s", "import_s", "build_s", "convert_s", "compile_s", "cache_read_s", "latency_s", "rest_s")}
    print(f"\nwhole registry on {' + '.join(args.hardware)}: {wall:.1f} s wall (target <= 180 s), {len(rows)} models")
    print(f"summed over models: tests {tot['total_s']:.0f} s = import {tot['import_s']:.0f} + build {tot['build_s']:.0f} "
          f"+ convert {tot['convert_s']:.0f} + compile {tot['compile_s']:.0f} + cache read/import {tot['cache_read_s']:.0f} "
          f"+ latency runs {tot['latency_s']:.0f} + inference/checks/variants {tot['rest_s']:.0f}")
    w = [x for x in data["workers"] if x.get("startup_s") is not None]
    if w:
        print(f"workers: {len(data['workers'])} started, start-up {sum(x['startup_s'] for x in w) / len(w):.1f} s each "
              f"(summed: import {sum(x.get('import_s') or 0.0 for x in w):.0f} s, pytest collection "
              f"{sum(x.get('collect_s') or 0.0 for x in w):.0f} s, all start-up {sum(x['startup_s'] for x in w):.0f} s)")
    print(f"\n{'model':28} {'total':>7} {'import':>7} {'build':>7} {'convert':>8} {'compile':>8} {'rest':>7}  statuses")
    for r in rows[:25]:
        print(f"{r['model']:28} {r['total_s']:7.2f} {r['import_s']:7.2f} {r['build_s']:7.2f} {r['convert_s']:8.2f} {r['compile_s']:8.2f} {r['rest_s']:7.2f}  "
              + " ".join(f"{k}:{v}" for k, v in sorted(r["statuses"].items())))
    flaky: list[str] = []
    if len(runs) > 1:
        base = {t["nodeid"]: t["status"] for t in runs[0][1]["tests"]}
        for _, d in runs[1:]:
            other = {t["nodeid"]: t["status"] for t in d["tests"]}
            flaky += [k for k in base.keys() | other.keys() if base.get(k) != other.get(k)]
        flaky = sorted(set(flaky))
        print(f"\ndeterminism: {len(runs)} runs, {len(flaky)} tests changed status" + (": " + ", ".join(flaky[:20]) if flaky else ""))
    summary = {"hardware": args.hardware, "walls_s": [r[0] for r in runs], "models": rows, "totals": tot, "flaky": flaky,
               "summary": data["summary"], "cpus": os.cpu_count(), "load_avg_end": os.getloadavg()[0]}
    path = args.out / "bench_matrix.json"
    path.write_text(json.dumps(summary, indent=1))
    print(f"written {path}")
    return 0 if not flaky else 1


if __name__ == "__main__":
    raise SystemExit(main())
