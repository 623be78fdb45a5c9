"""Trackers return value objects the report trusts: the peak-memory one must see an allocation
made inside its block, forget one made before it, and cost no background thread on Linux."""

from __future__ import annotations

import sys
import threading

import pytest

from ipfs_accelerate.harness.trackers import MemoryTracker, measure, timer_for

MB = 2**20


def _touch(n_mb: int) -> bytearray:
    buf = bytearray(n_mb * MB)
    for i in range(0, len(buf), 4096):  # fault every page in: RSS, not just address space
        buf[i] = 1
    return buf


def test_peak_sees_allocation_inside_block() -> None:
    with MemoryTracker() as mem:
        base = mem.peak_mb
        buf = _touch(120)
        del buf
    assert mem.peak_mb - base >= 100, (base, mem.peak_mb)


def test_peak_is_reset_per_block() -> None:
    buf = _touch(150)
    del buf
    with MemoryTracker() as mem:
        small = _touch(5)
        del small
    # the 150 MB peak happened before the block (and was freed): it is not this block's peak
    assert mem.peak_mb - MemoryTracker()._rss() / MB < 60, mem.peak_mb


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel peak (VmHWM reset) is Linux-only")
def test_linux_uses_kernel_peak_without_a_sampler_thread() -> None:
    before = threading.active_count()
    with MemoryTracker() as mem:
        assert threading.active_count() == before, "a sampler thread would compete with the timed code"
    assert mem._kernel


class FakeClock:
    """A clock the measured function advances: each call takes the next scripted duration."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 0.0
        self.durations = list(durations)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def work(self) -> None:
        self.now += self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1


def test_measure_times_each_run() -> None:
    clock = FakeClock([0.010, 0.010, 0.010, 0.020, 0.030, 0.040, 0.050])
    lat = measure(clock.work, warmup=3, runs=4, clock=clock)
    assert clock.calls == 7 and lat.n == 4 and lat.warmup == 3
    assert lat.p50_ms == pytest.approx(35.0) and lat.min_ms == pytest.approx(20.0) and lat.max_ms == pytest.approx(50.0)


def test_warmup_continues_until_steady() -> None:
    # a cold start that settles after 5 calls: warm-up must not stop at its minimum of 2
    clock = FakeClock([1.0, 0.5, 0.2, 0.1, 0.1, 0.1, 0.1])
    lat = measure(clock.work, warmup=2, runs=3, clock=clock)
    assert lat.warmup == 6 and lat.steady is True
    assert lat.max_ms == pytest.approx(100.0)


def test_runs_are_bounded_by_time_budget() -> None:
    clock = FakeClock([2.0])
    lat = measure(clock.work, warmup=1, runs=100, max_time_s=9.0, clock=clock)
    # warm-up stops once half the budget is spent (3 calls, 6 s); runs stop at 9 s: 2 timed, not 100
    assert lat.warmup == 3 and lat.n == 2 and "stopped by time" in lat.stopped_by


def test_a_call_longer_than_the_budget_is_measured_once() -> None:
    clock = FakeClock([30.0])
    lat = measure(clock.work, warmup=1, runs=20, max_time_s=10.0, clock=clock)
    assert lat.n == 1 and lat.p50_ms == pytest.approx(30000.0)


def test_timer_choice_by_device() -> None:
    # the CUDA path is chosen by device name; it only touches torch.cuda when a call is timed
    assert timer_for("cuda").kind == "cuda-events"
    assert timer_for("cuda:1").kind == "cuda-events"
    assert timer_for("cpu").kind == "perf_counter"
    assert timer_for("openvino").kind == "perf_counter"
