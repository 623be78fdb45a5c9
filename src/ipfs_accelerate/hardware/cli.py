"""`ipfs-accelerate hardware [--json]`: what this machine offers, probed for real."""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def main(args: argparse.Namespace) -> int:
    from .detect import detect

    report = detect()
    if args.json:
        print(json.dumps({**report.to_dict(), "backends": report.available()}, indent=2, sort_keys=True))
        return 0
    from rich.console import Console
    from rich.table import Table

    cpu = report.cpu
    table = Table(title="Hardware")
    for col in ("platform", "available", "details"):
        table.add_column(col)
    table.add_row(
        "cpu", "✅", f"{cpu.model} · {cpu.arch} · {cpu.usable_cores}/{cpu.logical_cores} cores usable · {' '.join(cpu.flags) or 'no ISA flags read'}"
    )
    for name in ("cuda", "rocm", "mps", "openvino"):
        info = getattr(report, name)
        if info.available:
            devs = ", ".join(str(d.get("name", d)) if isinstance(d, dict) else str(d) for d in info.devices)
            detail = f"{info.version} · {devs}".strip(" ·")
        else:
            detail = info.reason
        table.add_row(name, "✅" if info.available else "❌", detail)
    Console().print(table)
    print("backends for model tests:", " ".join(report.available()))
    return 0
