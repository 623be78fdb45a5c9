"""claude: Messages API mapping, streaming events and usage reconciliation, count_tokens."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ipfs_accelerate.api.core import FakeClock, RateLimitError, ServerError, StreamError, Usage
from ipfs_accelerate.api.providers.claude import ANTHROPIC_VERSION, ClaudeProvider

from ..core._routes import Routes, make, sse

KEY = "sk-ant-test"
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-test",
    "content": [
        {"type": "text", "text": "Hi "},
        {"type": "tool_use", "id": "tu_1", "name": "f", "input": {}},
        {"type": "text", "text": "there"},
    ],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 12, "output_tokens": 3},
}
EVENTS = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                **MESSAGE,
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 12, "output_tokens": 1},
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi "}},
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "there"},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 7},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


@pytest.fixture
def routes() -> Routes:
    return (
        Routes()
        .on(
            "POST",
            "/v1/messages",
            httpx.Response(200, json=MESSAGE, headers={"request-id": "req_a"}),
        )
        .on("POST", "/v1/messages/count_tokens", httpx.Response(200, json={"input_tokens": 42}))
        .on(
            "GET",
            "/v1/models",
            httpx.Response(200, json={"data": [{"id": "claude-test", "type": "model"}]}),
        )
    )


def _client(routes: Routes, **kw) -> ClaudeProvider:
    return make(ClaudeProvider, routes, api_key=KEY, model="claude-test", **kw)


def test_create_headers_body_parse(routes: Routes) -> None:
    client = _client(routes)
    r = client.chat(
        [{"role": "system", "content": "terse"}, {"role": "user", "content": "hello"}],
        temperature=0.2,
    )
    hit = routes.last
    assert hit.path == "/v1/messages"
    assert hit.headers["x-api-key"] == KEY and hit.headers["anthropic-version"] == ANTHROPIC_VERSION
    assert "authorization" not in hit.headers
    assert hit.body == {
        "model": "claude-test",
        "max_tokens": 1024,
        "system": "terse",
        "messages": [{"role": "user", "content": "hello"}],
        "temperature": 0.2,
    }
    assert r.text == "Hi there" and r.finish_reason == "end_turn" and r.usage == Usage(12, 3)
    assert r.choices[0].message.tool_calls[0]["name"] == "f"
    client.chat("x", system="sys", max_tokens=5)
    assert routes.last.body["system"] == "sys" and routes.last.body["max_tokens"] == 5
    with pytest.raises(ValueError, match="either"):
        client.chat(
            [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}], system="c"
        )


def test_stream_events_and_usage(routes: Routes) -> None:
    routes.on("POST", "/v1/messages", sse(*EVENTS))
    client = _client(routes)
    stream = client.chat_stream("hello")
    chunks = list(stream)
    assert routes.last.body["stream"] is True
    assert [c.delta for c in chunks] == ["", "Hi ", "there", ""]
    assert chunks[0].role == "assistant" and chunks[-1].finish_reason == "end_turn"
    # input from message_start, output from the cumulative message_delta (7, not 1 + 7)
    assert stream.usage == Usage(12, 7) and stream.text == "Hi there"
    s = client.stats()["claude POST /v1/messages"]
    assert (s.tokens_in, s.tokens_out) == (12, 7)


@pytest.mark.parametrize(
    ("events", "match"),
    [
        (EVENTS[:-1], "truncated"),
        (EVENTS[:4] + [("error", OVERLOADED)], "overloaded_error: Overloaded"),
        (EVENTS + [("message_start", EVENTS[0][1])], "after message_stop"),
    ],
)
def test_bad_streams(routes: Routes, events, match: str) -> None:
    routes.on("POST", "/v1/messages", sse(*events))
    with pytest.raises(StreamError, match=match):
        list(_client(routes).chat_stream("hello"))


def test_count_tokens_and_models(routes: Routes) -> None:
    client = _client(routes)
    assert (
        client.count_tokens(
            [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
        ).input_tokens
        == 42
    )
    assert routes.last.body == {
        "model": "claude-test",
        "messages": [{"role": "user", "content": "q"}],
        "system": "s",
    }
    assert [m.id for m in client.models()] == ["claude-test"]


def test_529_is_retried_and_cap_is_60s(routes: Routes) -> None:
    clock = FakeClock()
    routes.on(
        "POST",
        "/v1/messages",
        [httpx.Response(529, json=OVERLOADED), httpx.Response(200, json=MESSAGE)],
    )
    client = _client(routes, clock=clock)
    assert client.chat("hi").text == "Hi there" and clock.sleeps == [0.5]
    routes.on("POST", "/v1/messages", [httpx.Response(529, json=OVERLOADED)])
    with pytest.raises(ServerError, match="Overloaded") as info:
        client.chat("hi")
    assert info.value.status == 529
    routes.on(
        "POST",
        "/v1/messages",
        [httpx.Response(429, json=OVERLOADED, headers={"retry-after": "61"})],
    )
    n = len(routes.hits)
    with pytest.raises(RateLimitError):
        client.chat("hi")
    assert len(routes.hits) == n + 1


def test_async_twins(routes: Routes) -> None:
    client = _client(routes)

    async def main() -> None:
        assert (await client.achat("hi")).text == "Hi there"
        assert (await client.acount_tokens("hi")).input_tokens == 42
        assert [m.id for m in await client.amodels()] == ["claude-test"]
        routes.on("POST", "/v1/messages", sse(*EVENTS))
        stream = await client.achat_stream("hi")
        assert "".join([c.delta async for c in stream]) == "Hi there" and stream.usage == Usage(
            12, 7
        )
        await client.aclose()

    asyncio.run(main())
