"""The retry loop against a scripted transport on a fake clock: schedules, headers, give-ups."""

from __future__ import annotations

import asyncio
import random
from email.utils import formatdate

import httpx
import pytest

from ipfs_accelerate.api.core import (
    GOOGLE_RETRY,
    OPENAI_RETRY,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestOptions,
    RetryPolicy,
    ServerError,
    Timeout,
    decide_retry,
    parse_retry_after,
)

from .conftest import ok, status

POST = RequestOptions("POST", "/chat/completions", json={"x": 1})
GET = RequestOptions("GET", "/models")
WALL = 1_750_000_000.0


# -- pure policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": " 7 "}, 7.0),
        ({"retry-after": "-1"}, -1.0),
        ({"retry-after": "inf"}, float("inf")),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "x", "retry-after": "2"}, 2.0),
        ({"retry-after": formatdate(WALL + 30, usegmt=True)}, 30.0),
        ({"retry-after": formatdate(WALL - 30, usegmt=True)}, -30.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers), WALL) == expected


def test_backoff_schedule_without_and_with_jitter() -> None:
    p = OPENAI_RETRY
    assert [p.backoff(n, 0.0) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    # rand → 1 gives the largest jitter: 25 % off.
    assert [p.backoff(n, 0.999999) for n in range(3)] == pytest.approx([0.375, 0.75, 1.5], rel=1e-5)
    rng = random.Random(7)
    for n in range(6):
        for _ in range(200):
            d = p.backoff(n, rng.random())
            base = min(0.5 * 2**n, 8.0)
            assert 0.75 * base <= d <= base
    g = GOOGLE_RETRY
    assert (g.max_retries, [g.backoff(n, 0.0) for n in range(7)]) == (4, [1, 2, 4, 8, 16, 32, 60])


@pytest.mark.parametrize(
    ("status", "headers", "retry"),
    [
        (400, {}, False),
        (401, {}, False),
        (403, {}, False),
        (404, {}, False),
        (422, {}, False),
        (408, {}, True),
        (409, {}, True),
        (429, {}, True),
        (500, {}, True),
        (502, {}, True),
        (503, {}, True),
        (529, {}, True),
        (500, {"x-should-retry": "false"}, False),
        (400, {"x-should-retry": "true"}, True),
        (429, {"retry-after": "121"}, False),
        (429, {"retry-after": "121", "x-should-retry": "true"}, False),
        (None, None, True),
    ],
)
def test_decide_retry_by_status(
    status: int | None, headers: dict[str, str] | None, retry: bool
) -> None:
    d = decide_retry(
        OPENAI_RETRY,
        status=status,
        headers=httpx.Headers(headers) if headers is not None else None,
        retries_taken=0,
        max_retries=2,
        wall_now=WALL,
        rand=0.0,
    )
    assert d.retry is retry, d.reason


def test_decide_retry_respects_budget() -> None:
    d = decide_retry(
        OPENAI_RETRY,
        status=503,
        headers=httpx.Headers(),
        retries_taken=2,
        max_retries=2,
        wall_now=WALL,
        rand=0,
    )
    assert not d.retry and d.reason == "retries exhausted"


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=2)


# -- the loop ------------------------------------------------------------------------------------


def test_backoff_schedule_and_no_early_request(make_client, clock) -> None:
    client, script = make_client(status(500), status(502), status(503), ok(), max_retries=3)
    assert client.request(POST) == {"ok": True}
    assert script.gaps == [0.5, 1.0, 2.0]
    assert clock.sleeps == [0.5, 1.0, 2.0]
    s = client.stats()["test POST /chat/completions"]
    assert (s.requests, s.attempts, s.retries, s.successes, s.failures) == (1, 4, 3, 1, 0)
    assert s.latency_p50 == pytest.approx(3.5)


def test_backoff_caps_at_max_delay_then_gives_up(make_client) -> None:
    client, script = make_client(status(500), max_retries=6, breaker=None)
    with pytest.raises(ServerError) as info:
        client.request(POST)
    assert len(script.seen) == 7
    assert script.gaps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert info.value.status == 500
    assert client.stats()["test POST /chat/completions"].failures == 1


def test_google_schedule(make_client) -> None:
    client, script = make_client(status(503), retry_policy=GOOGLE_RETRY, breaker=None)
    with pytest.raises(ServerError):
        client.request(POST)
    assert script.gaps == [1.0, 2.0, 4.0, 8.0]  # 5 attempts in all


def test_jittered_gaps_stay_in_bounds(make_client) -> None:
    client, script = make_client(status(500), max_retries=4, rng=random.Random(3))
    with pytest.raises(ServerError):
        client.request(POST)
    for n, gap in enumerate(script.gaps):
        base = min(0.5 * 2**n, 8.0)
        assert 0.75 * base <= gap <= base


def test_retry_after_is_reread_on_every_attempt(make_client) -> None:
    client, script = make_client(
        status(429, {"retry-after": "1"}),
        status(429, {"retry-after-ms": "3000"}),
        status(503, {"retry-after": "0.25"}),
        status(503),
        ok(),
        max_retries=4,
    )
    client.request(POST)
    assert script.gaps == [1.0, 3.0, 0.25, 4.0]  # the last one is backoff #3: 0.5 * 2**3


def test_idempotency_key_and_retry_count_headers(make_client) -> None:
    client, script = make_client(status(500), status(500), ok())
    client.request(POST)
    keys = {s.headers["idempotency-key"] for s in script.seen}
    assert len(keys) == 1 and next(iter(keys)).startswith("ipfs-accelerate-retry-")
    assert [s.headers["x-retry-count"] for s in script.seen] == ["0", "1", "2"]
    client.request(POST)
    assert script.seen[-1].headers["idempotency-key"] not in keys  # a new logical request
    client.request(GET)
    assert "idempotency-key" not in script.seen[-1].headers
    client.request(POST.with_(idempotency_key="mine"))
    assert script.seen[-1].headers["idempotency-key"] == "mine"


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, BadRequestError),
    ],
)
def test_client_errors_are_not_retried(make_client, clock, code: int, cls: type) -> None:
    client, script = make_client(status(code, {"x-request-id": "req_123"}), ok())
    with pytest.raises(cls) as info:
        client.request(POST)
    assert len(script.seen) == 1 and clock.sleeps == []
    err = info.value
    assert (err.status, err.request_id, err.method) == (code, "req_123", "POST")
    assert f"status {code}" in err.body
    assert err.url == "http://api.test/v1/chat/completions"


@pytest.mark.parametrize(
    ("code", "cls"),
    [(408, APIStatusError), (409, ConflictError), (429, RateLimitError), (529, ServerError)],
)
def test_retryable_statuses_end_in_their_class(make_client, code: int, cls: type) -> None:
    client, script = make_client(status(code), breaker=None)
    with pytest.raises(APIStatusError) as info:
        client.request(POST)
    assert len(script.seen) == 3
    assert type(info.value) is cls and info.value.status == code


def test_x_should_retry_header(make_client) -> None:
    client, script = make_client(status(503, {"x-should-retry": "false"}), ok())
    with pytest.raises(ServerError):
        client.request(POST)
    assert len(script.seen) == 1
    client, script = make_client(status(400, {"x-should-retry": "true"}), ok())
    assert client.request(POST) == {"ok": True}
    assert len(script.seen) == 2


def test_connection_errors_and_timeouts_are_retried(make_client) -> None:
    client, script = make_client(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), ok())
    assert client.request(POST) == {"ok": True}
    assert script.gaps == [0.5, 1.0]
    client, script = make_client(httpx.ConnectError("refused"))
    with pytest.raises(APIConnectionError) as info:
        client.request(POST)
    assert type(info.value) is APIConnectionError and len(script.seen) == 3
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    client, script = make_client(httpx.ReadTimeout("slow"))
    with pytest.raises(APITimeoutError):
        client.request(POST)
    assert len(script.seen) == 3


def test_retry_after_above_cap_gives_up_at_once(make_client, clock) -> None:
    client, script = make_client(status(429, {"retry-after": "121"}), ok())
    with pytest.raises(RateLimitError):
        client.request(POST)
    assert len(script.seen) == 1 and clock.sleeps == []


def test_total_timeout_bounds_the_whole_call(make_client) -> None:
    client, script = make_client(
        status(500), timeout=Timeout(total=2.0), max_retries=10, breaker=None
    )
    with pytest.raises(ServerError):
        client.request(POST)
    # attempts at 0, 0.5, 1.5; the next (at 3.5) would pass the 2 s budget
    assert script.times == [1000.0, 1000.5, 1001.5]
    # each attempt's socket timeouts are clipped to what is left of the budget
    assert [s.timeout["read"] for s in script.seen] == [2.0, 1.5, 0.5]
    assert script.seen[0].timeout["connect"] == 2.0


def test_per_attempt_timeouts_reach_the_transport(make_client) -> None:
    client, script = make_client(ok(), timeout=Timeout(connect=1.0, read=7.0, write=3.0, pool=4.0))
    client.request(POST)
    assert script.seen[0].timeout == {"connect": 1.0, "read": 7.0, "write": 3.0, "pool": 4.0}


def test_per_call_max_retries(make_client) -> None:
    client, script = make_client(status(500))
    with pytest.raises(ServerError):
        client.request(POST.with_(max_retries=0))
    assert len(script.seen) == 1


def test_key_rotation_round_robin_and_away_from_bad_keys(make_client) -> None:
    keys = ["sk-aaaa1111", "sk-bbbb2222", "sk-cccc3333"]
    client, script = make_client(ok(), keys=keys)
    for _ in range(4):
        client.request(POST)
    used = [s.headers["authorization"].removeprefix("Bearer ") for s in script.seen]
    assert used == [keys[0], keys[1], keys[2], keys[0]]

    # 401 on a key: retried at once with another key; that key is never used again
    client, script = make_client(status(401), ok(), keys=keys)
    client.request(POST)
    assert [s.headers["authorization"][7:] for s in script.seen] == [keys[0], keys[1]]
    assert script.gaps == [0.0]
    script.steps = [ok()]
    for _ in range(4):
        client.request(POST)
    assert keys[0] not in {s.headers["authorization"][7:] for s in script.seen[2:]}

    # 429 on a key: wait as told, then use the next key
    client, script = make_client(status(429, {"retry-after": "2"}), ok(), keys=keys)
    client.request(POST)
    assert [s.headers["authorization"][7:] for s in script.seen] == [keys[0], keys[1]]
    assert script.gaps == [2.0]


def test_single_key_401_is_not_retried(make_client) -> None:
    client, script = make_client(status(401), ok(), keys=["sk-only-one"])
    with pytest.raises(AuthenticationError):
        client.request(POST)
    assert len(script.seen) == 1


def test_async_twin_follows_the_same_schedule(make_client, clock) -> None:
    client, script = make_client(
        status(429, {"retry-after": "1.5"}),
        httpx.ConnectError("x"),
        status(500),
        ok(),
        max_retries=3,
    )

    async def main() -> None:
        assert await client.arequest(POST) == {"ok": True}
        await client.aclose()

    asyncio.run(main())
    assert script.gaps == [1.5, 1.0, 2.0]
    assert len({s.headers["idempotency-key"] for s in script.seen}) == 1


def test_async_client_error_not_retried(make_client) -> None:
    client, script = make_client(status(404), ok())

    async def main() -> None:
        with pytest.raises(NotFoundError):
            await client.arequest(POST)

    asyncio.run(main())
    assert len(script.seen) == 1


def test_undecodable_success_body_is_a_typed_error(make_client) -> None:
    from ipfs_accelerate.api.core import ResponseDecodeError

    client, script = make_client(
        httpx.Response(200, content=b"<html>oops</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(ResponseDecodeError) as info:
        client.request(POST)
    assert len(script.seen) == 1  # a 2xx is not retried: the server may have acted on it
    assert info.value.status == 200 and "text/html" in str(info.value)
