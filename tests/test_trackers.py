"""Trackers return value objects the report trusts: the peak-memory one must see an allocation
made inside its block, forget one made before it, and cost no background thread on Linux."""

from __future__ import annotations

import sys
import threading

import pytest

from ipfs_accelerate.harness.trackers import MemoryTracker, measure

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


def test_measure_times_each_run() -> None:
    calls: list[int] = []
    lat = measure(lambda: calls.append(1), warmup=2, runs=5)
    assert len(calls) == 7
    assert lat.n == 5 and lat.p50_ms >= 0
