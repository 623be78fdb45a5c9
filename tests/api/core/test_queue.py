"""Request queue: concurrency limit, priorities, FIFO, aging, queue-full, sync and async."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from ipfs_accelerate.api.core import (
    APITimeoutError,
    FakeClock,
    QueueConfig,
    QueueFullError,
    RequestOptions,
    RequestQueue,
)

from .conftest import ok


def _order_after_release(q: RequestQueue, tickets: list) -> list[str]:
    """Park one async waiter per ticket behind a held slot; release one slot at a time."""
    order: list[str] = []

    async def main() -> None:
        await q.aacquire(q.ticket("normal"))  # hold the only slot

        async def waiter(name: str, t) -> None:
            await q.aacquire(t)
            order.append(name)
            q.release()

        tasks = [asyncio.create_task(waiter(n, t)) for n, t in tickets]
        await asyncio.sleep(0)
        assert q.waiting == len(tickets)
        q.release()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    return order


def test_priorities_and_fifo_without_aging() -> None:
    clock = FakeClock()
    q = RequestQueue(QueueConfig(max_concurrency=1, aging_interval=None), clock)
    tickets = []
    for i, p in enumerate(["low", "normal", "high", "low", "high", "normal"]):
        tickets.append((f"{p}{i}", q.ticket(p)))
        clock.advance(1.0)
    assert _order_after_release(q, tickets) == [
        "high2",
        "high4",
        "normal1",
        "normal5",
        "low0",
        "low3",
    ]


def test_aging_lets_low_overtake_later_high() -> None:
    clock = FakeClock()
    q = RequestQueue(QueueConfig(max_concurrency=1, aging_interval=10.0), clock)
    tickets = [("low@0", q.ticket("low"))]
    clock.advance(15.0)
    tickets.append(("high@15", q.ticket("high")))  # key 15 < low's 20
    clock.advance(10.0)
    tickets.append(("high@25", q.ticket("high")))  # key 25 > low's 20
    tickets.append(("normal@25", q.ticket("normal")))  # key 35
    assert _order_after_release(q, tickets) == ["high@15", "low@0", "high@25", "normal@25"]


@pytest.mark.parametrize(("aging", "low_position"), [(5.0, 9), (None, 30)])
def test_low_never_starves_under_a_stream_of_high(aging: float | None, low_position: int) -> None:
    """Highs keep arriving (1/s) while one slot serves them; with aging the low request is
    served after ~2 aging intervals, without aging only after every high (starved)."""
    clock = FakeClock()
    q = RequestQueue(QueueConfig(max_concurrency=1, aging_interval=aging), clock)
    served: list[str] = []

    async def main() -> None:
        await q.aacquire(q.ticket())
        low = asyncio.create_task(_serve(q, q.ticket("low"), "low", served))
        highs = []
        for i in range(30):
            clock.advance(1.0)
            highs.append(asyncio.create_task(_serve(q, q.ticket("high"), f"h{i}", served)))
            await asyncio.sleep(0)
            if i == 0:
                q.release()  # start serving
            await asyncio.sleep(0)
        await asyncio.gather(low, *highs)

    asyncio.run(main())
    assert served.index("low") == low_position


async def _serve(q: RequestQueue, ticket, name: str, served: list[str]) -> None:
    await q.aacquire(ticket)
    served.append(name)
    await asyncio.sleep(0)
    q.release()


def test_queue_full_has_its_own_error() -> None:
    q = RequestQueue(QueueConfig(max_concurrency=1, max_waiting=1), FakeClock())

    async def main() -> None:
        await q.aacquire(q.ticket())
        parked = asyncio.create_task(q.aacquire(q.ticket()))
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError):
            await q.aacquire(q.ticket())
        # a retry (first=False) of an admitted request is not refused
        retry = asyncio.create_task(q.aacquire(q.ticket(), first=False))
        await asyncio.sleep(0)
        q.release()
        await parked
        q.release()
        await retry
        q.release()

    asyncio.run(main())
    assert q.in_flight == 0 and q.waiting == 0


def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    q = RequestQueue(QueueConfig(max_concurrency=1), FakeClock())

    async def main() -> None:
        await q.aacquire(q.ticket())
        t = asyncio.create_task(q.aacquire(q.ticket()))
        await asyncio.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert q.waiting == 0
        q.release()
        assert q.in_flight == 0
        # granted-then-cancelled: the slot comes back
        await q.aacquire(q.ticket())
        t = asyncio.create_task(q.aacquire(q.ticket()))
        await asyncio.sleep(0)
        q.release()  # grants to t
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert q.in_flight == 0

    asyncio.run(main())


def test_sync_wait_timeout() -> None:
    q = RequestQueue(QueueConfig(max_concurrency=1), FakeClock())
    q.acquire(q.ticket())
    with pytest.raises(APITimeoutError):
        q.acquire(q.ticket(), timeout=0.01)
    assert q.waiting == 0
    q.release()
    assert q.in_flight == 0


def test_invalid_priority() -> None:
    with pytest.raises(ValueError):
        RequestQueue(QueueConfig(), FakeClock()).ticket("urgent")  # type: ignore[arg-type]


def _counting_handler(state: dict, limit: int, lock: threading.Lock):
    """Counts requests inside the transport at once; each waits there until ``limit`` have been
    inside together (bounded), so the peak is reached on any machine, not only an idle one."""
    reached = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            state["seen"].append(request.headers["x-req"])
            if state["now"] >= limit:
                reached.set()
        reached.wait(30)  # a bound on a broken queue, not a timing
        with lock:
            state["now"] -= 1
        return ok({"id": request.headers["x-req"]})

    return handler


def test_threads_never_exceed_the_limit() -> None:
    from ipfs_accelerate.api.core import APIClient

    state = {"now": 0, "max": 0, "seen": []}
    lock = threading.Lock()
    client = APIClient(
        base_url="http://api.test",
        transport=httpx.MockTransport(_counting_handler(state, 3, lock)),
        queue=QueueConfig(max_concurrency=3),
    )
    results: list[str] = []

    def work(i: int) -> None:
        r = client.request(RequestOptions("POST", "/x", json={}, headers={"x-req": str(i)}))
        with lock:
            results.append(r["id"])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results, key=int) == [str(i) for i in range(40)]
    assert state["max"] == 3 and client.queue.peak_in_flight == 3
    assert client.queue.in_flight == 0


def test_async_1000_requests_at_concurrency_32() -> None:
    from ipfs_accelerate.api.core import APIClient

    state = {"now": 0, "max": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await asyncio.sleep(0)
        state["now"] -= 1
        return ok({"id": int(request.headers["x-req"])})

    client = APIClient(
        base_url="http://api.test",
        transport=httpx.MockTransport(handler),
        queue=QueueConfig(max_concurrency=32),
    )

    async def main() -> list[int]:
        async def one(i: int) -> int:
            opts = RequestOptions(
                "POST",
                "/x",
                json={},
                headers={"x-req": str(i)},
                priority=("high", "normal", "low")[i % 3],
            )
            return (await client.arequest(opts))["id"]

        return await asyncio.gather(*(one(i) for i in range(1000)))

    ids = asyncio.run(main())
    assert sorted(ids) == list(range(1000))
    assert state["max"] == 32 and client.queue.peak_in_flight == 32
    assert client.stats()["api POST /x"].requests == 1000


def test_cancelled_request_releases_its_slot_and_counts() -> None:
    from ipfs_accelerate.api.core import APIClient

    started = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    client = APIClient(
        base_url="http://api.test",
        transport=httpx.MockTransport(handler),
        queue=QueueConfig(max_concurrency=1),
    )

    async def main() -> None:
        task = asyncio.create_task(client.arequest(RequestOptions("POST", "/x", json={})))
        await started.wait()
        assert client.queue.in_flight == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.queue.in_flight == 0

    asyncio.run(main())
    s = client.stats()["api POST /x"]
    assert (s.requests, s.failures, s.errors) == (1, 1, {"CancelledError": 1})


def test_sync_waiters_follow_priority_order() -> None:
    clock = FakeClock()
    q = RequestQueue(QueueConfig(max_concurrency=1, aging_interval=None), clock)
    q.acquire(q.ticket())
    order: list[str] = []

    def waiter(name: str, priority) -> None:
        q.acquire(q.ticket(priority))
        order.append(name)
        q.release()

    threads = []
    for i, (name, p) in enumerate([("low", "low"), ("normal", "normal"), ("high", "high")]):
        t = threading.Thread(target=waiter, args=(name, p))
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 30  # a bound on a hang, not a timing
        while q.waiting < i + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
    q.release()
    for t in threads:
        t.join(30)
    assert order == ["high", "normal", "low"] and q.in_flight == 0
