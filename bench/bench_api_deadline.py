#!/usr/bin/env python
"""How close to its deadline each provider's call fails against a hostile server (issue 18).

    flock /tmp/ipfs-cpu.lock nice python bench/bench_api_deadline.py [--providers openai_api ...]
        [--total 1.0] [--gap 0.5] [--rounds 3]

For every provider, against its local fake server: a body or stream trickled one byte every
0.2 s, called with ``timeout=TOTAL`` and ``Timeout(total=TOTAL)``, sync and async, streaming and
not (the cases of one provider run concurrently, as in the kit's test); and, where the API
streams, a stream stalled after its first event under ``Timeout(gap=GAP)``. Prints per provider
the worst and median seconds to the typed error and the limit it named, then the overall worst
against the bounds the tests assert (TOTAL + 0.5 s; GAP + 2 s for the whole gap call). Where the
request op is several calls (s3_kit: put, get, delete) the failing call's own duration counts.
Exit 1 if any case did not raise the right error or passed its bound.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor

from ipfs_accelerate.api.core import Timeout
from ipfs_accelerate.api.testing.kit import PROFILES, Target, start_fake
from ipfs_accelerate.api.testing.kit._suite import _timed
from ipfs_accelerate.api.testing.kit._target import new_key


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--providers", nargs="+", default=sorted(PROFILES))
    ap.add_argument("--total", type=float, default=1.0)
    ap.add_argument("--gap", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    bad = 0
    worst_total = worst_gap = 0.0
    print(f"{'provider':<11} {'cases':>5} {'worst s':>8} {'median s':>8} {'limit':<6} {'gap worst s':>11}")
    for name in args.providers:
        profile, key = PROFILES[name], new_key()
        server = start_fake(profile, key)
        try:
            target = Target(profile, "mock", server, key)
            ops = [profile.request] + ([profile.stream] if profile.stream else [])
            forms = [args.total, Timeout(total=args.total)]
            cases = [(op, f, how) for op in ops for f in forms for how in ("sync", "async")]
            times, limits = [], set()
            for _ in range(args.rounds):
                for op in ops:
                    target.inject("trickle;seconds=0.2", path=op.path, times=None)
                with ThreadPoolExecutor(len(cases)) as pool:
                    results = list(pool.map(functools.partial(_timed, target), *zip(*cases, strict=True)))
                server.clear_faults()
                for (op, _, _), (outcome, value, seconds) in zip(cases, results, strict=True):
                    if op is profile.request and not profile.request_is_one_call:
                        seconds = getattr(value, "elapsed", None) or seconds  # the failing call's own
                    times.append(seconds)
                    limits.add(getattr(value, "limit", outcome))
                    bad += getattr(value, "limit", None) != "total" or seconds >= args.total + 0.5
            gap_worst = float("nan")
            if profile.stream is not None:
                limit = Timeout(connect=5, read=30, write=30, pool=30, total=30, first_event=20, gap=args.gap)
                gaps = []
                for _ in range(args.rounds):
                    target.inject("stall;after=1;seconds=10", path=profile.stream.path, times=2)
                    with ThreadPoolExecutor(2) as pool:
                        res = list(pool.map(functools.partial(_timed, target, profile.stream, limit), ("sync", "async")))
                    for _outcome, value, seconds in res:
                        gaps.append(seconds)
                        bad += getattr(value, "limit", None) != "gap" or seconds >= args.gap + 2.0
                gap_worst = max(gaps)
                worst_gap = max(worst_gap, gap_worst)
            worst_total = max(worst_total, max(times))
            print(f"{name:<11} {len(times):>5} {max(times):>8.3f} {statistics.median(times):>8.3f} "
                  f"{','.join(sorted(map(str, limits))):<6} {gap_worst:>11.3f}")
        finally:
            server.stop()
    print(f"worst: total {worst_total:.3f}s (bound {args.total + 0.5:g}s), gap {worst_gap:.3f}s "
          f"(gap {args.gap:g}s, bound {args.gap + 2.0:g}s); bad cases: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
