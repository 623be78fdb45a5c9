"""Pure unit tests of api/core/_queue.py that kill its mutants (FakeClock; waits of 10 ms at most).

The queue decides whether a request may be sent at all: these pin the waiting-room check of a
first attempt, the exact timeout errors (sync and async) and that an interrupted waiter leaves
no phantom entry behind.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from ipfs_accelerate.api.core import FakeClock, QueueConfig, _queue
from ipfs_accelerate.api.core._errors import APITimeoutError, QueueFullError
from ipfs_accelerate.api.core._queue import RequestQueue


def test_first_attempt_checks_the_waiting_room() -> None:
    q = RequestQueue(QueueConfig(max_concurrency=1, max_waiting=0), FakeClock())
    q.acquire(q.ticket())
    with pytest.raises(QueueFullError, match=r"^request queue full: 0 waiting, limit 0 \(max_concurrency=1\)$"):
        q.acquire(q.ticket(), timeout=0.01)
    with pytest.raises(APITimeoutError):  # a retry (first=False) skips the size check and waits
        q.acquire(q.ticket(), first=False, timeout=0.01)
    assert q.waiting == 0
    q.release()


def test_sync_timeout_message() -> None:
    q = RequestQueue(QueueConfig(max_concurrency=1), FakeClock())
    q.acquire(q.ticket())
    with pytest.raises(APITimeoutError) as info:
        q.acquire(q.ticket(), timeout=0.01)
    assert info.value.message == "timed out after 0.010s waiting in the request queue"
    q.release()


def test_interrupted_sync_waiter_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    class Interrupted(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            raise KeyboardInterrupt

    q = RequestQueue(QueueConfig(max_concurrency=1), FakeClock())
    q.acquire(q.ticket())
    monkeypatch.setattr(_queue.threading, "Event", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        q.acquire(q.ticket())
    assert (q.waiting, q.in_flight) == (0, 1)
    q.release()
    assert q.in_flight == 0


def test_async_timeout_and_first_check() -> None:
    async def main() -> None:
        q = RequestQueue(QueueConfig(max_concurrency=1, max_waiting=0), FakeClock())
        await q.aacquire(q.ticket())
        with pytest.raises(QueueFullError):
            await q.aacquire(q.ticket(), timeout=0.01)
        with pytest.raises(APITimeoutError) as info:
            await q.aacquire(q.ticket(), first=False, timeout=0.01)
        assert info.value.message == "timed out after 0.010s waiting in the request queue"
        assert info.value.__suppress_context__
        assert (q.waiting, q.in_flight) == (0, 1)
        q.release()

    asyncio.run(asyncio.wait_for(main(), 5.0))


def test_release_without_acquire_is_an_error_and_changes_nothing() -> None:
    q = RequestQueue(QueueConfig(max_concurrency=2), FakeClock())
    with pytest.raises(RuntimeError, match=r"^RequestQueue\.release\(\) without a matching acquire$"):
        q.release()
    assert q.in_flight == 0
    q.acquire(q.ticket())
    assert q.in_flight == 1


def test_counts_every_grant_and_the_peak() -> None:
    q = RequestQueue(QueueConfig(max_concurrency=3), FakeClock())
    for _ in range(3):
        q.acquire(q.ticket())
    q.release()
    q.acquire(q.ticket())
    assert (q.granted_total, q.peak_in_flight, q.in_flight) == (4, 3, 3)


def test_fresh_counters_and_ticket_fields() -> None:
    clock = FakeClock()
    q = RequestQueue(QueueConfig(max_concurrency=2), clock)
    assert (q.granted_total, q.peak_in_flight, q.in_flight, q.waiting) == (0, 0, 0, 0)
    a, b = q.ticket("high"), q.ticket()
    assert (a.priority, a.enqueued_at, a.seq) == ("high", clock.now(), 0)
    assert (b.priority, b.seq) == ("normal", 1) and a.key < b.key
    with pytest.raises(ValueError, match=r"^priority must be one of \['high', 'low', 'normal'\], not 'urgent'$"):
        q.ticket("urgent")  # type: ignore[arg-type]
