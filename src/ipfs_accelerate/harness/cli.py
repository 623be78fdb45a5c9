"""`ipfs-accelerate case MODEL [--hardware ...]`: run one model's cases and print what happened.

The quickest way to try a registry entry while adding it; exits 1 if any case failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..results.status import FAILING


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", help="registry model names")
    parser.add_argument("--hardware", nargs="+", default=["cpu", "openvino"])
    parser.add_argument("--task", default=None)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--model-id", default=None, help="local checkpoint folder or cached repo id")
    parser.add_argument("--expected-dir", default=None, type=Path)
    parser.add_argument("--update-expected", action="store_true")
    parser.add_argument("--json", action="store_true", help="print full JSON results")


def main(args: argparse.Namespace) -> int:
    from ..registry import UnknownNameError
    from .case import Case, Settings

    settings = Settings(model_id=args.model_id, expected_dir=args.expected_dir, update_expected=args.update_expected)
    failed = False
    for model in args.models:
        for hw in args.hardware:
            start = time.perf_counter()
            try:
                result = Case(model, hw, task=args.task, precision=args.precision, settings=settings).run()
            except UnknownNameError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            failed |= result.status in FAILING  # seam(history-2): the one status vocabulary
            if args.json:
                print(json.dumps(result.model_dump(), indent=1))
                continue
            par = ""
            if result.parity:
                worst = max((o.max_abs for o in result.parity.outputs), default=0.0)
                par = f" parity max_abs={worst:.2e} tokens={result.parity.tokens_match}"
            lat = f" p50={result.metrics.latency.p50_ms:.2f}ms" if result.metrics.latency else ""
            print(
                f"{model:24} {hw:9} {result.status:8} {result.conversion:14} build={result.metrics.build_s or 0:.2f}s "
                f"prep={result.metrics.prepare_s or 0:.2f}s{lat}{par} expected={result.expected} "
                f"wall={time.perf_counter() - start:.1f}s {' '.join(result.flags)}"
            )
            if result.reason:
                print("    " + result.reason.replace("\n", "\n    ")[:2000])
    return 1 if failed else 0
