"""Request queue: a concurrency limit with priorities, FIFO within a priority, and aging.

One queue serves sync (threads) and async (asyncio tasks) callers of the same client, so the
limit holds across both. A freed slot is handed directly to the best waiter, never raced for.

Ordering: each request gets a :class:`Ticket` when it arrives. With aging on, the waiting order
is ``enqueued_at + rank * aging_interval`` (rank high=0, normal=1, low=2): waiting one interval
is worth one priority level, so a low request overtakes high requests that arrived more than two
intervals after it — low never starves. Because every waiter ages at the same rate, that key is
constant, so a heap works. Ties (same priority, same instant) go by arrival order.

A retry re-acquires with its original ticket, so it goes ahead of requests that came later; the
slot is not held during backoff sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from ._clock import Clock
from ._config import PRIORITY_RANK, Priority, QueueConfig
from ._errors import APITimeoutError, QueueFullError

__all__ = ["RequestQueue", "Ticket"]


@dataclass(frozen=True, slots=True)
class Ticket:
    priority: Priority
    enqueued_at: float
    seq: int
    key: tuple[float, float, int] = field(repr=False)


@dataclass(eq=False, slots=True)
class _Waiter:
    ticket: Ticket
    event: threading.Event | None = None
    future: asyncio.Future[None] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    granted: bool = False
    abandoned: bool = False

    def __lt__(self, other: _Waiter) -> bool:
        return self.ticket.key < other.ticket.key


class RequestQueue:
    def __init__(self, config: QueueConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._heap: list[_Waiter] = []
        self._seq = itertools.count()
        self._in_flight = 0
        self._waiting = 0
        self.peak_in_flight = 0
        self.granted_total = 0

    def __repr__(self) -> str:
        return (
            f"RequestQueue(limit={self.config.max_concurrency}, in_flight={self._in_flight}, "
            f"waiting={self._waiting})"
        )

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return self._waiting

    def ticket(self, priority: Priority = "normal") -> Ticket:
        if priority not in PRIORITY_RANK:
            raise ValueError(f"priority must be one of {sorted(PRIORITY_RANK)}, not {priority!r}")
        now = self._clock.now()
        seq = next(self._seq)
        rank = PRIORITY_RANK[priority]
        aging = self.config.aging_interval
        key = (now + rank * aging, 0.0, seq) if aging else (float(rank), now, seq)
        return Ticket(priority, now, seq, key)

    # -- acquisition -------------------------------------------------------------------------

    def _enqueue(self, ticket: Ticket, first: bool, *, is_async: bool) -> _Waiter | None:
        """Take a slot now (returns None) or register a waiter."""
        with self._lock:
            if self._in_flight < self.config.max_concurrency and not self._waiting:
                self._grant_locked()
                return None
            limit = self.config.max_waiting
            if first and limit is not None and self._waiting >= limit:
                raise QueueFullError(
                    f"request queue full: {self._waiting} waiting, limit {limit} "
                    f"(max_concurrency={self.config.max_concurrency})"
                )
            waiter = _Waiter(ticket)
            if is_async:
                waiter.loop = asyncio.get_running_loop()
                waiter.future = waiter.loop.create_future()
            else:
                waiter.event = threading.Event()
            heapq.heappush(self._heap, waiter)
            self._waiting += 1
            return waiter

    def acquire(self, ticket: Ticket, *, first: bool = True, timeout: float | None = None) -> None:
        """Block until this ticket holds a slot. ``first`` False (a retry) skips the size check."""
        waiter = self._enqueue(ticket, first, is_async=False)
        if waiter is None:
            return
        assert waiter.event is not None
        try:
            ok = waiter.event.wait(timeout)
        except BaseException:
            if self._abandon(waiter):
                self.release()
            raise
        if not ok and not self._abandon(waiter):
            raise APITimeoutError(f"timed out after {timeout:.3f}s waiting in the request queue")

    async def aacquire(
        self, ticket: Ticket, *, first: bool = True, timeout: float | None = None
    ) -> None:
        waiter = self._enqueue(ticket, first, is_async=True)
        if waiter is None:
            return
        assert waiter.future is not None
        try:
            if timeout is None:
                await waiter.future
            else:
                await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except TimeoutError:
            if not self._abandon(waiter):
                raise APITimeoutError(
                    f"timed out after {timeout:.3f}s waiting in the request queue"
                ) from None
        except BaseException:
            if self._abandon(waiter):
                self.release()
            raise

    def _abandon(self, waiter: _Waiter) -> bool:
        """The waiter gives up. Returns True if it had been granted meanwhile (it keeps the slot
        when called from a timeout path; a cancelled caller releases it)."""
        with self._lock:
            if waiter.granted:
                granted = True
            else:
                waiter.abandoned = True
                self._waiting -= 1
                granted = False
        return granted

    def release(self) -> None:
        """Give a slot back; the best live waiter gets it."""
        with self._lock:
            self._in_flight -= 1
            if self._in_flight < 0:
                self._in_flight = 0
                raise RuntimeError("RequestQueue.release() without a matching acquire")
            waiter = self._pop_live_locked()
            if waiter is None:
                return
            self._grant_locked()
            waiter.granted = True
            self._waiting -= 1
        self._wake(waiter)

    def _pop_live_locked(self) -> _Waiter | None:
        while self._heap:
            waiter = heapq.heappop(self._heap)
            if not waiter.abandoned:
                return waiter
        return None

    def _grant_locked(self) -> None:
        self._in_flight += 1
        self.granted_total += 1
        if self._in_flight > self.peak_in_flight:
            self.peak_in_flight = self._in_flight

    def _wake(self, waiter: _Waiter) -> None:
        if waiter.event is not None:
            waiter.event.set()
            return
        assert waiter.loop is not None and waiter.future is not None
        fut = waiter.future

        def _set() -> None:
            if not fut.done():
                fut.set_result(None)

        try:
            waiter.loop.call_soon_threadsafe(_set)
        except RuntimeError:
            # The waiter's loop is closed: nobody will use this slot.
            self.release()

    # -- convenience ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def slot(self, priority: Priority = "normal", timeout: float | None = None) -> Iterator[None]:
        """Hold one slot for the block (for clients that do not go through ``APIClient``)."""
        self.acquire(self.ticket(priority), timeout=timeout)
        try:
            yield
        finally:
            self.release()

    @contextlib.asynccontextmanager
    async def aslot(
        self, priority: Priority = "normal", timeout: float | None = None
    ) -> AsyncIterator[None]:
        await self.aacquire(self.ticket(priority), timeout=timeout)
        try:
            yield
        finally:
            self.release()
