"""The official anthropic SDK judges the Anthropic Messages fake."""

from __future__ import annotations

import asyncio

import pytest

from ipfs_accelerate.api.testing import (
    FakeAnthropicServer,
    Fault,
    anthropic_prompt,
    count_tokens,
    reply_text,
)

from .conftest import FAKE_KEY, LazySDK, http, sdk_http

anthropic = LazySDK("anthropic")
pytestmark = pytest.mark.timeout(30)

MODEL = "claude-fake-1"
KW = {
    "model": MODEL,
    "max_tokens": 64,
    "system": "be brief",
    "messages": [{"role": "user", "content": "What is IPFS?"}],
}
PROMPT = anthropic_prompt(KW)


@pytest.fixture
def srv() -> FakeAnthropicServer:
    with FakeAnthropicServer(api_key=FAKE_KEY) as s:
        yield s


def _client(srv: FakeAnthropicServer, **kw: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=srv.url, api_key=FAKE_KEY, http_client=sdk_http(anthropic), **kw
    )  # type: ignore[arg-type]


def test_messages_create(srv: FakeAnthropicServer) -> None:
    m = _client(srv).messages.create(**KW)  # type: ignore[arg-type]
    assert m.type == "message" and m.role == "assistant" and m.model == MODEL
    assert m.content[0].text == reply_text(PROMPT)  # type: ignore[union-attr]
    assert m.stop_reason == "end_turn"
    assert (m.usage.input_tokens, m.usage.output_tokens) == (count_tokens(PROMPT), 12)
    rec = srv.requests[-1]
    assert rec.auth == f"Bearer {FAKE_KEY}"  # the SDK sends Bearer, not x-api-key
    assert "anthropic-version" in rec.headers and FAKE_KEY not in repr(rec)


def test_x_api_key_also_accepted(srv: FakeAnthropicServer) -> None:

    r = http().post(
        srv.url + "/v1/messages",
        json=KW,
        headers={"x-api-key": FAKE_KEY, "anthropic-version": "2023-06-01"},
        timeout=5,
    )
    assert r.status_code == 200 and r.headers["request-id"].startswith("req_")
    missing = http().post(
        srv.url + "/v1/messages", json=KW, headers={"x-api-key": FAKE_KEY}, timeout=5
    )
    assert missing.status_code == 400 and "anthropic-version" in missing.json()["error"]["message"]


def test_max_tokens_and_stop_sequences(srv: FakeAnthropicServer) -> None:
    c = _client(srv)
    short = c.messages.create(**{**KW, "max_tokens": 3})  # type: ignore[arg-type]
    assert short.stop_reason == "max_tokens" and short.content[0].text == reply_text(PROMPT, 3)  # type: ignore[union-attr]
    third_word = reply_text(PROMPT).split()[2]
    stopped = c.messages.create(**KW, stop_sequences=[third_word])  # type: ignore[arg-type]
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == third_word
    assert stopped.content[0].text == reply_text(PROMPT).split(third_word)[0]  # type: ignore[union-attr]


def test_stream_events_and_final_message(srv: FakeAnthropicServer) -> None:
    c = _client(srv)
    kinds = [e.type for e in c.messages.create(**KW, stream=True)]  # type: ignore[arg-type]
    assert kinds[:3] == ["message_start", "content_block_start", "ping"] or kinds[:2] == [
        "message_start",
        "content_block_start",
    ]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("content_block_delta") == 12
    with c.messages.stream(**KW) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == reply_text(PROMPT) == final.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == 12 and final.usage.input_tokens == count_tokens(PROMPT)


def test_tool_use_sync_and_stream(srv: FakeAnthropicServer) -> None:
    c = _client(srv)
    tools = [{"name": "lookup", "description": "d", "input_schema": {"type": "object"}}]
    m = c.messages.create(**KW, tools=tools, tool_choice={"type": "any"})  # type: ignore[arg-type]
    assert m.stop_reason == "tool_use" and m.content[0].type == "tool_use"
    with c.messages.stream(**KW, tools=tools, tool_choice={"type": "tool", "name": "lookup"}) as s:  # type: ignore[arg-type]
        final = s.get_final_message()
    assert final.content[0].input == {"input": reply_text(PROMPT)}  # type: ignore[union-attr]


def test_count_tokens_and_models(srv: FakeAnthropicServer) -> None:
    c = _client(srv)
    assert c.messages.count_tokens(
        model=MODEL, messages=KW["messages"], system="be brief"
    ).input_tokens == count_tokens(PROMPT)  # type: ignore[arg-type]
    assert [m.id for m in c.models.list()] == ["claude-fake-1", "claude-fake-haiku"]
    assert c.models.retrieve("claude-fake-1").display_name == "Claude Fake 1"


def test_async_client(srv: FakeAnthropicServer) -> None:
    async def go() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(
            base_url=srv.url, api_key=FAKE_KEY, http_client=sdk_http(anthropic, asynchronous=True)
        ) as c:
            m = await c.messages.create(**KW)  # type: ignore[arg-type]
            async with c.messages.stream(**KW) as s:  # type: ignore[arg-type]
                text = "".join([t async for t in s.text_stream])
            return m.content[0].text, text  # type: ignore[union-attr]

    a, b = asyncio.run(go())
    assert a == b == reply_text(PROMPT)


@pytest.mark.parametrize(
    ("status", "error", "etype"),
    [
        (400, "BadRequestError", "invalid_request_error"),
        (401, "AuthenticationError", "authentication_error"),
        (403, "PermissionDeniedError", "permission_error"),
        (404, "NotFoundError", "not_found_error"),
        (429, "RateLimitError", "rate_limit_error"),
        (500, "InternalServerError", "api_error"),
        (529, "OverloadedError", "overloaded_error"),
    ],
)
def test_error_bodies_map_to_sdk_errors(
    srv: FakeAnthropicServer, status: int, error: str, etype: str
) -> None:
    srv.inject(Fault.http(status, retry_after_ms="1"), times=None)
    exc_type = getattr(anthropic, error, anthropic.APIStatusError)
    with pytest.raises(exc_type) as exc:
        _client(srv, max_retries=1).messages.create(**KW)  # type: ignore[arg-type]
    assert exc.value.status_code == status
    assert exc.value.body["error"]["type"] == etype  # type: ignore[index]
    retried = status in (429, 500, 529)
    assert len(srv.requests) == (2 if retried else 1)


def test_sdk_retries_overloaded_then_succeeds(srv: FakeAnthropicServer) -> None:
    srv.inject(Fault.http(529, retry_after="0.05"), times=2)
    m = _client(srv, max_retries=2).messages.create(**KW)  # type: ignore[arg-type]
    assert m.content[0].text == reply_text(PROMPT)  # type: ignore[union-attr]
    assert [r.headers["x-stainless-retry-count"] for r in srv.requests] == ["0", "1", "2"]
    assert [r.status for r in srv.requests] == [529, 529, 200]


def test_wrong_key_is_401(srv: FakeAnthropicServer) -> None:
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(
            base_url=srv.url, api_key="wrong", max_retries=0, http_client=sdk_http(anthropic)
        ).messages.create(**KW)  # type: ignore[arg-type]


def test_stream_faults(srv: FakeAnthropicServer) -> None:
    c = _client(srv, max_retries=0)

    def consume() -> str:
        with c.messages.stream(**KW) as s:  # type: ignore[arg-type]
            return "".join(s.text_stream)

    srv.inject(Fault.stream_error(529, after=4))  # upstream sends `event: error` mid-stream
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        consume()
    srv.inject(Fault.cut(after=5))
    # Quirk (anthropic 2.x): a cut mid-stream surfaces as the raw httpx2 transport error, not
    # APIConnectionError as openai's SDK wraps it; our claude provider must map both.
    httpx2 = pytest.importorskip("httpx2")
    with pytest.raises(httpx2.TransportError):
        consume()
    srv.inject(Fault.malformed_sse(after=4))
    with pytest.raises(ValueError):
        consume()
    assert consume() == reply_text(PROMPT)
