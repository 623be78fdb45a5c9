#!/usr/bin/env python
"""Cold vs warm artifact cache, in one invocation: the same model selection on CPU + OpenVINO,
first with an empty cache, then again on the cache the first run filled.

    flock /tmp/ipfs-cpu.lock nice python bench/bench_cache.py [--limit 30 | --models bert gpt2 ... | --all]
        [--workers 2] [--out test_results/bench]

Prints cold and warm wall time and their ratio (target >= 3x), whether every test's status,
every CPU fingerprint and every OpenVINO parity number are identical between the two runs, and
the warm run's cache totals (hits, misses, bytes read, seconds saved). Exit 1 if anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(test_dir: Path, out: Path, cache: Path, sel: list[str], hardware: list[str], workers: int) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "ipfs_accelerate.cli", "run", "--type", "model", "--hardware", *hardware,
           "--test-dir", str(test_dir), "--output-dir", str(out), "--plain", "--workers", str(workers), *sel]
    env = {**os.environ, "IPFS_ACCELERATE_CACHE": str(cache)}
    env.pop("IPFS_ACCELERATE_NO_CACHE", None)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    runs = sorted(p for p in out.iterdir() if (p / "results.json").exists()) if out.exists() else []
    if not runs:
        raise SystemExit(f"runner wrote no results (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    data = json.loads((runs[-1] / "results.json").read_text())
    data["_exit"] = proc.returncode
    return wall, data


def stage_seconds(data: dict) -> tuple[float, float, float]:
    """(summed test seconds, summed OpenVINO prepare seconds = convert/read + compile, worker start-up)."""
    tests = sum(t["duration_s"] for t in data["tests"])
    prep = sum((t["case"]["metrics"].get("prepare_s") or 0.0) for t in data["tests"]
               if t.get("case") and t["case"]["hardware"] == "openvino")
    start = sum(w.get("startup_s") or 0.0 for w in data.get("workers", []))
    return tests, prep, start


def facts(data: dict) -> tuple[dict, dict, dict, list[dict]]:
    """(status per test, fingerprint per CPU case, parity numbers per OpenVINO case, cache uses)."""
    statuses, prints, parity, uses = {}, {}, {}, []
    for t in data["tests"]:
        statuses[t["nodeid"]] = t["status"]
        case = t.get("case")
        if not case:
            continue
        name = f"{case['model']}/{case['task']}/{case['hardware']}"
        if case["hardware"] == "cpu":  # output digest and the verdict against the committed fingerprint
            prints[name] = (case.get("fingerprint"), case.get("expected"))
        if case.get("parity"):
            parity[name] = [(o["name"], o["max_abs"], o["cosine"]) for o in case["parity"]["outputs"]]
            parity[name] += [(v["precision"], v["max_abs"], v["cosine"]) for v in case.get("variants", [])]
        uses += case.get("metrics", {}).get("cache", [])
    return statuses, prints, parity, uses


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=None)
    ap.add_argument("--limit", type=int, default=30, help="first N registry models (default 30)")
    ap.add_argument("--all", action="store_true", help="the whole registry")
    ap.add_argument("--hardware", nargs="+", default=["cpu", "openvino"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--test-dir", type=Path, default=Path("test"))
    ap.add_argument("--out", type=Path, default=Path("test_results") / "bench")
    args = ap.parse_args(argv)
    sel = [] if args.all else ["--models", *args.models] if args.models else ["--limit", str(args.limit)]
    label = "whole registry" if args.all else f"models {' '.join(args.models)}" if args.models else f"first {args.limit} registry models"
    print(f"{label} on {' + '.join(args.hardware)}, {args.workers} workers, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        cache = Path(tmp) / "cache"
        stamp = int(time.time())
        cold, cold_data = run(args.test_dir, args.out / f"cache-cold-{stamp}", cache, sel, args.hardware, args.workers)
        print(f"cold: {cold:7.1f} s wall, exit {cold_data['_exit']}, {cold_data['summary']}", flush=True)
        warm, warm_data = run(args.test_dir, args.out / f"cache-warm-{stamp}", cache, sel, args.hardware, args.workers)
        print(f"warm: {warm:7.1f} s wall, exit {warm_data['_exit']}, {warm_data['summary']}", flush=True)
        size = sum(p.stat().st_size for p in (cache / "objects").rglob("*") if p.is_file())
    s1, f1, p1, u1 = facts(cold_data)
    s2, f2, p2, u2 = facts(warm_data)
    from ipfs_accelerate.cache.ledger import totals

    same_status = s1 == s2
    same_prints = f1 == f2
    same_parity = p1 == p2
    print(f"\ncold {cold:.1f} s, warm {warm:.1f} s, ratio {cold / warm:.2f}x (target >= 3x)")
    matched = sum(v[1] == "match" for v in f2.values())
    print(f"statuses identical: {same_status} ({len(s1)} tests); fingerprints identical: {same_prints} ({len(f1)} CPU cases, "
          f"{matched} match the committed expected results); "
          f"parity identical: {same_parity} ({len(p1)} OpenVINO cases)")
    for name, a, b in (("status", s1, s2), ("fingerprint", f1, f2), ("parity", p1, p2)):
        diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        if diff:
            print(f"  {name} differs: {', '.join(diff[:10])}")
    (a_t, a_p, a_s), (b_t, b_p, b_s) = stage_seconds(cold_data), stage_seconds(warm_data)
    print(f"summed test time {a_t:.1f} -> {b_t:.1f} s ({a_t / max(b_t, 1e-9):.2f}x); OpenVINO prepare (convert + compile) "
          f"{a_p:.1f} -> {b_p:.1f} s ({a_p / max(b_p, 1e-9):.2f}x); worker start-up {a_s:.1f} / {b_s:.1f} s (not cacheable)")
    t1, t2 = totals(u1), totals(u2)
    convert_cold = sum(u.get("build_s", 0.0) for u in u1)
    print(f"cold cache: {t1['misses']} misses ({convert_cold:.1f} s converting); warm cache: {t2['hits']} hits, {t2['misses']} misses, "
          f"{t2['bytes_read'] / 2**20:.1f} MiB read, {t2['saved_s']:.1f} s saved (summed over workers); cache {size / 2**20:.1f} MiB")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_cache.json").write_text(json.dumps({
        "selection": label, "hardware": args.hardware, "workers": args.workers, "cold_s": cold, "warm_s": warm,
        "ratio": cold / warm, "tests_s": [a_t, b_t], "openvino_prepare_s": [a_p, b_p], "worker_startup_s": [a_s, b_s], "identical": {"status": same_status, "fingerprint": same_prints, "parity": same_parity},
        "cold_cache": t1, "warm_cache": t2, "cache_bytes": size}, indent=1))
    return 0 if same_status and same_prints and same_parity else 1


if __name__ == "__main__":
    raise SystemExit(main())
