"""The one retry loop, for any transport.

:func:`attempts` *decides* every step of one logical call (wait for a queue slot, make this
attempt, sleep this long, give up with this error) and yields actions; :func:`drive` and
:func:`adrive` *perform* them (sync, or on the event loop). What an attempt is and what its
outcome means are the two things a transport supplies:

* ``build(retries_taken, key, remaining)`` returns the argument of one attempt (an
  ``httpx.Request`` for the HTTP client; the per-attempt headers for botocore), and the driver's
  ``perform`` runs it;
* ``classify(value, exc)`` turns the attempt's return value or exception into an
  :class:`Outcome` (success, or a typed error with the status and headers a retry decision
  needs); it re-raises what it does not know.

So httpx and botocore are two classifiers over this one loop, and the queue, breaker, stats,
Retry-After, key rotation and the total deadline behave identically for both.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from dataclasses import replace
from typing import Any, NamedTuple, TypeVar

from ._breaker import CircuitBreaker
from ._clock import Clock
from ._config import RetryPolicy
from ._errors import APIError, APITimeoutError, AuthenticationError
from ._queue import RequestQueue, Ticket
from ._retry import decide_retry
from ._secret import KeyPool, Secret
from ._stats import EndpointStats
from ._types import Usage

__all__ = ["Acquire", "Attempt", "Outcome", "Sleep", "Tracked", "adrive", "attempts", "drive", "total_spent"]

log = logging.getLogger("ipfs_accelerate.api")
T = TypeVar("T")


class Outcome(NamedTuple):
    """A classifier's verdict on one attempt: ``result`` when ``error`` is None."""

    result: Any = None
    error: APIError | None = None
    status: int | None = None
    headers: Mapping[str, str] | None = None
    #: counts against the endpoint's breaker (no answer, 5xx, 408)
    breaker_failure: bool = False
    #: never retried: a local failure (bad parameters, no credentials) or a spent deadline
    final: bool = False


# Actions the loop yields to its driver.
class Acquire(NamedTuple):
    ticket: Ticket
    first: bool
    timeout: float | None


class Attempt(NamedTuple):
    arg: Any
    started: float  # when the logical call started, on the loop's clock
    deadline: float | None  # started + its total budget (None: unbounded)

    def check(self, clock: Clock, where: str, context: Mapping[str, Any]) -> None:
        """Raise the total-timeout error if the call's deadline has passed (between reads)."""
        if self.deadline is not None and clock.now() >= self.deadline:
            raise total_spent(self.deadline - self.started, clock.now() - self.started, where, context)


class Sleep(NamedTuple):
    seconds: float


def total_spent(total: float, elapsed: float, where: str, context: Mapping[str, Any]) -> APITimeoutError:
    """The typed error for a spent total budget, naming where it ran out and after how long."""
    provider = context.get("provider") or "api"
    return APITimeoutError(
        f"{provider}: total timeout of {total:g}s spent {where} (after {elapsed:.2f}s)",
        limit="total",
        elapsed=elapsed,
        **context,
    )


def attempts(
    *,
    endpoint: str,
    context: dict[str, Any],
    clock: Clock,
    ticket: Ticket,
    breaker: CircuitBreaker | None,
    stats: EndpointStats,
    policy: RetryPolicy,
    max_retries: int,
    total: float | None,
    rng: random.Random,
    build: Callable[[int, Secret | None, float | None], Any],
    classify: Callable[[Any, Exception | None], Outcome],
    release: Callable[[], None],
    keys: KeyPool | None = None,
    hold: bool = False,
) -> Generator[Any, Any, Any]:
    """Decide every step of one logical call; yields actions, returns the success's result.

    ``hold``: a success keeps its queue slot (a stream gives it back when it ends).
    """
    started = clock.now()
    deadline = started + total if total is not None else None
    key = keys.next(started) if keys else None
    retries_taken = 0
    last_error: APIError | None = None
    while True:
        remaining = deadline - clock.now() if deadline is not None else None
        if remaining is not None and remaining <= 0:
            assert total is not None
            raise total_spent(total, clock.now() - started, "before an attempt", context)
        try:
            yield Acquire(ticket, retries_taken == 0, remaining)
        except APITimeoutError as exc:  # the queue waits at most what is left of the total
            assert total is not None
            raise total_spent(total, clock.now() - started, "waiting in the request queue", context) from exc
        holding = True
        admitted = False
        try:
            if breaker is not None:
                try:
                    breaker.before_request()
                except APIError as exc:
                    exc.__dict__.update(context)
                    if last_error is not None:  # opened by our own failed attempts
                        raise exc from last_error
                    raise
                admitted = True
            if deadline is not None:
                remaining = deadline - clock.now()
            arg = build(retries_taken, key, remaining)
            stats.attempted()
            try:
                value = yield Attempt(arg, started, deadline)
            except Exception as exc:  # classified; what the classifier does not know propagates
                outcome = classify(None, exc)
            else:
                outcome = classify(value, None)
            if breaker is not None:
                if outcome.error is None or not outcome.breaker_failure:
                    breaker.record_success()
                else:
                    breaker.record_failure()
            if outcome.error is None:
                holding = not hold
                return outcome.result
        except BaseException:
            if breaker is not None and admitted:
                breaker.release_trial()
            raise
        finally:
            if holding:
                release()

        error = last_error = outcome.error
        if outcome.final:
            raise error
        status, headers = outcome.status, outcome.headers
        decision = decide_retry(
            policy,
            status=status,
            headers=headers,
            retries_taken=retries_taken,
            max_retries=max_retries,
            wall_now=clock.time(),
            rand=rng.random(),
        )
        rotate = False
        # a rejected key: 401, or what the provider's body says is one (Gemini's 400)
        key_rejected = status == 401 or isinstance(error, AuthenticationError)
        if keys is not None and key is not None and (key_rejected or status == 429):
            rotate = True
            if key_rejected:
                keys.mark_invalid(key)
                if retries_taken < max_retries and keys.has_alternative(key, clock.now()):
                    decision = replace(decision, retry=True, delay=0.0, reason="key rejected: next key")
            else:
                wait = decision.retry_after if decision.retry_after and decision.retry_after > 0 else decision.delay
                keys.cool_down(key, clock.now() + max(wait, policy.initial_delay))
        if not decision.retry:
            if retries_taken:
                log.info("%s: giving up after %d retries: %s (%s)", endpoint, retries_taken,
                         type(error).__name__, decision.reason)
            raise error
        if deadline is not None and clock.now() + decision.delay >= deadline:
            log.info("%s: not retrying, the total timeout would pass first", endpoint)
            raise error
        log.info("%s: retry %d/%d in %.3fs after %s (%s)", endpoint, retries_taken + 1, max_retries,
                 decision.delay, status if status is not None else type(error).__name__, decision.reason)
        stats.retried()
        if decision.delay > 0:
            yield Sleep(decision.delay)
        retries_taken += 1
        if rotate and keys is not None:
            key = keys.next(clock.now())


class Tracked:
    """One logical call's stats: started on entry, finished exactly once, with its error (when
    the ``with`` body raises) or with its usage (:meth:`finish`, or the stream's end)."""

    def __init__(self, stats: EndpointStats, clock: Clock) -> None:
        self.stats = stats
        self.clock = clock
        self.started = clock.now()
        stats.started()

    def __enter__(self) -> Tracked:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            self.finish(exc)

    def done(self, result: T, usage: Callable[[T], Usage | None] | None = None) -> T:
        """Record a success (with the usage found in ``result``) and return the result."""
        self.finish(usage=usage(result) if usage else None)
        return result

    def finish(self, error: BaseException | None = None, usage: Usage | None = None) -> None:
        self.stats.finished(
            self.clock.now() - self.started,
            error=error,
            tokens_in=usage.input_tokens if usage else None,
            tokens_out=usage.output_tokens if usage else None,
        )


class _Steps:
    """Iterates the loop's actions; ``with steps:`` around performing one hands its value (set
    ``steps.value``) or its exception back to the loop, which decides. ``result`` is the end."""

    def __init__(self, gen: Generator[Any, Any, Any]) -> None:
        self.gen = gen
        self.value: Any = None
        self.exc: BaseException | None = None
        self.result: Any = None

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                action = self.gen.throw(self.exc) if self.exc is not None else self.gen.send(self.value)
            except StopIteration as stop:
                self.result = stop.value
                return
            self.value, self.exc = None, None
            yield action

    def __enter__(self) -> _Steps:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        self.exc = exc
        return True


def _ops(perform: Callable[[Attempt], Any], acquire: Callable[..., Any],
         sleep: Callable[[float], Any]) -> dict[type, Callable[[Any], Any]]:
    return {
        Attempt: perform,
        Acquire: lambda a: acquire(a.ticket, first=a.first, timeout=a.timeout),
        Sleep: lambda a: sleep(a.seconds),
    }


def drive(
    gen: Generator[Any, Any, Any], queue: RequestQueue, clock: Clock, perform: Callable[[Attempt], Any]
) -> Any:
    """Perform the loop's actions synchronously; ``perform`` runs one attempt."""
    steps, ops = _Steps(gen), _ops(perform, queue.acquire, clock.sleep)
    for action in steps:
        with steps:
            steps.value = ops[type(action)](action)
    return steps.result


async def adrive(
    gen: Generator[Any, Any, Any],
    queue: RequestQueue,
    clock: Clock,
    perform: Callable[[Attempt], Awaitable[Any]],
) -> Any:
    """Perform the loop's actions on the event loop (the same steps as :func:`drive`, awaited)."""
    steps, ops = _Steps(gen), _ops(perform, queue.aacquire, clock.asleep)
    for action in steps:
        with steps:
            steps.value = await ops[type(action)](action)
    return steps.result
