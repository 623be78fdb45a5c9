"""Content-addressed artifact cache: every expensive artifact (OpenVINO IR per conversion path,
conversion failures) is stored under its UnixFS CIDv1 and re-verified on every read.

`artifact(kind, key, build)` is the one entry point for code that builds things; see store.py for
the layout, unixfs.py for the CID settings (ipfs-car's), car.py for CAR export/import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import ledger
from .store import Cache, CacheConfig, CacheError, Entry

__all__ = ["Cache", "CacheConfig", "CacheError", "Entry", "artifact", "get_cache", "ledger"]

_cache: Cache | None = None


def get_cache() -> Cache:
    """The process's cache, configured from the environment on first use (workers inherit
    IPFS_ACCELERATE_CACHE / _NO_CACHE / _CACHE_MAX_GB from the runner)."""
    global _cache
    config = CacheConfig.from_env()
    if _cache is None or _cache.config != config:
        _cache = Cache(config)
    return _cache


@contextmanager
def artifact(kind: str, key: dict[str, Any], build: Callable[[Path], None]) -> Iterator[Path]:
    with get_cache().artifact(kind, key, build) as path:
        yield path
