"""Full-size benchmarks (`--scale full`) and their repeatability, on this machine.

1. Every requested model at its reference size on each backend: the same `Case.run()` the runner
   does with `--scale full --benchmark`, written as results JSON lines plus bench_report.md/.json.
2. Repeatability: one case (bert-base, batch 1, seq 16 by default) measured `--repeats` times on
   PyTorch f32 and OpenVINO f32, interleaved (A B A B ...) so drift hits both; each repeat's p50 must
   land within the spread the report states for the others ((p90 - min) / p50). Prints the ratios
   measured in this run; exit 1 when repeats disagree beyond their spread.
3. Memory: peak RSS of each case vs its fp32 weights, the factor `harness/scale.py` budgets with.

Holds /tmp/ipfs-cpu.lock while it measures (other engineers' timed runs take the same lock).

    python bench/bench_scale.py [--models bert gpt2 t5 vit whisper] [--hardware cpu openvino]
                                [--repeats 3] [--out DIR] [--skip-cases]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def cpu_lock(path: str = "/tmp/ipfs-cpu.lock") -> Iterator[None]:
    with open(path, "a+") as fh:
        start = time.perf_counter()
        fcntl.flock(fh, fcntl.LOCK_EX)
        waited = time.perf_counter() - start
        if waited > 1:
            print(f"(waited {waited:.0f} s for {path})", flush=True)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_cases(models: list[str], hardware: list[str], threads: int, out: Path) -> list:
    from ipfs_accelerate.harness import scale
    from ipfs_accelerate.harness.case import Case, Settings

    results = []
    lines = out / "scale_results.jsonl"
    for model in models:
        for hw in hardware:
            start = time.perf_counter()
            case = Case(model, hw, settings=Settings.benchmark(scale="full", threads=threads))
            r = case.run()
            results.append(r)
            with open(lines, "a", encoding="utf-8") as fh:
                fh.write(r.model_dump_json() + "\n")
            m = r.metrics
            factor = ""
            if m.params and m.peak_rss_mb:
                factor = f" peak/weights {m.peak_rss_mb / (m.params * 4 / 2**20):.2f} (budgeted {scale.MEMORY_FACTOR.get(hw)})"
            lat = m.latency.p50_ms if m.latency else float("nan")
            print(f"{model:8s} {hw:9s} {r.status!s:8s} p50 {lat:9.2f} ms peak {m.peak_rss_mb or 0:7.0f} MB{factor} "
                  f"{time.perf_counter() - start:6.1f} s {r.reason.splitlines()[0][:120] if r.reason else ''}", flush=True)
            for v in r.variants:
                print(f"    {v.precision:18s} p50 {v.p50_ms or 0:9.2f} ms x{v.speedup_vs_torch or 0:5.2f} vs torch  cos {v.cosine:.5f} "
                      f"tokens {v.token_agreement if v.token_agreement is not None else '-'} ok {v.ok} nodes {v.compressed_nodes} "
                      f"{v.size_mb or 0:.0f} MB prep-peak {v.prepare_peak_mb or 0:.0f} MB", flush=True)
            del case
    return results


def repeatability(model: str, repeats: int, threads: int) -> bool:
    """A B A B ... of PyTorch f32 vs OpenVINO f32 on one full-size case; True when every repeat's
    p50 lies within the spread stated by the others."""
    from ipfs_accelerate.harness.case import Case, Settings
    from ipfs_accelerate.harness.trackers import measure
    from ipfs_accelerate.results.bench_report import spread

    cases = {hw: Case(model, hw, settings=Settings.benchmark(scale="full", threads=threads)) for hw in ("cpu", "openvino")}
    fns = {}
    for hw, case in cases.items():
        prepared = case.prepared
        fns[hw] = lambda c=case, p=prepared: c.skill.run(p, c.single_inputs, c.built, c.task)
    lats: dict[str, list] = {hw: [] for hw in cases}
    for _ in range(repeats):
        for hw, fn in fns.items():
            lats[hw].append(measure(fn, warmup=5, runs=30, max_time_s=15.0))
    ok = True
    for hw, ls in lats.items():
        p50s = [lat.p50_ms for lat in ls]
        spreads = [spread(lat) for lat in ls]
        worst = max(abs(a - b) / min(a, b) for a in p50s for b in p50s)
        stated = max(spreads)
        agree = worst <= stated
        ok &= agree
        print(f"repeat {model} {hw:9s} p50s {', '.join(f'{p:.2f}' for p in p50s)} ms; max pairwise diff {worst:.1%}; "
              f"stated spread {', '.join(f'{s:.0%}' for s in spreads)} -> {'agree' if agree else 'DISAGREE'}", flush=True)
    ratios = [c / o for c, o in zip((x.p50_ms for x in lats["cpu"]), (x.p50_ms for x in lats["openvino"]), strict=True)]
    print(f"OpenVINO f32 speed-up vs PyTorch f32 ({model}, batch 1, {threads} thread): "
          f"{', '.join(f'{r:.2f}x' for r in ratios)} (per interleaved pair, this run)", flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["bert", "gpt2", "t5", "vit", "whisper"])
    ap.add_argument("--hardware", nargs="+", default=["cpu", "openvino"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--repeat-model", default="bert")
    ap.add_argument("--out", type=Path, default=None, help="folder for results and the report (default: a new temp folder)")
    ap.add_argument("--skip-cases", action="store_true", help="only the repeatability check")
    ap.add_argument("--no-lock", action="store_true")
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    out.mkdir(parents=True, exist_ok=True)
    lock = contextlib.nullcontext() if args.no_lock else cpu_lock()
    with lock:
        ok = repeatability(args.repeat_model, args.repeats, args.threads) if args.repeats > 1 else True
        if not args.skip_cases:
            from ipfs_accelerate.results.bench_report import write

            results = run_cases(args.models, args.hardware, args.threads, out)
            md, js = write(results, out)
            print(f"wrote {md} and {js}")
            summary = {r.model + "/" + r.hardware: str(r.status) for r in results}
            print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
