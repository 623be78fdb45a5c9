"""The report's "Artifact cache" section: per case, what each stage got from the cache; run totals."""

from __future__ import annotations

from typing import Any

from .ledger import totals

_ICON = {"hit": "hit", "miss": "miss (built)", "replaced": "**replaced** (failed CID check: evicted, rebuilt)",
         "off": "off (--no-cache)", "error": "error (cache unusable, built without it)"}


def cache_section(cases: list[Any]) -> list[str]:
    """Markdown lines (empty when no case used the cache). `cases`: CaseResult-like objects."""
    rows, events = [], []
    seen = set()
    for c in cases:
        uses = list(getattr(c.metrics, "cache", []) or [])
        ident = (c.model, c.task, c.hardware, c.precision)
        if not uses or ident in seen:
            continue
        seen.add(ident)
        for u in uses:
            events.append(u.model_dump() if hasattr(u, "model_dump") else dict(u))
            rows.append(f"| {c.model} | {c.hardware} | {u.stage} | {_ICON.get(u.status, u.status)} | "
                        f"{u.bytes / 2**20:.2f} | {u.saved_s:.2f} | `{u.cid[:16]}…` |"
                        + (f" {u.detail[:120]}" if u.status in {"replaced", "error"} else ""))
    if not rows:
        return []
    t = totals(events)
    return [
        "## Artifact cache", "",
        f"Hits {t['hits']}, misses {t['misses']} (of which replaced after a failed CID check: {t['replaced']}), "
        f"{t['bytes_read'] / 2**20:.1f} MiB read from cache, {t['saved_s']:.1f} s of building saved (summed over workers).", "",
        "| model | hardware | stage | result | MiB | s saved | CID |", "|---|---|---|---|---|---|---|", *rows, "",
    ]
