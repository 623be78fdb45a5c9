"""Plain configuration values: timeouts, retry policy, breaker and queue settings.

Kept apart from behaviour (httpx's ``_config.py`` does the same) so providers can declare their
defaults as data, and ``with_options`` can override them per call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

__all__ = [
    "DEFAULT_BREAKER",
    "DEFAULT_TIMEOUT",
    "BreakerConfig",
    "Priority",
    "QueueConfig",
    "RetryPolicy",
    "Timeout",
]

Priority = Literal["high", "normal", "low"]
PRIORITY_RANK: dict[str, int] = {"high": 0, "normal": 1, "low": 2}

RETRY_COUNT_HEADER = "x-retry-count"
IDEMPOTENCY_HEADER = "idempotency-key"
SHOULD_RETRY_HEADER = "x-should-retry"


@dataclass(frozen=True, slots=True)
class Timeout:
    """Per-attempt connect/read/write/pool limits, a total budget, and two stream limits.

    ``total`` is a deadline for one logical call end to end: queue wait, every attempt, every
    backoff sleep, and reading the body or the stream (checked between chunks, so a server
    trickling bytes cannot outlive it). Each attempt's socket timeouts are clipped to what is
    left of it. A plain number given as ``timeout=`` sets every phase and the total.

    Streams have two more limits: ``first_event`` (default 120 s, from sending the request to the
    first event: covers a model's load and prefill) and ``gap`` (default 60 s, the longest silence
    between two events). Each expiry raises :class:`StreamTimeoutError` naming the limit; None
    turns a limit off.
    """

    connect: float | None = 5.0
    read: float | None = 600.0
    write: float | None = 600.0
    pool: float | None = 600.0
    total: float | None = None
    first_event: float | None = 120.0
    gap: float | None = 60.0

    @classmethod
    def of(cls, value: Timeout | float | None) -> Timeout:
        """A Timeout from a number (every phase and the total), None (no limits) or a Timeout."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(None, None, None, None, None, None, None)
        v = float(value)
        return cls(v, v, v, v, v)

    def for_attempt(self, remaining: float | None) -> dict[str, float | None]:
        """httpx's timeout dict for one attempt, clipped to the remaining total budget."""

        def clip(v: float | None) -> float | None:
            if remaining is None:
                return v
            r = max(remaining, 0.001)
            return r if v is None else min(v, r)

        return {
            "connect": clip(self.connect),
            "read": clip(self.read),
            "write": clip(self.write),
            "pool": clip(self.pool),
        }


DEFAULT_TIMEOUT = Timeout()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry and how long to wait; defaults follow openai-python.

    ``max_retries`` counts retries, not attempts (2 → at most 3 requests). The backoff before
    retry *n* (0-based) is ``min(initial_delay * multiplier**n, max_delay)`` reduced by up to
    ``jitter`` (a fraction). A server-sent delay (``retry-after-ms`` / ``retry-after``) wins when
    it is finite and ``0 < delay <= retry_after_cap``; above the cap we give up.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.25
    retry_after_cap: float = 120.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({408, 409, 429}))
    retry_server_errors: bool = True

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter is a fraction in [0, 1]")
        if self.initial_delay < 0 or self.max_delay < 0 or not math.isfinite(self.max_delay):
            raise ValueError("delays must be finite and >= 0")

    def with_(self, **changes: object) -> RetryPolicy:
        return replace(self, **changes)  # type: ignore[arg-type]

    def backoff(self, retries_taken: int, rand: float) -> float:
        """The computed delay before retry number ``retries_taken`` (0-based); rand in [0, 1)."""
        base = min(self.initial_delay * self.multiplier ** min(retries_taken, 1000), self.max_delay)
        return base * (1.0 - self.jitter * rand)

    def status_is_retryable(self, status: int) -> bool:
        return status in self.retry_statuses or (self.retry_server_errors and status >= 500)


# openai-python's defaults; anthropic differs only in the cap; google-genai is slower and longer.
OPENAI_RETRY = RetryPolicy()
ANTHROPIC_RETRY = RetryPolicy(retry_after_cap=60.0)
GOOGLE_RETRY = RetryPolicy(max_retries=4, initial_delay=1.0, max_delay=60.0, retry_after_cap=60.0)


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Consecutive failures that open the breaker, and how long it stays open."""

    failure_threshold: int = 5
    reset_timeout: float = 30.0
    half_open_max: int = 1

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.half_open_max < 1 or self.reset_timeout < 0:
            raise ValueError("invalid breaker configuration")


DEFAULT_BREAKER = BreakerConfig()


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """Concurrency limit, waiting-room size and aging.

    ``aging_interval``: seconds of waiting worth one priority level, so a low request that waited
    2 intervals overtakes a newly arrived high one; None disables aging (strict priorities).
    """

    max_concurrency: int = 32
    max_waiting: int | None = None
    aging_interval: float | None = 10.0

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if self.max_waiting is not None and self.max_waiting < 0:
            raise ValueError("max_waiting must be >= 0")
        if self.aging_interval is not None and self.aging_interval <= 0:
            raise ValueError("aging_interval must be > 0")
