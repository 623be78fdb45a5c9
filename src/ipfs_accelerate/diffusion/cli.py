"""`ipfs-accelerate diffusion`: list, run, fingerprint and generate the tiny diffusion cases.

`fingerprint` prints a SHA-256 of a case's CPU outputs (bit-exact bytes), which is how the tests
prove determinism across processes; `generate` writes / checks the thin test files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import TextIO


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="list the cases")
    run = sub.add_parser("run", help="run cases and print one JSON CaseResult line each")
    run.add_argument("names", nargs="*", help="cases (default: all)")
    run.add_argument("--hardware", nargs="+", default=["cpu", "openvino"])
    fp = sub.add_parser("fingerprint", help="SHA-256 of a case's CPU outputs (ids, embeddings, latents, image)")
    fp.add_argument("names", nargs="+")
    gen = sub.add_parser("generate", help="write test/skills/test_diffusion_<name>.py")
    gen.add_argument("--output-dir", default=None, help="test folder holding skills/ (default: . in test/, else ./test)")
    gen.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is missing or outdated")


def digest(name: str) -> str:
    """Hash of every output array's dtype, shape and bytes, in a fixed order."""
    from .case import DiffusionCase

    out = DiffusionCase(name, "cpu").outputs
    h = hashlib.sha256()
    arrays = dict(out.arrays)
    if out.tokens is not None:
        arrays["tokens"] = out.tokens
    for key in sorted(arrays):
        value = arrays[key]
        h.update(f"{key}:{value.dtype}:{value.shape};".encode())
        h.update(value.tobytes())
    return h.hexdigest()


def main(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Exit 0 on success, 1 when a case fails or a generated file is stale, 2 on a bad name."""
    from ..registry.errors import UnknownNameError
    from . import spec

    out, err = out or sys.stdout, err or sys.stderr
    try:
        for name in getattr(args, "names", None) or []:
            spec.get(name)  # an unknown name fails before torch is imported
    except UnknownNameError as exc:
        print(f"ipfs-accelerate diffusion: error: {exc}", file=err)
        return 2
    if args.action == "list":
        for name in spec.names():
            s = spec.get(name)
            print(f"{name}\t{s.task}\t{s.description}", file=out)
        return 0
    if args.action == "fingerprint":
        for name in args.names:
            print(f"{name} {digest(name)}", file=out)
        return 0
    if args.action == "generate":
        from ..generate import engine
        from .generate import targets

        out_dir = Path(args.output_dir) if args.output_dir else (Path(".") if Path("skills").is_dir() else Path("test"))
        todo = targets()
        if args.check:
            stale = [t for t in todo if engine.inspect(out_dir / t.relpath, t.content) != "current"]
            for t in stale:
                print(f"outdated or missing: {out_dir / t.relpath}", file=out)
            return 1 if stale else 0
        report = engine.write_targets(todo, out_dir)
        for t, action in report.actions:
            print(f"{action}: {out_dir / t.relpath}", file=out)
        return 1 if report.of("skipped-exists", "skipped-edited", "skipped-foreign") else 0
    from .case import DiffusionCase

    bad = 0
    for name in args.names or spec.names():
        for hw in args.hardware:
            result = DiffusionCase(name, hw).run()
            bad += result.status == "failed"
            print(json.dumps(json.loads(result.model_dump_json()), sort_keys=True), file=out)
    return 1 if bad else 0
