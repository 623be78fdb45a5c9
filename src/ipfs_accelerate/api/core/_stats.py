"""Per-endpoint counters: requests, retries, failures, latency percentiles, tokens.

An endpoint is ``"<provider> <METHOD> <route>"`` (route without model names or ids), so a
report can say "openai_api POST /chat/completions: p95 0.41 s, 3 retries".
Latency is per logical request, end to end (queue wait, attempts and backoff included), kept for
the most recent ``window`` requests.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["EndpointStats", "StatsSnapshot", "StatsRegistry", "percentile"]


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]) of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    endpoint: str
    requests: int
    successes: int
    failures: int
    retries: int
    attempts: int
    latency_p50: float | None
    latency_p95: float | None
    tokens_in: int
    tokens_out: int
    errors: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EndpointStats:
    def __init__(self, endpoint: str, window: int = 10_000) -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self.requests = 0
        self.successes = 0
        self.failures = 0
        self.retries = 0
        self.attempts = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.errors: dict[str, int] = {}
        self._latencies: deque[float] = deque(maxlen=window)

    def started(self) -> None:
        with self._lock:
            self.requests += 1

    def attempted(self) -> None:
        with self._lock:
            self.attempts += 1

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    def finished(
        self,
        latency: float,
        *,
        error: BaseException | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
    ) -> None:
        with self._lock:
            self._latencies.append(latency)
            if error is None:
                self.successes += 1
            else:
                self.failures += 1
                name = type(error).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
            self.tokens_in += tokens_in or 0
            self.tokens_out += tokens_out or 0

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            lat = sorted(self._latencies)
            return StatsSnapshot(
                endpoint=self.endpoint,
                requests=self.requests,
                successes=self.successes,
                failures=self.failures,
                retries=self.retries,
                attempts=self.attempts,
                latency_p50=percentile(lat, 50),
                latency_p95=percentile(lat, 95),
                tokens_in=self.tokens_in,
                tokens_out=self.tokens_out,
                errors=dict(self.errors),
            )


class StatsRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_endpoint: dict[str, EndpointStats] = {}

    def get(self, endpoint: str) -> EndpointStats:
        stats = self._by_endpoint.get(endpoint)
        if stats is None:
            with self._lock:
                stats = self._by_endpoint.setdefault(endpoint, EndpointStats(endpoint))
        return stats

    def snapshot(self) -> dict[str, StatsSnapshot]:
        with self._lock:
            items = list(self._by_endpoint.items())
        return {name: s.snapshot() for name, s in items}
