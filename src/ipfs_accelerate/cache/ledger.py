"""What the cache did for the case running in this process, for its result and the run totals.

A process-wide list because the cache is reached from deep inside backends (OpenVINO conversion)
that know nothing about the case; the harness drains it at the start and end of each case.
"""

from __future__ import annotations

from typing import Any

_events: list[dict[str, Any]] = []


def record(stage: str, status: str, *, cid: str = "", size: int = 0, build_s: float = 0.0,
           saved_s: float = 0.0, detail: str = "") -> None:
    """status: hit | miss | replaced (was corrupt: evicted and rebuilt) | off (--no-cache) | error."""
    _events.append({"stage": stage, "status": status, "cid": cid, "bytes": size,
                    "build_s": round(build_s, 4), "saved_s": round(saved_s, 4), "detail": detail[:300]})


def drain() -> list[dict[str, Any]]:
    out = list(_events)
    _events.clear()
    return out


def totals(events: list[dict[str, Any]]) -> dict[str, float]:
    """Run totals: hits, misses (incl. replaced), replaced, bytes read from cache, seconds saved."""
    hits = [e for e in events if e["status"] == "hit"]
    return {
        "hits": len(hits),
        "misses": sum(e["status"] in {"miss", "replaced"} for e in events),
        "replaced": sum(e["status"] == "replaced" for e in events),
        "bytes_read": sum(e["bytes"] for e in hits),
        "saved_s": round(sum(e["saved_s"] for e in hits), 3),
    }
