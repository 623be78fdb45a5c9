"""Every fault on every family, checked on the wire with httpx (no SDK in between).

For each server: one representative plain request and (where the API streams) one streaming
request. Status faults must carry that provider's error body; stream faults must break the stream
in the provider's own framing (SSE, NDJSON, JSON array).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from ipfs_accelerate.api.testing import SERVERS, FakeServer, Fault

pytestmark = pytest.mark.timeout(30)


@dataclass
class Case:
    path: str
    body: dict[str, Any]
    stream_path: str | None = None
    stream_body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    message_of: Any = None  # error body -> message


CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
CASES: dict[str, Case] = {
    "openai": Case(
        "/v1/chat/completions",
        CHAT,
        "/v1/chat/completions",
        {**CHAT, "stream": True},
        message_of=lambda b: b["error"]["message"],
    ),
    "anthropic": Case(
        "/v1/messages",
        {**CHAT, "max_tokens": 20},
        "/v1/messages",
        {**CHAT, "max_tokens": 20, "stream": True},
        {"anthropic-version": "2023-06-01"},
        lambda b: b["type"] == "error" and b["error"]["message"],
    ),
    "ollama": Case(
        "/api/chat", {**CHAT, "stream": False}, "/api/chat", CHAT, message_of=lambda b: b["error"]
    ),
    "hf_tgi": Case(
        "/generate",
        {"inputs": "hi"},
        "/generate_stream",
        {"inputs": "hi"},
        message_of=lambda b: b["error"] and b["error_type"],
    ),
    "hf_tei": Case("/embed", {"inputs": "hi"}, message_of=lambda b: b["error"] and b["error_type"]),
    "gemini": Case(
        "/v1beta/models/g:generateContent",
        {"contents": [{"parts": [{"text": "hi"}]}]},
        "/v1beta/models/g:streamGenerateContent?alt=sse",
        {"contents": [{"parts": [{"text": "hi"}]}]},
        message_of=lambda b: b["error"]["status"] and b["error"]["message"],
    ),
    "kserve": Case(
        "/v2/models/scale_int64/infer",
        {"inputs": [{"name": "INPUT", "shape": [1], "datatype": "INT64", "data": [1]}]},
        message_of=lambda b: b["error"],
    ),
    "opea": Case(
        "/v1/chatqna",
        {"messages": "hi", "stream": False},
        "/v1/chatqna",
        {"messages": "hi"},
        message_of=lambda b: b["detail"],
    ),
}
FAMILIES = sorted(SERVERS)
STREAMING = [f for f in FAMILIES if CASES[f].stream_path]


def test_every_family_has_a_case() -> None:
    assert set(CASES) == set(SERVERS)


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def env(family: str) -> Iterator[tuple[FakeServer, httpx.Client, Case]]:
    with (
        SERVERS[family]() as srv,
        httpx.Client(base_url=srv.url, timeout=5, verify=False) as client,
    ):
        yield srv, client, CASES[family]


def _post(client: httpx.Client, case: Case, *, stream: bool = False, **kw: Any) -> httpx.Response:
    path, body = (case.stream_path, case.stream_body) if stream else (case.path, case.body)
    return client.post(path, json=body, headers={**case.headers, **kw.pop("headers", {})}, **kw)  # type: ignore[arg-type]


def _stream_lines(client: httpx.Client, case: Case) -> list[str]:
    with client.stream(
        "POST", case.stream_path or "", json=case.stream_body, headers=case.headers
    ) as r:
        assert r.status_code == 200
        return [x for x in r.iter_lines() if x.strip()]


def test_baseline_succeeds(env: tuple[FakeServer, httpx.Client, Case]) -> None:
    srv, client, case = env
    r = _post(client, case)
    assert r.status_code == 200, r.text
    r.json()
    assert srv.requests[-1].delivered


@pytest.mark.parametrize(
    "fault",
    [
        Fault.rate_limit(retry_after="1.5"),
        Fault.rate_limit(retry_after_ms="250"),
        Fault.rate_limit(retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
        Fault.rate_limit(retry_after="soon"),
        Fault.http(500),
        Fault.http(503, should_retry=True),
        Fault.http(529),
        Fault.http(408),
        Fault.http(409),
        Fault.http(400),
        Fault.http(401),
        Fault.http(403),
        Fault.http(404),
    ],
    ids=lambda f: f.spec(),
)
def test_status_faults_carry_provider_error_body(
    env: tuple[FakeServer, httpx.Client, Case], fault: Fault
) -> None:
    srv, client, case = env
    srv.inject(fault)
    r = _post(client, case)
    assert r.status_code == fault.status
    assert r.headers["content-type"].startswith("application/json")
    assert case.message_of(r.json())
    for header, value in (
        ("retry-after", fault.retry_after),
        ("retry-after-ms", fault.retry_after_ms),
        ("x-should-retry", fault.should_retry),
    ):
        assert r.headers.get(header) == value
    assert not srv.requests[-1].delivered
    assert _post(client, case).status_code == 200  # consumed


def test_connection_faults(env: tuple[FakeServer, httpx.Client, Case]) -> None:
    srv, client, case = env
    for fault in (Fault.reset(), Fault.disconnect(), Fault.truncate()):
        srv.inject(fault)
        with pytest.raises(httpx.TransportError):
            _post(client, case)
    srv.inject(Fault.hang(5))
    with pytest.raises(httpx.ReadTimeout):
        _post(client, case, timeout=httpx.Timeout(5, read=0.2))
    srv.inject(Fault.slow_first_byte(0.1))
    assert _post(client, case).status_code == 200
    assert [r.delivered for r in srv.requests] == [False] * 4 + [True]


def test_body_faults(env: tuple[FakeServer, httpx.Client, Case]) -> None:
    srv, client, case = env
    srv.inject(Fault.malformed_json())
    r = _post(client, case)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    srv.inject(Fault.html(503))
    r = _post(client, case)
    assert r.status_code == 503 and r.headers["content-type"] == "text/html" and "<html>" in r.text


@pytest.fixture(params=STREAMING)
def stream_env(request: pytest.FixtureRequest) -> Iterator[tuple[FakeServer, httpx.Client, Case]]:
    with (
        SERVERS[request.param]() as srv,
        httpx.Client(base_url=srv.url, timeout=5, verify=False) as client,
    ):
        yield srv, client, CASES[request.param]


def test_stream_faults(stream_env: tuple[FakeServer, httpx.Client, Case]) -> None:
    srv, client, case = stream_env
    full = _stream_lines(client, case)
    assert len(full) >= 5
    srv.inject(Fault.truncate(after=2))
    truncated = _stream_lines(client, case)
    assert truncated == full[: len(truncated)] and len(truncated) < len(full)
    srv.inject(Fault.cut(after=2))
    with pytest.raises(httpx.RemoteProtocolError):
        _stream_lines(client, case)
    srv.inject(Fault.malformed_sse(after=2))
    malformed = _stream_lines(client, case)
    assert len(malformed) > len(full) - 1 and malformed != full
    srv.inject(Fault.stream_error(500, after=2, message="boom-in-stream"))
    errored = _stream_lines(client, case)
    assert errored[:2] == full[:2] and "boom-in-stream" in "".join(errored[2:])
    srv.inject(Fault.stall(after=2, seconds=5))
    with pytest.raises(httpx.ReadTimeout):
        with client.stream(
            "POST",
            case.stream_path or "",
            json=case.stream_body,
            headers=case.headers,
            timeout=httpx.Timeout(5, read=0.2),
        ) as r:
            list(r.iter_lines())
    assert _stream_lines(client, case) == full
    delivered = [r.delivered for r in srv.requests]
    assert delivered[0] and delivered[-1] and not any(delivered[1:-1])


def test_header_driven_fault_form(env: tuple[FakeServer, httpx.Client, Case]) -> None:
    srv, client, case = env
    h = {"x-fake-fault": "503;retry-after=0;times=1", "Idempotency-Key": "k-1"}
    assert [_post(client, case, headers=h).status_code for _ in range(2)] == [503, 200]
    assert srv.attempts_by_key() == {"k-1": 2} and srv.delivered_by_key() == {"k-1": 1}
