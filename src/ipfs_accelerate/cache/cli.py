"""`ipfs-accelerate cache ls|verify|gc|export|import|push|pull`: inspect and move the artifact cache."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .store import DEFAULT_MAX_GB, Cache, CacheConfig, default_root


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="cache root (default: $IPFS_ACCELERATE_CACHE, else $XDG_CACHE_HOME/ipfs-accelerate/artifacts)")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("ls", help="entries: kind, CID, size, last used, hits")
    ls.add_argument("--json", action="store_true")
    verify = sub.add_parser("verify", help="recompute every CID; evict what does not match (exit 1 if any)")
    verify.add_argument("--keep", action="store_true", help="report only, evict nothing")
    gc = sub.add_parser("gc", help="evict least-recently-used entries down to the size bound")
    gc.add_argument("--max-gb", type=float, default=None, help=f"bound (default $IPFS_ACCELERATE_CACHE_MAX_GB or {DEFAULT_MAX_GB})")
    exp = sub.add_parser("export", help="write verified entries to a CAR file")
    exp.add_argument("car", type=Path)
    exp.add_argument("--kind", action="append", default=None, help="only this kind (repeatable), e.g. openvino-ir")
    imp = sub.add_parser("import", help="add the entries of a CAR file (each block and object verified)")
    imp.add_argument("car", type=Path)
    push = sub.add_parser("push", help="send the cache as a CAR to an IPFS node (Kubo HTTP RPC)")
    push.add_argument("--api", default=os.environ.get("IPFS_ACCELERATE_IPFS_API"),
                      help="node RPC URL, e.g. http://127.0.0.1:5001 (default $IPFS_ACCELERATE_IPFS_API)")
    push.add_argument("--kind", action="append", default=None)
    pull = sub.add_parser("pull", help="fetch a pushed root CID from a gateway and import it")
    pull.add_argument("cid")
    pull.add_argument("--gateway", default=os.environ.get("IPFS_ACCELERATE_IPFS_GATEWAY"),
                      help="trustless gateway URL, e.g. http://127.0.0.1:8080 (default $IPFS_ACCELERATE_IPFS_GATEWAY)")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def main(args: argparse.Namespace) -> int:
    from . import transfer
    from .car import CarError

    config = CacheConfig.from_env()
    config.root = args.cache_dir or default_root()
    cache = Cache(config)
    try:
        if args.action == "ls":
            entries = sorted(cache.entries(), key=lambda e: -e.last_used)
            if args.json:
                print(json.dumps([{"key_id": e.key_id, "kind": e.kind, "cid": e.cid, "bytes": e.size, "last_used": e.last_used,
                                   "hits": e.hits, "build_s": e.build_s} for e in entries], indent=1))
                return 0
            print(f"{'kind':<14} {'cid':<62} {'size':>10} {'last used (UTC)':<19} {'hits':>5}")
            for e in entries:
                used = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.last_used))
                print(f"{e.kind:<14} {e.cid:<62} {_size(e.size):>10} {used:<19} {e.hits:>5}")
            print(f"{len(entries)} entries, {_size(sum(e.size for e in entries))} of {_size(config.max_bytes)} at {cache.root}")
            return 0
        if args.action == "verify":
            n = len(cache.entries())
            bad = cache.verify(evict=not args.keep)
            for kid, problem in bad:
                print(f"BAD {kid}: {problem}" + ("" if args.keep else " (evicted)"))
            print(f"verified {n} entries: {n - len([b for b in bad if b[0]])} ok, {len(bad)} bad")
            return 1 if bad else 0
        if args.action == "gc":
            limit = None if args.max_gb is None else int(args.max_gb * 2**30)
            if limit is not None and limit < 0:
                print("error: --max-gb must be >= 0", file=sys.stderr)
                return 2
            evicted = cache.gc(limit)
            print(f"evicted {len(evicted)} entries ({_size(sum(e.size for e in evicted))}); {_size(cache.total_bytes())} left")
            return 0
        if args.action == "export":
            root, n = transfer.export_car(cache, args.car, set(args.kind) if args.kind else None)
            print(f"exported {n} entries to {args.car} (root {root})")
            return 0
        if args.action == "import":
            if not args.car.is_file():
                print(f"error: no such CAR file: {args.car}", file=sys.stderr)
                return 2
            rep = transfer.import_car(cache, args.car)
            for why in rep.rejected or []:
                print(f"rejected {why}")
            print(f"imported root {rep.root}: {rep.added} added, {rep.present} already present, {len(rep.rejected or [])} rejected")
            return 1 if rep.rejected else 0
        if args.action in {"push", "pull"}:
            url = args.api if args.action == "push" else args.gateway
            if not url:
                flag = "--api / $IPFS_ACCELERATE_IPFS_API" if args.action == "push" else "--gateway / $IPFS_ACCELERATE_IPFS_GATEWAY"
                print(f"error: no IPFS node configured ({flag})", file=sys.stderr)
                return 2
            if args.action == "push":
                root, n = transfer.push(cache, url, set(args.kind) if args.kind else None)
                print(f"pushed {n} entries: root {root}")
                return 0
            rep = transfer.pull(cache, url, args.cid)
            print(f"pulled root {rep.root}: {rep.added} added, {rep.present} already present, {len(rep.rejected or [])} rejected")
            return 1 if rep.rejected else 0
    except (CarError, OSError, ValueError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 2
