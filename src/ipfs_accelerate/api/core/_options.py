"""The keyword options every client shares, declared once.

``Provider``, ``APIClient`` and ``S3KitProvider`` all take the same policy keywords (timeouts,
retries, queue, breaker, and the clock and RNG those run on, injectable so tests never sleep).
They are fields of :class:`ClientOptions` (plus the httpx transports in :class:`HTTPOptions`);
each constructor takes ``**options`` and builds its queue, breakers and stats through
:meth:`Guarded._guard`, so a new option or a changed default is one edit.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any, Self

import httpx

from . import _config
from ._breaker import BreakerSet
from ._clock import Clock, SystemClock
from ._config import BreakerConfig, QueueConfig, RetryPolicy, Timeout
from ._queue import RequestQueue
from ._stats import StatsRegistry

__all__ = ["ClientOptions", "Closing", "Guarded", "HTTPOptions"]


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """Policy keywords of every client. ``queue`` (a config or a queue to share) wins over
    ``max_concurrency`` / ``max_waiting`` / ``aging_interval``; ``max_retries`` overrides the
    retry policy's count; ``retry_policy=None`` means the client's protocol default."""

    timeout: Timeout | float | None = _config.DEFAULT_TIMEOUT
    max_retries: int | None = None
    retry_policy: RetryPolicy | None = None
    max_concurrency: int = 32
    max_waiting: int | None = None
    aging_interval: float | None = 10.0
    queue: QueueConfig | RequestQueue | None = None
    breaker: BreakerConfig | None = _config.DEFAULT_BREAKER
    clock: Clock | None = None
    rng: random.Random | None = None

    @classmethod
    def of(cls, options: dict[str, Any], owner: str) -> Self:
        """The options from constructor keywords; an unknown keyword is a TypeError naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"{owner}: unknown option(s) {unknown}; known: {sorted(known)}")
        return cls(**options)


@dataclass(frozen=True, kw_only=True)
class HTTPOptions(ClientOptions):
    """Plus the httpx plumbing: transports to inject, or whole clients to borrow (not closed)."""

    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None
    async_transport: httpx.AsyncBaseTransport | None = None
    http_client: httpx.Client | None = None
    async_http_client: httpx.AsyncClient | None = None


class Closing:
    """The context-manager protocol over ``close`` / ``aclose``, written once for every client."""

    def close(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Guarded(Closing):
    """What a client builds from its options (retry policy, clock, queue, breakers, stats),
    one way for the httpx and the S3 clients."""

    def _guard(self, options: ClientOptions, default_retry: RetryPolicy) -> None:
        self.timeout = Timeout.of(options.timeout)
        policy = options.retry_policy or default_retry
        if options.max_retries is not None:
            policy = policy.with_(max_retries=options.max_retries)
        self.retry_policy = policy
        self.clock: Clock = options.clock or SystemClock()
        self._rng = options.rng or random.Random()
        queue = options.queue or QueueConfig(
            options.max_concurrency, options.max_waiting, options.aging_interval
        )
        self.queue = queue if isinstance(queue, RequestQueue) else RequestQueue(queue, self.clock)
        self._breakers = BreakerSet(options.breaker, self.clock)
        self._stats = StatsRegistry()
