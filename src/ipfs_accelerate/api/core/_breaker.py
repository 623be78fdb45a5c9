"""Circuit breaker per endpoint: closed → open → half-open → closed.

Closed counts consecutive failures (connection errors, timeouts, 408 and 5xx — the server is
unwell); at ``failure_threshold`` it opens and refuses requests with :class:`CircuitOpenError`
for ``reset_timeout`` seconds. Then it is half-open: ``half_open_max`` trial requests go through;
a success closes it, a failure opens it again for another ``reset_timeout``. Other 4xx are
answers from a healthy server and count as success.
"""

from __future__ import annotations

import threading
from typing import Literal

from ._clock import Clock
from ._config import BreakerConfig
from ._errors import CircuitOpenError

__all__ = ["BreakerSet", "CircuitBreaker"]

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, name: str, config: BreakerConfig, clock: Clock) -> None:
        self.name = name
        self.config = config
        self._clock = clock
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trials = 0
        self.times_opened = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state!r})"

    @property
    def state(self) -> State:
        with self._lock:
            return self._current_state()

    def _current_state(self) -> State:
        if (
            self._state == "open"
            and self._clock.now() - self._opened_at >= self.config.reset_timeout
        ):
            self._state = "half_open"
            self._trials = 0
        return self._state

    def before_request(self) -> None:
        """Admit a request or raise CircuitOpenError; a half-open admission is a trial."""
        with self._lock:
            state = self._current_state()
            if state == "closed":
                return
            if state == "half_open" and self._trials < self.config.half_open_max:
                self._trials += 1
                return
            if state == "open":
                retry_in = self.config.reset_timeout - (self._clock.now() - self._opened_at)
            else:
                retry_in = 0.0
        raise CircuitOpenError(
            f"circuit open for {self.name}; retry in {max(retry_in, 0.0):.3f}s",
            retry_in=max(retry_in, 0.0),
        )

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            if self._state != "closed":
                self._state = "closed"
                self._trials = 0

    def record_failure(self) -> None:
        with self._lock:
            state = self._current_state()
            if state == "half_open":
                self._open()
                return
            if state == "open":
                return
            self._failures += 1
            if self._failures >= self.config.failure_threshold:
                self._open()

    def release_trial(self) -> None:
        """A half-open trial ended without an outcome (cancelled): free its place."""
        with self._lock:
            if self._state == "half_open" and self._trials > 0:
                self._trials -= 1

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self._clock.now()
        self._failures = 0
        self._trials = 0
        self.times_opened += 1


class BreakerSet:
    """One breaker per endpoint name, made on first use (None when breakers are off)."""

    def __init__(self, config: BreakerConfig | None, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(self, endpoint: str) -> CircuitBreaker | None:
        if self.config is None:
            return None
        with self._lock:
            b = self._breakers.get(endpoint)
            if b is None:
                b = self._breakers[endpoint] = CircuitBreaker(endpoint, self.config, self._clock)
            return b
