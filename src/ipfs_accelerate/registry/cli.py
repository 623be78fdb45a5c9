"""`ipfs-accelerate models [--category C] [--task T] [--json]`: what the registry holds."""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default=None, help="wildcard on model names, e.g. 'gpt*'")
    parser.add_argument("--category", default=None)
    parser.add_argument("--task", default=None)
    parser.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    from . import UnknownNameError, list_models

    try:
        models = list_models(args.pattern, category=args.category, task=args.task)
    except UnknownNameError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        rows = [
            {
                "name": m.name,
                "category": m.category,
                "task": m.task,
                "tasks": {t: s.head for t, s in m.tasks.items()},
                "requires": list(m.requires),
                "known_incompatible": m.known_incompatible,
            }
            for m in models
        ]
        print(json.dumps(rows, indent=1))
        return 0
    for m in models:
        notes = "; ".join(f"{hw}: {why}" for hw, why in m.known_incompatible.items())
        if m.requires:
            notes = f"requires {', '.join(m.requires)}" + (f"; {notes}" if notes else "")
        print(f"{m.name:28} {m.category:12} {m.task:32} {len(m.tasks)} task(s)  {notes}")
    print(f"{len(models)} models")
    return 0 if models else 3
