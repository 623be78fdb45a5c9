"""Retry decisions as pure functions of (policy, status, headers, attempt, clock).

The loop that acts on them lives in ``_client.py`` (exactly one loop); everything that decides
*whether* and *how long* is here, so it is tested from a table without any I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ._config import SHOULD_RETRY_HEADER, RetryPolicy

__all__ = ["RetryDecision", "decide_retry", "parse_retry_after"]


def parse_retry_after(headers: Mapping[str, str], wall_now: float) -> float | None:
    """Seconds the server asked us to wait, or None when absent or unparseable.

    Order as in openai-python: ``retry-after-ms`` (milliseconds), then ``retry-after`` as seconds,
    then as an HTTP date (relative to ``wall_now``). The value is returned as sent (it may be
    negative, zero or infinite); :func:`decide_retry` judges it.
    """
    ms = _header(headers, "retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return when.timestamp() - wall_now


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    delay: float
    reason: str
    retry_after: float | None = None


def decide_retry(
    policy: RetryPolicy,
    *,
    status: int | None,
    headers: Mapping[str, str] | None,
    retries_taken: int,
    max_retries: int,
    wall_now: float,
    rand: float,
) -> RetryDecision:
    """Whether to retry after one failed attempt, and the delay first.

    ``status`` None means no response (connection error or timeout): always retryable.
    Order: budget left? → Retry-After above the cap (give up) → ``x-should-retry`` → status.
    """
    retry_after = parse_retry_after(headers, wall_now) if headers is not None else None
    if retries_taken >= max_retries:
        return RetryDecision(False, 0.0, "retries exhausted", retry_after)
    if retry_after is not None and retry_after > policy.retry_after_cap:
        return RetryDecision(
            False,
            0.0,
            f"retry-after {retry_after:g}s exceeds cap {policy.retry_after_cap:g}s",
            retry_after,
        )
    if status is not None:
        explicit = (headers or {}).get(SHOULD_RETRY_HEADER)
        if explicit is not None and explicit.strip().lower() == "false":
            return RetryDecision(False, 0.0, "x-should-retry: false", retry_after)
        forced = explicit is not None and explicit.strip().lower() == "true"
        if not forced and not policy.status_is_retryable(status):
            return RetryDecision(False, 0.0, f"status {status} is not retryable", retry_after)
    if (
        retry_after is not None
        and math.isfinite(retry_after)
        and 0 < retry_after <= policy.retry_after_cap
    ):
        return RetryDecision(True, retry_after, "retry-after", retry_after)
    return RetryDecision(True, policy.backoff(retries_taken, rand), "backoff", retry_after)
