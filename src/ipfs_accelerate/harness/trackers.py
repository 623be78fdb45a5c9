"""Trackers are context managers and functions that return value objects (optimum-benchmark style).

`measure` is the one timing loop: warm-up until steady (the last few warm-up times agree), then
repetitions bounded by a count *and* a time budget, so a full-size model at batch 16 is measured
a few times instead of blowing the per-test timeout. The clock is picked once per device: CUDA
events + synchronize on a GPU (host timers would time the launch, not the kernels),
`perf_counter` otherwise. Clocks are injectable so the loop is tested without sleeping.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..results.schema import Latency

STEADY_WINDOW = 3  # warm-up is steady when the last N times are within STEADY_REL of their median
STEADY_REL = 0.10
MIN_RUNS = 2  # fewer than two timed runs give no spread at all
DEFAULT_MAX_TIME_S = 20.0  # per measurement; tiny models never reach it, batch 16 at full size does


def latency_from(values_s: list[float], warmup: int, stopped_by: str = "", steady: bool | None = None) -> Latency:
    ms = np.asarray(values_s, dtype=np.float64) * 1000.0
    fields = {}
    if "samples_ms" in Latency.model_fields:
        fields["samples_ms"] = [round(float(v), 4) for v in ms]
    if "stopped_by" in Latency.model_fields:
        fields.update(stopped_by=stopped_by, steady=steady)
    return Latency(
        n=len(ms),
        warmup=warmup,
        mean_ms=float(ms.mean()),
        p50_ms=float(np.percentile(ms, 50)),
        p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)),
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
        **fields,
    )


@dataclass(frozen=True)
class Timer:
    """How one call is timed: `kind` names the clock (recorded in results)."""

    kind: str
    time_call: Callable[[Callable[[], object]], float]  # seconds one call of fn took


def perf_timer(clock: Callable[[], float] = time.perf_counter, sync: Callable[[], None] | None = None) -> Timer:
    def time_call(fn: Callable[[], object]) -> float:
        start = clock()
        fn()
        if sync:
            sync()
        return clock() - start

    return Timer("perf_counter+sync" if sync else "perf_counter", time_call)


def cuda_event_timer() -> Timer:
    """CUDA events recorded around the call on the current stream, then synchronize."""
    import torch

    def time_call(fn: Callable[[], object]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000.0

    return Timer("cuda-events", time_call)


def timer_for(device: str) -> Timer:
    """CUDA events for a CUDA device (`cuda`, `cuda:1`), perf_counter for everything else
    (OpenVINO's `infer` is synchronous, numpy outputs are copied before it returns)."""
    return cuda_event_timer() if device.split(":")[0] == "cuda" else perf_timer()


def steady(times: list[float], window: int = STEADY_WINDOW, rel: float = STEADY_REL) -> bool:
    if len(times) < window:
        return False
    last = times[-window:]
    mid = float(np.median(last))
    return mid > 0 and (max(last) - min(last)) <= rel * mid


def measure(
    fn: Callable[[], object],
    *,
    warmup: int,
    runs: int,
    sync: Callable[[], None] | None = None,
    max_time_s: float | None = DEFAULT_MAX_TIME_S,
    max_warmup: int | None = None,
    timer: Timer | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Latency:
    """Warm up at least `warmup` times and until steady (at most `max_warmup`, default 4x), then
    time up to `runs` calls; with `max_time_s`, warm-up and runs together stop once the budget is
    spent (keeping at least MIN_RUNS timed calls, or one when a single call exceeds the budget)."""
    timer = timer or perf_timer(clock, sync)
    max_warmup = max(warmup, max_warmup if max_warmup is not None else 4 * warmup)
    budget_start = clock()

    def spent() -> float:
        return clock() - budget_start

    warm: list[float] = []
    while len(warm) < max_warmup:
        if len(warm) >= warmup and (steady(warm) or warmup == 0):
            break
        warm.append(timer.time_call(fn))
        if max_time_s is not None and spent() >= max_time_s / 2 and len(warm) >= min(warmup, 1):
            break
    is_steady = steady(warm) if len(warm) >= STEADY_WINDOW else None
    values: list[float] = []
    stopped = "count"
    while len(values) < runs:
        if max_time_s is not None and spent() >= max_time_s and len(values) >= MIN_RUNS:
            stopped = "time"
            break
        values.append(timer.time_call(fn))
        if max_time_s is not None and len(values) == 1 and values[0] >= max_time_s:
            stopped = "time"
            break
    return latency_from(values, len(warm), stopped_by=f"{timer.kind}; stopped by {stopped}", steady=is_steady)


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
