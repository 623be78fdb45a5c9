"""`ipfs-accelerate` command line.

Each subcommand lives in its own module exposing ``configure(parser)`` and ``main(args) -> int``;
modules are imported only when their subcommand runs, so `ipfs-accelerate generate` never pays for
torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "hardware": ("ipfs_accelerate.hardware.cli", "detect CPU/CUDA/ROCm/MPS/OpenVINO and print them"),
    "generate": ("ipfs_accelerate.generate.cli", "generate model and API tests from the registry"),
    "run": ("ipfs_accelerate.runner.cli", "run generated tests in parallel workers and report"),
    "models": ("ipfs_accelerate.registry.cli", "list registry models, tasks and known incompatibilities"),
    "case": ("ipfs_accelerate.harness.cli", "run one (model, hardware) case and print its result"),
    "fake-server": ("ipfs_accelerate.api.testing.cli", "serve a local fake of an inference API"),
    "diffusion": ("ipfs_accelerate.diffusion.cli", "tiny Stable Diffusion / SDXL pipelines: list, run, fingerprint, generate tests"),
    "cache": ("ipfs_accelerate.cache.cli", "list, verify, prune, export/import (CAR) and push/pull (IPFS) the artifact cache"),
    "bench-report": ("ipfs_accelerate.results.bench_report", "benchmark tables (backend x precision x batch) from a run's results"),
    "registry-drift": ("ipfs_accelerate.registry.derive", "fail naming every transformers type/head the registry does not account for"),
    "history": ("ipfs_accelerate.results.history_cli", "list recorded runs, show one, or a metric's trend"),
    "compare": ("ipfs_accelerate.results.compare_cli", "what changed between two runs; --fail-on for CI gating"),
}


def _configure(name: str, parser: argparse.ArgumentParser) -> object:
    module = importlib.import_module(SUBCOMMANDS[name][0])
    module.configure(parser)
    return module


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="ipfs-accelerate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in SUBCOMMANDS:
        if argv and argv[0] not in {"-h", "--help"}:
            parser.print_usage(sys.stderr)
            import difflib

            close = difflib.get_close_matches(argv[0], list(SUBCOMMANDS), n=3)
            hint = f" (did you mean: {', '.join(close)}?)" if close else ""
            print(f"ipfs-accelerate: unknown command {argv[0]!r}{hint}", file=sys.stderr)
            return 2
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    subparser = argparse.ArgumentParser(prog=f"ipfs-accelerate {name}", description=SUBCOMMANDS[name][1])
    module = _configure(name, subparser)
    args = subparser.parse_args(argv[1:])
    return int(module.main(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
