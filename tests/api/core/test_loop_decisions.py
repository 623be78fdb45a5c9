"""The retry loop's decisions, pinned one by one: key rotation and cool-downs, the breaker's
trials, the queue's size check for first attempts only, the total deadline at its boundaries,
what is logged, and the stats a call leaves. Every test runs on a fake clock (no sleeping)."""

from __future__ import annotations

import logging
import random
import threading
import time
from email.utils import formatdate
from typing import Any

import pytest

from ipfs_accelerate.api.core import (
    OPENAI_RETRY,
    APIError,
    APITimeoutError,
    Attempt,
    AuthenticationError,
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    FakeClock,
    KeyPool,
    Outcome,
    QueueConfig,
    QueueFullError,
    RequestQueue,
    Secret,
    ServerError,
    StatsRegistry,
    Usage,
    attempts,
    drive,
    total_spent,
)
from ipfs_accelerate.api.core._loop import Acquire, Tracked

from .test_loop import CTX, Toy, classify

LOG = "ipfs_accelerate.api"


def _loop(
    toy: Toy,
    clock: FakeClock,
    queue: RequestQueue,
    *,
    keys: KeyPool | None = None,
    breaker: CircuitBreaker | None = None,
    total: float | None = None,
    max_retries: int = 2,
    ticket: Any = None,
    context: dict[str, Any] | None = None,
    seen_keys: list[Secret | None] | None = None,
    cls: Any = classify,
    **kw: Any,
) -> Any:
    """One logical call's generator over ``toy``; ``seen_keys`` collects each attempt's key."""

    def build(n: int, key: Secret | None, _rem: float | None) -> dict[str, int]:
        if seen_keys is not None:
            seen_keys.append(key)
        return {"retry": n}

    return attempts(
        endpoint="toy OP", context=dict(CTX if context is None else context), clock=clock,
        ticket=queue.ticket() if ticket is None else ticket, breaker=breaker,
        stats=kw.pop("stats", StatsRegistry().get("toy OP")), policy=OPENAI_RETRY,
        max_retries=max_retries, total=total, rng=random.Random(0), release=queue.release,
        build=build, classify=cls, keys=keys, **kw,
    )


def _setup(script: list[Any], cost: float = 0.0) -> tuple[Toy, FakeClock, RequestQueue]:
    clock = FakeClock()
    return Toy(script, clock, cost), clock, RequestQueue(QueueConfig(max_concurrency=1), clock)


def _keys(n: int = 2) -> tuple[KeyPool, list[Secret]]:
    pool = KeyPool([f"sk-key-{i}" for i in range(n)])
    return pool, list(pool.secrets)


def _auth_on_400(value: Any, exc: Exception | None) -> Outcome:
    """Gemini's shape: a bad key is a 400 whose body says so (an AuthenticationError)."""
    if exc is None and value["status"] == 400:
        err = AuthenticationError("toy: API_KEY_INVALID", status=400, **CTX)
        return Outcome(error=err, status=400, headers={})
    return classify(value, exc)


# -- keys ------------------------------------------------------------------------------------------


def test_a_rejected_key_is_retried_at_once_with_the_next_key(caplog: pytest.LogCaptureFixture) -> None:
    toy, clock, queue = _setup([{"status": 401}, {"status": 200}])
    pool, (k0, k1) = _keys()
    seen: list[Secret | None] = []
    with caplog.at_level(logging.INFO, logger=LOG):
        assert drive(_loop(toy, clock, queue, keys=pool, seen_keys=seen), queue, clock, toy.perform) == {"status": 200}
    assert seen == [k0, k1] and clock.sleeps == []  # no Sleep(0) either
    assert not pool.has_alternative(k1, clock.now())  # k0 is set aside for good
    assert [r.getMessage() for r in caplog.records] == [
        "toy OP: retry 1/2 in 0.000s after 401 (key rejected: next key)"
    ]


def test_a_rejected_key_skips_even_a_backoff_the_server_forced() -> None:
    """``x-should-retry: true`` on a 401 makes it retryable with a backoff; a rejected key with
    another key to try needs no wait at all."""
    toy, clock, queue = _setup([{"status": 401, "headers": {"x-should-retry": "true"}}, {"status": 200}])
    pool, (k0, k1) = _keys()
    seen: list[Secret | None] = []
    drive(_loop(toy, clock, queue, keys=pool, seen_keys=seen), queue, clock, toy.perform)
    assert seen == [k0, k1] and clock.sleeps == []


def test_a_key_rejected_by_its_body_rotates_too() -> None:
    toy, clock, queue = _setup([{"status": 400}, {"status": 200}])
    pool, (k0, k1) = _keys()
    seen: list[Secret | None] = []
    gen = _loop(toy, clock, queue, keys=pool, seen_keys=seen, cls=_auth_on_400)
    assert drive(gen, queue, clock, toy.perform) == {"status": 200}
    assert seen == [k0, k1] and clock.sleeps == []


def test_no_key_retry_without_budget_or_without_another_usable_key() -> None:
    toy, clock, queue = _setup([{"status": 401}, {"status": 200}])
    pool, _ = _keys()
    with pytest.raises(ServerError, match="401"):
        drive(_loop(toy, clock, queue, keys=pool, max_retries=0), queue, clock, toy.perform)
    assert len(toy.calls) == 1

    toy, clock, queue = _setup([{"status": 401}, {"status": 200}])
    pool, (k0, k1) = _keys()
    pool.mark_invalid(k1)  # the only other key is gone
    with pytest.raises(ServerError, match="401"):
        drive(_loop(toy, clock, queue, keys=pool), queue, clock, toy.perform)
    assert len(toy.calls) == 1


def test_a_server_error_keeps_the_key_and_no_key_pool_means_no_key() -> None:
    toy, clock, queue = _setup([{"status": 503}, {"status": 200}])
    pool, (k0, _) = _keys()
    seen: list[Secret | None] = []
    drive(_loop(toy, clock, queue, keys=pool, seen_keys=seen), queue, clock, toy.perform)
    assert seen == [k0, k0]
    assert pool.has_alternative(k0, clock.now())  # nothing cooled down

    toy, clock, queue = _setup([{"status": 401}])
    seen = []
    with pytest.raises(ServerError):
        drive(_loop(toy, clock, queue, seen_keys=seen), queue, clock, toy.perform)
    assert seen == [None]


def _cools_until(pool: KeyPool, other: Secret, until: float) -> bool:
    """Whether the key other than ``other`` is cooling until exactly ``until`` (to the ms),
    asked of the pool itself."""
    return not pool.has_alternative(other, until - 0.001) and pool.has_alternative(other, until)


def test_a_rate_limited_key_cools_down_for_its_retry_after_and_the_next_key_is_used() -> None:
    toy, clock, queue = _setup([{"status": 429, "headers": {"retry-after": "3"}}, {"status": 200}])
    pool, (k0, k1) = _keys()
    seen: list[Secret | None] = []
    drive(_loop(toy, clock, queue, keys=pool, seen_keys=seen), queue, clock, toy.perform)
    assert seen == [k0, k1] and clock.sleeps == [3.0]
    assert _cools_until(pool, k1, 1000.0 + 3.0)


@pytest.mark.parametrize(
    ("retry_after", "cooled"),
    [("0.8", 0.8), ("300", 300.0), (None, 0.5), ("0", 0.5), ("-5", 0.5)],
)
def test_cool_down_when_the_call_gives_up(retry_after: str | None, cooled: float) -> None:
    """No retry (budget spent, or Retry-After above the cap): the key still cools for what the
    server asked, at least the policy's initial delay."""
    headers = {} if retry_after is None else {"retry-after": retry_after}
    toy, clock, queue = _setup([{"status": 429, "headers": headers}])
    pool, (k0, k1) = _keys()
    with pytest.raises(ServerError, match="429"):
        drive(_loop(toy, clock, queue, keys=pool, max_retries=0), queue, clock, toy.perform)
    assert _cools_until(pool, k1, 1000.0 + cooled)


def test_a_negative_retry_after_cools_for_the_backoff_delay() -> None:
    """Retry-After -5 is ignored: the key cools for the loop's own (second, longer) backoff."""
    script = [{"status": 503}, {"status": 429, "headers": {"retry-after": "-5"}}, {"status": 200}]
    toy, clock, queue = _setup(script)
    pool, (k0, k1) = _keys()
    drive(_loop(toy, clock, queue, keys=pool), queue, clock, toy.perform)
    rng = random.Random(0)
    first, second = OPENAI_RETRY.backoff(0, rng.random()), OPENAI_RETRY.backoff(1, rng.random())
    assert clock.sleeps == [first, second] and second > OPENAI_RETRY.initial_delay
    assert _cools_until(pool, k1, 1000.0 + first + second)


# -- the queue -------------------------------------------------------------------------------------


def test_a_first_attempt_is_refused_by_a_full_queue_but_a_retry_waits() -> None:
    clock = FakeClock()
    queue = RequestQueue(QueueConfig(max_concurrency=1, max_waiting=0), clock)
    queue.acquire(queue.ticket())  # another call holds the only slot; no one may wait
    toy = Toy([{"status": 200}], clock)
    with pytest.raises(QueueFullError):
        drive(_loop(toy, clock, queue, total=30.0), queue, clock, toy.perform)
    assert toy.calls == []
    queue.release()

    class Busy(FakeClock):
        """While the loop backs off, another call takes the slot and gives it back only once
        the retry is waiting for it."""

        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            queue.acquire(queue.ticket())

            def give_back() -> None:
                deadline = time.monotonic() + 30  # a bound on a hang, not a timing
                while queue.waiting < 1 and time.monotonic() < deadline:
                    time.sleep(0.001)
                queue.release()

            threading.Thread(target=give_back, daemon=True).start()

    clock = Busy()
    queue = RequestQueue(QueueConfig(max_concurrency=1, max_waiting=0), clock)
    toy = Toy([{"status": 503}, {"status": 200}], clock)
    assert drive(_loop(toy, clock, queue, total=30.0), queue, clock, toy.perform) == {"status": 200}
    assert len(toy.calls) == 2 and queue.in_flight == 0


def test_the_calls_ticket_orders_it_in_the_queue() -> None:
    """A high-priority call waiting behind a low one is served first: the loop queues its own
    ticket, not a fresh one."""
    clock = FakeClock()
    queue = RequestQueue(QueueConfig(max_concurrency=1, aging_interval=None), clock)
    queue.acquire(queue.ticket())
    order: list[str] = []
    errors: list[BaseException] = []

    def low() -> None:
        queue.acquire(queue.ticket("low"))
        order.append("low")
        queue.release()

    def high() -> None:
        toy = Toy([{"status": 200}], clock)
        try:
            drive(_loop(toy, clock, queue, ticket=queue.ticket("high")), queue, clock, toy.perform)
            order.append("high")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = []
    for n, target in enumerate((low, high), start=1):
        threads.append(threading.Thread(target=target, daemon=True))
        threads[-1].start()
        deadline = time.monotonic() + 30  # a bound on a hang, not a timing
        while queue.waiting < n and time.monotonic() < deadline:
            time.sleep(0.001)
    queue.release()
    for t in threads:
        t.join(30)
    assert errors == [] and order == ["high", "low"]


def test_hold_is_off_by_default() -> None:
    toy, clock, queue = _setup([{"status": 200}])
    gen = attempts(
        endpoint="toy OP", context=dict(CTX), clock=clock, ticket=queue.ticket(), breaker=None,
        stats=StatsRegistry().get("toy OP"), policy=OPENAI_RETRY, max_retries=0, total=None,
        rng=random.Random(0), build=lambda *_: {}, classify=classify, release=queue.release,
    )
    drive(gen, queue, clock, toy.perform)
    assert queue.in_flight == 0


def test_the_acquire_action_carries_ticket_first_flag_and_remaining_budget() -> None:
    toy, clock, queue = _setup([{"status": 503}, {"status": 200}], cost=0.25)
    ticket = queue.ticket()
    gen = _loop(toy, clock, queue, ticket=ticket, total=10.0)
    first = next(gen)
    assert first == Acquire(ticket, True, 10.0)
    queue.acquire(ticket)
    attempt = gen.send(None)
    assert isinstance(attempt, Attempt) and attempt.started == 1000.0 and attempt.deadline == 1010.0
    sleep = gen.send(toy.perform(attempt))
    clock.sleep(sleep.seconds)
    second = gen.send(None)
    assert second == Acquire(ticket, False, pytest.approx(10.0 - 0.25 - sleep.seconds))


# -- the breaker -----------------------------------------------------------------------------------


def _breaker(clock: FakeClock, threshold: int = 1) -> CircuitBreaker:
    return CircuitBreaker("toy OP", BreakerConfig(failure_threshold=threshold, reset_timeout=30.0), clock)


def test_an_open_breaker_names_the_failure_that_opened_it() -> None:
    toy, clock, queue = _setup([ConnectionError("reset by peer"), {"status": 200}])
    breaker = _breaker(clock)
    with pytest.raises(CircuitOpenError) as info:
        drive(_loop(toy, clock, queue, breaker=breaker), queue, clock, toy.perform)
    assert isinstance(info.value.__cause__, APIError) and "reset by peer" in str(info.value.__cause__)
    assert info.value.url == CTX["url"] and info.value.provider == "toy"

    # already open before this call's first attempt: no cause of ours to name
    toy, clock, queue = _setup([{"status": 200}])
    breaker = _breaker(clock)
    breaker.record_failure()
    with pytest.raises(CircuitOpenError) as info:
        drive(_loop(toy, clock, queue, breaker=breaker), queue, clock, toy.perform)
    assert info.value.__cause__ is None and toy.calls == []


def test_an_error_the_breaker_does_not_count_resets_its_failures() -> None:
    script = [ConnectionError("a"), {"status": 429, "headers": {"retry-after": "1"}}, ConnectionError("b"), {"status": 200}]
    toy, clock, queue = _setup(script)
    breaker = _breaker(clock, threshold=2)
    assert drive(_loop(toy, clock, queue, breaker=breaker, max_retries=3), queue, clock, toy.perform) == {"status": 200}
    assert breaker.state == "closed" and len(toy.calls) == 4


def _half_open(clock: FakeClock) -> CircuitBreaker:
    breaker = _breaker(clock)
    breaker.record_failure()
    clock.advance(30.0)
    assert breaker.state == "half_open"
    return breaker


def _admitted(gen: Any, queue: RequestQueue) -> Attempt:
    acquire = next(gen)
    queue.acquire(acquire.ticket)
    attempt = gen.send(None)
    assert isinstance(attempt, Attempt)
    return attempt


def test_a_refused_call_leaves_the_running_trial_alone() -> None:
    clock = FakeClock()
    queue = RequestQueue(QueueConfig(max_concurrency=3), clock)
    breaker = _half_open(clock)
    trial = _loop(Toy([], clock), clock, queue, breaker=breaker)
    _admitted(trial, queue)  # the one half-open trial is in flight
    for _ in range(2):  # later calls are refused, and refusing them frees nothing
        refused = _loop(Toy([], clock), clock, queue, breaker=breaker)
        queue.acquire(next(refused).ticket)
        with pytest.raises(CircuitOpenError):
            refused.send(None)
    trial.close()


def test_a_trial_that_ends_in_an_unknown_exception_gives_its_place_back() -> None:
    clock = FakeClock()
    queue = RequestQueue(QueueConfig(max_concurrency=3), clock)
    breaker = _half_open(clock)
    trial = _loop(Toy([], clock), clock, queue, breaker=breaker)
    _admitted(trial, queue)
    with pytest.raises(KeyError):
        trial.throw(KeyError("boom"))  # the classifier does not know it: it propagates
    assert queue.in_flight == 0
    _admitted(_loop(Toy([], clock), clock, queue, breaker=breaker), queue)  # a new trial fits


# -- the total deadline ----------------------------------------------------------------------------


def test_a_spent_budget_fails_before_the_first_attempt() -> None:
    toy, clock, queue = _setup([{"status": 200}])
    with pytest.raises(APITimeoutError) as info:
        drive(_loop(toy, clock, queue, total=0.0), queue, clock, toy.perform)
    assert str(info.value) == "toy: total timeout of 0s spent before an attempt (after 0.00s)"
    assert info.value.limit == "total" and info.value.elapsed == 0.0
    assert info.value.url == CTX["url"] and info.value.method == "OP" and toy.calls == []


def test_no_retry_whose_backoff_ends_exactly_at_the_deadline() -> None:
    toy, clock, queue = _setup([{"status": 503, "headers": {"retry-after": "1.5"}}, {"status": 200}])
    with pytest.raises(ServerError):
        drive(_loop(toy, clock, queue, total=1.5), queue, clock, toy.perform)
    assert clock.sleeps == [] and len(toy.calls) == 1


def test_an_http_date_retry_after_is_read_on_the_loops_wall_clock() -> None:
    clock = FakeClock()
    when = formatdate(clock.time() + 3, usegmt=True)
    toy = Toy([{"status": 429, "headers": {"retry-after": when}}, {"status": 200}], clock)
    queue = RequestQueue(QueueConfig(max_concurrency=1), clock)
    drive(_loop(toy, clock, queue), queue, clock, toy.perform)
    assert clock.sleeps == [3.0]


def test_attempt_check_fires_at_the_deadline_itself() -> None:
    clock = FakeClock()
    attempt = Attempt(None, started=clock.now(), deadline=clock.now() + 2.0)
    clock.advance(1.999)
    attempt.check(clock, "reading", CTX)
    clock.advance(0.001)
    with pytest.raises(APITimeoutError, match=r"toy: total timeout of 2s spent reading \(after 2.00s\)"):
        attempt.check(clock, "reading", CTX)
    Attempt(None, started=0.0, deadline=None).check(clock, "reading", CTX)  # unbounded: never


def test_total_spent_names_the_provider_or_api_and_carries_the_context() -> None:
    err = total_spent(1.0, 1.25, "streaming", {"provider": "groq", "url": "u", "method": "GET"})
    assert str(err) == "groq: total timeout of 1s spent streaming (after 1.25s)"
    assert (err.limit, err.elapsed, err.provider, err.url, err.method) == ("total", 1.25, "groq", "u", "GET")
    assert str(total_spent(2.5, 3.0, "x", {})) == "api: total timeout of 2.5s spent x (after 3.00s)"
    assert str(total_spent(2.5, 3.0, "x", {"provider": None})).startswith("api: ")


def test_waiting_in_the_queue_is_named_with_the_loops_elapsed_time() -> None:
    toy, clock, queue = _setup([{"status": 200}])
    queue.acquire(queue.ticket())
    with pytest.raises(APITimeoutError) as info:
        drive(_loop(toy, clock, queue, total=0.05), queue, clock, toy.perform)
    assert str(info.value) == "toy: total timeout of 0.05s spent waiting in the request queue (after 0.00s)"
    assert info.value.elapsed == 0.0


# -- what is logged --------------------------------------------------------------------------------


def test_retries_and_give_ups_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    script = [{"status": 503}, ConnectionError("reset"), {"status": 503}]
    toy, clock, queue = _setup(script)
    with caplog.at_level(logging.INFO, logger=LOG), pytest.raises(ServerError):
        drive(_loop(toy, clock, queue), queue, clock, toy.perform)
    d0, d1 = clock.sleeps
    assert [r.getMessage() for r in caplog.records] == [
        f"toy OP: retry 1/2 in {d0:.3f}s after 503 (backoff)",
        f"toy OP: retry 2/2 in {d1:.3f}s after APIError (backoff)",
        "toy OP: giving up after 2 retries: ServerError (retries exhausted)",
    ]
    caplog.clear()
    toy, clock, queue = _setup([{"status": 503, "headers": {"retry-after": "5"}}])
    with caplog.at_level(logging.INFO, logger=LOG), pytest.raises(ServerError):
        drive(_loop(toy, clock, queue, total=2.0), queue, clock, toy.perform)
    assert [r.getMessage() for r in caplog.records] == [
        "toy OP: not retrying, the total timeout would pass first"
    ]
    caplog.clear()
    toy, clock, queue = _setup([{"status": 503}])
    with caplog.at_level(logging.INFO, logger=LOG), pytest.raises(ServerError):
        drive(_loop(toy, clock, queue, max_retries=0), queue, clock, toy.perform)
    assert caplog.records == []  # giving up on the first attempt is not news


# -- stats -----------------------------------------------------------------------------------------


def test_tracked_records_usage_errors_and_latency_on_its_clock() -> None:
    clock = FakeClock()
    stats = StatsRegistry().get("x")
    with Tracked(stats, clock) as t:
        clock.advance(0.5)
        assert t.done({"u": 1}, usage=lambda r: Usage(r["u"] * 3, 2)) == {"u": 1}
    with Tracked(stats, clock) as t:
        t.done("no usage")
    with pytest.raises(KeyError), Tracked(stats, clock):
        raise KeyError("x")
    snap = stats.snapshot()
    assert (snap.requests, snap.successes, snap.failures) == (3, 2, 1)
    assert (snap.tokens_in, snap.tokens_out, snap.errors) == (3, 2, {"KeyError": 1})
    assert snap.latency_p95 == 0.5
