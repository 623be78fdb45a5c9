"""Trackers are context managers that return value objects (optimum-benchmark style)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import numpy as np

from ..results.schema import Latency


def latency_from(values_s: list[float], warmup: int) -> Latency:
    ms = np.asarray(values_s, dtype=np.float64) * 1000.0
    return Latency(
        n=len(ms),
        warmup=warmup,
        mean_ms=float(ms.mean()),
        p50_ms=float(np.percentile(ms, 50)),
        p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)),
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
    )


def measure(fn: Callable[[], object], *, warmup: int, runs: int, sync: Callable[[], None] | None = None) -> Latency:
    """Run `fn` `warmup` times untimed, then `runs` times timed with perf_counter."""
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        values.append(time.perf_counter() - start)
    return latency_from(values, warmup)


class MemoryTracker:
    """Peak RSS of this process over the `with` block; `peak_mb` after exit.

    On Linux the kernel keeps the peak itself: writing "5" to /proc/self/clear_refs resets VmHWM
    and /proc/self/status reports it, exact and free. Elsewhere a thread samples RSS every
    `interval` s — which costs CPU and GIL switches inside the timed code, so it is the fallback.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._kernel = False

    def _rss(self) -> int:
        import psutil

        return psutil.Process(os.getpid()).memory_info().rss

    @staticmethod
    def _hwm() -> int | None:
        try:
            with open("/proc/self/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    @staticmethod
    def _reset_hwm() -> bool:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
            return True
        except OSError:
            return False

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_bytes = max(self.peak_bytes, self._rss())

    def __enter__(self) -> MemoryTracker:
        self._kernel = self._reset_hwm() and self._hwm() is not None
        self.peak_bytes = self._rss()
        if not self._kernel:
            self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._kernel:
            self.peak_bytes = max(self.peak_bytes, self._hwm() or 0)
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._rss())

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20
