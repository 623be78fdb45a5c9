"""The two tables every provider is held to: Retry-After conformance and the fault matrix.

Retry-After: each row is one 429 answer. The provider either waits exactly the expected time
before its single retry (never earlier: the fake clock records every sleep), or gives up at once
with RateLimitError. ``BACKOFF`` means the provider's own first backoff; ``cap(s)`` rows depend
on the provider's cap (120 s for the OpenAI family as openai-python, 60 s for Claude/Gemini).
The rows are CORE's (``tests/api/core/test_retry_after_conformance.py`` checks them with a
scripted transport); here they run over real HTTP against each provider's fake server, s3_kit
included. ``tests/api/kit`` pins the two copies equal.

Fault matrix: for each fault, what a correct client does — ``OK`` (succeeds after retries with
exactly one delivered result) or the typed error it must raise, without hanging.
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate
from typing import Any

BACKOFF = "backoff"
GIVE_UP = "give up"
START_WALL = 1_750_000_000.0  # the fake clock's wall time at the first request


def _cap_dependent(seconds: float) -> Callable[[float], float | str]:
    return lambda cap: seconds if seconds <= cap else GIVE_UP


RETRY_AFTER_TABLE: list[tuple[str, dict[str, str], Any]] = [
    ("0", {"retry-after": "0"}, BACKOFF),
    ("1.5", {"retry-after": "1.5"}, 1.5),
    ("121", {"retry-after": "121"}, GIVE_UP),
    ("-1", {"retry-after": "-1"}, BACKOFF),
    ("inf", {"retry-after": "inf"}, GIVE_UP),
    ("nan", {"retry-after": "nan"}, BACKOFF),
    ("http-date-past", {"retry-after": formatdate(START_WALL - 60, usegmt=True)}, BACKOFF),
    ("http-date-future", {"retry-after": formatdate(START_WALL + 30, usegmt=True)}, 30.0),
    ("ms-250", {"retry-after-ms": "250"}, 0.25),
    ("ms-wins-over-seconds", {"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ("garbage", {"retry-after": "soon, maybe"}, BACKOFF),
    ("absent", {}, BACKOFF),
    ("60", {"retry-after": "60"}, 60.0),
    ("61", {"retry-after": "61"}, _cap_dependent(61.0)),
    ("120", {"retry-after": "120"}, _cap_dependent(120.0)),
]


def expected_sleep(policy: Any, row_expected: Any) -> float | str:
    """The sleep a provider with ``policy`` must take for a row (or GIVE_UP)."""
    if callable(row_expected):
        row_expected = row_expected(policy.retry_after_cap)
    if row_expected == BACKOFF:
        return float(policy.backoff(0, 0.0))
    return row_expected


OK = "ok"
# Timeouts the fault tests run under: a hang must be cut by the read timeout, a slow first byte
# must not be (SLOW_SECONDS well under READ_TIMEOUT, with room for a loaded scheduler: at 0.3 s a
# retry's normal answer could be cut on two busy cores and count a second attempt).
READ_TIMEOUT = 1.0
SLOW_SECONDS = 0.03

#: request faults (non-streaming operation): (spec, expected outcome, attempts it takes)
REQUEST_FAULTS: dict[str, tuple[str, str, int]] = {
    "429": ("429;retry-after=1", OK, 2),
    "500": ("500", OK, 2),
    "503": ("503", OK, 2),
    "529": ("529", OK, 2),
    "reset": ("reset", OK, 2),
    "disconnect": ("disconnect", OK, 2),
    "read-timeout": ("hang;seconds=5", OK, 2),
    "slow-first-byte": (f"slow;seconds={SLOW_SECONDS}", OK, 1),
    "html-502": ("html", OK, 2),
    "truncated-body": ("truncate", OK, 2),
    "malformed-json": ("malformed-json", "ResponseDecodeError", 1),
    "400": ("400", "BadRequestError", 1),
    "should-retry-false": ("503;x-should-retry=false", "ServerError", 1),
}

#: stream faults (streaming operation): a stream is never retried once events flowed
STREAM_FAULTS: dict[str, tuple[str, str, int]] = {
    "503-before-first-byte": ("503", OK, 2),
    "reset-before-first-byte": ("reset", OK, 2),
    "truncated": ("truncate;after=2", "StreamError", 1),
    "cut-mid-event": ("cut;after=2", "StreamError", 1),
    "malformed-event": ("malformed-sse;after=1", "StreamError", 1),
    "error-event": ("stream-error;after=1", "StreamError", 1),
    "stall": ("stall;after=1;seconds=5", "StreamError", 1),  # read timeout mid-body
}
