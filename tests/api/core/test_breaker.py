"""Circuit breaker transitions on a fake clock, alone and inside the client."""

from __future__ import annotations

import httpx
import pytest

from ipfs_accelerate.api.core import (
    APIConnectionError,
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    FakeClock,
    NotFoundError,
    RequestOptions,
    ServerError,
)

from .conftest import ok, status

POST = RequestOptions("POST", "/chat/completions", json={})


def test_transitions(clock: FakeClock) -> None:
    b = CircuitBreaker("ep", BreakerConfig(failure_threshold=3, reset_timeout=10.0), clock)
    assert b.state == "closed"
    b.record_failure()
    b.record_failure()
    b.record_success()  # success resets the consecutive count
    b.record_failure()
    b.record_failure()
    assert b.state == "closed"
    b.record_failure()
    assert b.state == "open" and b.times_opened == 1
    with pytest.raises(CircuitOpenError) as info:
        b.before_request()
    assert info.value.retry_in == pytest.approx(10.0)
    clock.advance(9.999)
    with pytest.raises(CircuitOpenError):
        b.before_request()
    clock.advance(0.001)
    assert b.state == "half_open"
    b.before_request()  # the one trial
    with pytest.raises(CircuitOpenError) as info:
        b.before_request()  # a second caller while the trial runs
    assert info.value.retry_in == 0.0
    b.record_failure()  # trial failed: open again for a full reset_timeout
    assert b.state == "open" and b.times_opened == 2
    clock.advance(10.0)
    b.before_request()
    b.record_success()
    assert b.state == "closed"
    b.before_request()


def test_cancelled_trial_frees_its_place(clock: FakeClock) -> None:
    b = CircuitBreaker("ep", BreakerConfig(failure_threshold=1, reset_timeout=1.0), clock)
    b.record_failure()
    clock.advance(1.0)
    b.before_request()
    b.release_trial()
    b.before_request()  # admitted again


def test_client_opens_breaker_per_endpoint_and_recovers(make_client, clock) -> None:
    client, script = make_client(
        status(503), breaker=BreakerConfig(failure_threshold=3, reset_timeout=5.0), max_retries=0
    )
    for _ in range(3):
        with pytest.raises(ServerError):
            client.request(POST)
    with pytest.raises(CircuitOpenError) as info:
        client.request(POST)
    assert len(script.seen) == 3  # refused without sending
    assert info.value.url == "http://api.test/v1/chat/completions"
    # another endpoint of the same client is unaffected
    script.steps = [ok()]
    assert client.request(RequestOptions("GET", "/models")) == {"ok": True}
    clock.advance(5.0)
    assert client.request(POST) == {"ok": True}  # half-open trial succeeds → closed
    assert client.breaker("test POST /chat/completions").state == "closed"
    stats = client.stats()["test POST /chat/completions"]
    assert stats.errors == {"ServerError": 3, "CircuitOpenError": 1}


def test_breaker_opening_during_retries_stops_them(make_client) -> None:
    client, script = make_client(
        status(500), breaker=BreakerConfig(failure_threshold=2), max_retries=5
    )
    with pytest.raises(CircuitOpenError) as info:
        client.request(POST)
    assert len(script.seen) == 2
    assert isinstance(info.value.__cause__, ServerError)


def test_client_errors_and_connection_errors(make_client, clock) -> None:
    cfg = BreakerConfig(failure_threshold=2, reset_timeout=5.0)
    client, script = make_client(status(404), breaker=cfg, max_retries=0)
    for _ in range(5):
        with pytest.raises(NotFoundError):
            client.request(POST)
    assert client.breaker("test POST /chat/completions").state == "closed"  # 4xx: server is fine
    client, script = make_client(httpx.ConnectError("refused"), breaker=cfg, max_retries=0)
    for _ in range(2):
        with pytest.raises(APIConnectionError):
            client.request(POST)
    assert client.breaker("test POST /chat/completions").state == "open"


def test_breaker_can_be_disabled(make_client) -> None:
    client, script = make_client(status(500), breaker=None, max_retries=0)
    for _ in range(20):
        with pytest.raises(ServerError):
            client.request(POST)
    assert client.breaker("test POST /chat/completions") is None
