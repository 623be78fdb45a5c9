"""The one retry loop with a transport that is not httpx: an attempt callable plus a classifier.

What the loop decides must not depend on the transport: Retry-After, backoff, give-up, a final
(local) error, an unknown exception, the breaker and the queue slot, and the total deadline.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from ipfs_accelerate.api.core import (
    OPENAI_RETRY,
    APIError,
    APITimeoutError,
    Attempt,
    BreakerConfig,
    BreakerSet,
    FakeClock,
    Outcome,
    QueueConfig,
    RequestQueue,
    ServerError,
    StatsRegistry,
    adrive,
    attempts,
    drive,
)

CTX = {"method": "OP", "url": "x://y", "provider": "toy"}


class Toy:
    """A transport whose answers are dicts {"status": int, "headers": {...}} or exceptions."""

    def __init__(self, script: list[Any], clock: FakeClock, cost: float = 0.0) -> None:
        self.script = list(script)
        self.clock = clock
        self.cost = cost  # fake seconds one attempt takes
        self.calls: list[Any] = []

    def perform(self, action: Attempt) -> Any:
        self.calls.append(action.arg)
        self.clock.advance(self.cost)
        answer = self.script.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def classify(value: Any, exc: Exception | None) -> Outcome:
    if exc is not None:
        if isinstance(exc, APIError):  # a spent deadline
            return Outcome(error=exc, final=True)
        if isinstance(exc, ConnectionError):
            return Outcome(error=APIError(f"toy: {exc}", **CTX), breaker_failure=True)
        if isinstance(exc, ValueError):  # a local failure: never retried
            return Outcome(error=APIError(f"toy: bad input: {exc}", **CTX), final=True)
        raise exc
    if value["status"] < 400:
        return Outcome(result=value)
    err = ServerError(f"toy: HTTP {value['status']}", status=value["status"], **CTX)
    return Outcome(error=err, status=value["status"], headers=value.get("headers", {}),
                   breaker_failure=value["status"] >= 500)


def make(script: list[Any], *, total: float | None = None, cost: float = 0.0, max_retries: int = 2,
         hold: bool = False, threshold: int = 5) -> tuple[Callable[[], Any], Toy, RequestQueue, BreakerSet, FakeClock]:
    clock = FakeClock()
    toy = Toy(script, clock, cost)
    queue = RequestQueue(QueueConfig(max_concurrency=1), clock)
    breakers = BreakerSet(BreakerConfig(failure_threshold=threshold, reset_timeout=30.0), clock)

    def gen() -> Any:
        return attempts(
            endpoint="toy OP", context=dict(CTX), clock=clock, ticket=queue.ticket(),
            breaker=breakers.get("toy OP"), stats=StatsRegistry().get("toy OP"), policy=OPENAI_RETRY,
            max_retries=max_retries, total=total, rng=random.Random(0), release=queue.release,
            build=lambda n, _key, _rem: {"retry": n}, classify=classify, hold=hold,
        )

    return gen, toy, queue, breakers, clock


def test_retry_after_then_success_sleeps_exactly_what_the_server_asked() -> None:
    gen, toy, queue, _, clock = make([{"status": 429, "headers": {"retry-after": "1.5"}}, {"status": 200}])
    result = drive(gen(), queue, clock, toy.perform)
    assert result == {"status": 200}
    assert clock.sleeps == [1.5]
    assert toy.calls == [{"retry": 0}, {"retry": 1}]
    assert queue.in_flight == 0


def test_gives_up_after_max_retries_with_the_last_error() -> None:
    gen, toy, queue, _, clock = make([{"status": 503}] * 3, max_retries=2)
    with pytest.raises(ServerError, match="503"):
        drive(gen(), queue, clock, toy.perform)
    assert len(toy.calls) == 3 and len(clock.sleeps) == 2
    assert queue.in_flight == 0


def test_connection_errors_retry_and_open_the_breaker() -> None:
    gen, toy, queue, breakers, clock = make([ConnectionError("reset")] * 3, threshold=2)
    with pytest.raises(APIError):
        drive(gen(), queue, clock, toy.perform)
    breaker = breakers.get("toy OP")
    assert breaker is not None and breaker.state == "open"
    assert len(toy.calls) == 2  # the third attempt was refused by the open breaker


def test_final_error_is_not_retried_and_unknown_exceptions_propagate() -> None:
    gen, toy, queue, _, clock = make([ValueError("no bucket")])
    with pytest.raises(APIError, match="bad input"):
        drive(gen(), queue, clock, toy.perform)
    assert len(toy.calls) == 1 and clock.sleeps == []
    gen, toy, queue, _, clock = make([KeyError("boom")])
    with pytest.raises(KeyError):
        drive(gen(), queue, clock, toy.perform)
    assert queue.in_flight == 0  # the slot came back even so


def test_total_deadline_is_named_and_stops_retries() -> None:
    gen, toy, queue, _, clock = make([{"status": 503}] * 5, total=1.0, cost=0.7, max_retries=4)
    with pytest.raises(ServerError):  # the backoff would pass the deadline: the last error stands
        drive(gen(), queue, clock, toy.perform)
    assert len(toy.calls) == 1
    # an attempt that reads past the deadline (a trickling body) raises it, named, not retried
    gen, toy, queue, _, clock = make([{"status": 200}] * 3, total=1.0, cost=2.0)

    def reading(action: Attempt) -> Any:
        toy.perform(action)
        action.check(clock, "reading the body", CTX)

    with pytest.raises(APITimeoutError) as info:
        drive(gen(), queue, clock, reading)
    assert info.value.limit == "total" and info.value.elapsed == 2.0
    assert "total timeout of 1s spent reading the body (after 2.00s)" in str(info.value)
    assert len(toy.calls) == 1


def test_hold_keeps_the_slot_for_the_caller_and_async_driver_agrees() -> None:
    gen, toy, queue, _, clock = make([{"status": 200}], hold=True)
    drive(gen(), queue, clock, toy.perform)
    assert queue.in_flight == 1  # a stream owns it now
    queue.release()

    gen, toy, queue, _, clock = make([{"status": 429, "headers": {"retry-after": "2"}}, {"status": 200}])

    async def perform(action: Attempt) -> Any:
        return toy.perform(action)

    assert asyncio.run(adrive(gen(), queue, clock, perform)) == {"status": 200}
    assert clock.sleeps == [2.0]


def test_queue_wait_counts_against_the_total() -> None:
    """A call queued behind a held slot fails when its total is spent, naming the queue (the
    queue's wait is a real Event wait, so the total is kept tiny)."""
    gen, toy, queue, _, clock = make([{"status": 200}], total=0.05)
    queue.acquire(queue.ticket())  # another call holds the only slot (max_concurrency=1)
    with pytest.raises(APITimeoutError) as info:
        drive(gen(), queue, clock, toy.perform)
    assert info.value.limit == "total"
    assert "spent waiting in the request queue" in str(info.value)
    assert toy.calls == []
