"""Pure unit tests of api/core/_retry.py that kill its mutants: whole RetryDecisions, not just `.retry`.

The decision's delay, reason and the Retry-After it saw are what the loop sleeps on and what
the typed error reports, so every branch is compared as a complete value.
"""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime

from ipfs_accelerate.api.core._config import RetryPolicy
from ipfs_accelerate.api.core._retry import RetryDecision, decide_retry, parse_retry_after

P = RetryPolicy()


def _decide(status: int | None, headers: dict[str, str] | None, taken: int = 0, *, wall_now: float = 0.0) -> RetryDecision:
    return decide_retry(P, status=status, headers=headers, retries_taken=taken, max_retries=2, wall_now=wall_now, rand=0.5)


def test_parse_plain_lowercase_mapping() -> None:
    assert parse_retry_after({"retry-after-ms": "250"}, 0.0) == 0.25
    assert parse_retry_after({"retry-after": "3"}, 0.0) == 3.0
    assert parse_retry_after({}, 0.0) is None


def test_exhausted_keeps_the_retry_after_it_saw() -> None:
    assert _decide(500, {"retry-after": "3"}, taken=2) == RetryDecision(False, 0.0, "retries exhausted", 3.0)


def test_above_cap_gives_up_and_says_both_numbers() -> None:
    assert P.retry_after_cap == 120.0
    assert _decide(503, {"retry-after": "121"}) == RetryDecision(False, 0.0, "retry-after 121s exceeds cap 120s", 121.0)
    # exactly at the cap is still honoured
    assert _decide(503, {"retry-after": "120"}) == RetryDecision(True, 120.0, "retry-after", 120.0)


def test_should_retry_false_and_unretryable_status() -> None:
    hdrs = {"x-should-retry": " False ", "retry-after": "2"}
    assert _decide(500, hdrs) == RetryDecision(False, 0.0, "x-should-retry: false", 2.0)
    assert _decide(400, {"retry-after": "2"}) == RetryDecision(False, 0.0, "status 400 is not retryable", 2.0)


def test_retry_after_used_when_positive_else_backoff() -> None:
    assert _decide(429, {"retry-after": "5"}) == RetryDecision(True, 5.0, "retry-after", 5.0)
    assert _decide(429, {"retry-after": "0"}) == RetryDecision(True, P.backoff(0, 0.5), "backoff", 0.0)
    assert _decide(None, None, taken=1) == RetryDecision(True, P.backoff(1, 0.5), "backoff", None)


def test_http_date_is_relative_to_wall_now() -> None:
    now = parsedate_to_datetime("Thu, 03 Dec 2026 00:00:00 GMT")
    later = format_datetime(parsedate_to_datetime("Thu, 03 Dec 2026 00:00:10 GMT"), usegmt=True)
    assert _decide(503, {"retry-after": later}, wall_now=now.timestamp()) == RetryDecision(True, 10.0, "retry-after", 10.0)
