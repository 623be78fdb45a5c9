"""openai_api: request mapping and response parsing over the OpenAI wire protocol."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ipfs_accelerate.api.core import FakeClock, ServerError, StreamError, Usage
from ipfs_accelerate.api.providers.openai_api import OpenAIProvider

from ..core._routes import Routes, make, sse

KEY = "sk-test-openai"
CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-test",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there"},
            "finish_reason": "stop",
        },
        {
            "index": 1,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function"}],
            },
            "finish_reason": "tool_calls",
        },
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}
CHUNK = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "model": "gpt-test"}


def _chunk(delta: dict, finish: str | None = None, **extra) -> dict:
    return {**CHUNK, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


STREAM = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Hel"}),
    _chunk({"content": "lo"}),
    _chunk({}, "stop"),
    {
        **CHUNK,
        "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    },
    "[DONE]",
]


@pytest.fixture
def routes() -> Routes:
    return (
        Routes()
        .on(
            "POST",
            "/v1/chat/completions",
            httpx.Response(200, json=CHAT, headers={"x-request-id": "req_1"}),
        )
        .on(
            "POST",
            "/v1/completions",
            httpx.Response(
                200,
                json={
                    "id": "cmpl-1",
                    "model": "m",
                    "choices": [{"index": 0, "text": " world", "finish_reason": "length"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1},
                },
            ),
        )
        .on(
            "POST",
            "/v1/embeddings",
            httpx.Response(
                200,
                json={
                    "model": "emb",
                    "data": [
                        {"index": 1, "embedding": [0.0, 1.0]},
                        {"index": 0, "embedding": [1.0, 0.0]},
                    ],
                    "usage": {"prompt_tokens": 4, "total_tokens": 4},
                },
            ),
        )
        .on(
            "GET",
            "/v1/models",
            httpx.Response(200, json={"data": [{"id": "gpt-test", "owned_by": "openai"}]}),
        )
    )


def _client(routes: Routes, **kw) -> OpenAIProvider:
    kw.setdefault("api_key", KEY)
    return make(OpenAIProvider, routes, base_url="http://api.test/v1", model="gpt-test", **kw)


def test_chat_request_and_parse(routes: Routes) -> None:
    client = _client(routes)
    r = client.chat(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        temperature=0,
    )
    hit = routes.last
    assert (hit.method, hit.path) == ("POST", "/v1/chat/completions")
    assert hit.headers["authorization"] == f"Bearer {KEY}"
    assert hit.headers["content-type"] == "application/json"
    assert hit.body == {
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "temperature": 0,
    }
    assert r.text == "Hello there" and r.finish_reason == "stop" and r.id == "chatcmpl-1"
    assert r.usage == Usage(9, 2) and r.usage.total_tokens == 11
    assert r.choices[1].message.tool_calls == [{"id": "c1", "type": "function"}]
    assert r.choices[1].message.content == ""
    client.chat("just text", model="other")
    assert routes.last.body["messages"] == [{"role": "user", "content": "just text"}]
    assert routes.last.body["model"] == "other"
    s = client.stats()["openai_api POST /chat/completions"]
    assert (s.requests, s.tokens_in, s.tokens_out) == (2, 18, 4)


def test_chat_stream(routes: Routes) -> None:
    routes.on("POST", "/v1/chat/completions", sse(*STREAM))
    client = _client(routes)
    stream = client.chat_stream("hi")
    chunks = list(stream)
    assert routes.last.body["stream"] is True
    assert routes.last.body["stream_options"] == {"include_usage": True}
    assert routes.last.headers["accept"] == "text/event-stream"
    assert [c.delta for c in chunks] == ["", "Hel", "lo", "", ""]
    assert chunks[0].role == "assistant" and chunks[3].finish_reason == "stop"
    assert chunks[-1].usage == Usage(5, 2) == stream.usage
    assert stream.text == "Hello" and stream.done
    s = client.stats()["openai_api POST /chat/completions"]
    assert (s.successes, s.tokens_in, s.tokens_out) == (1, 5, 2)


def test_stream_without_usage_reports_none(routes: Routes) -> None:
    routes.on("POST", "/v1/chat/completions", sse(_chunk({"content": "x"}, "stop"), "[DONE]"))
    stream = _client(routes).chat_stream("hi", stream_options={"include_usage": False})
    assert [c.delta for c in stream] == ["x"] and stream.usage is None
    assert routes.last.body["stream_options"] == {"include_usage": False}


@pytest.mark.parametrize(
    ("events", "match"),
    [
        ([_chunk({"content": "a"})], "truncated"),
        ([_chunk({"content": "a"}), {"error": {"message": "model crashed"}}], "model crashed"),
        ([_chunk({"content": "a"}), "{not json"], "malformed JSON"),
        (["[DONE]", _chunk({"content": "late"})], "after \\[DONE\\]"),
    ],
)
def test_bad_streams(routes: Routes, events: list, match: str) -> None:
    routes.on("POST", "/v1/chat/completions", sse(*events))
    client = _client(routes)
    with pytest.raises(StreamError, match=match):
        list(client.chat_stream("hi"))
    assert client.client.queue.in_flight == 0


def test_completions_and_stream(routes: Routes) -> None:
    client = _client(routes)
    c = client.complete("hello", max_tokens=1)
    assert routes.last.body == {"model": "gpt-test", "prompt": "hello", "max_tokens": 1}
    assert (c.text, c.choices[0].finish_reason, c.usage) == (" world", "length", Usage(1, 1))
    routes.on(
        "POST",
        "/v1/completions",
        sse(
            {
                "id": "c",
                "object": "text_completion",
                "choices": [{"index": 0, "text": " wor", "finish_reason": None}],
            },
            {
                "id": "c",
                "object": "text_completion",
                "choices": [{"index": 0, "text": "ld", "finish_reason": "stop"}],
            },
            "[DONE]",
        ),
    )
    stream = client.complete_stream("hello")
    assert [x.delta for x in stream] == [" wor", "ld"] and stream.text == " world"


def test_embeddings_in_input_order(routes: Routes) -> None:
    client = _client(routes)
    e = client.embed(["a", "b"], model="emb")
    assert routes.last.body == {"model": "emb", "input": ["a", "b"], "encoding_format": "float"}
    assert e.embeddings == [[1.0, 0.0], [0.0, 1.0]] and e.dimensions == 2 and e.usage == Usage(4, 0)


def test_models(routes: Routes) -> None:
    models = _client(routes).models()
    assert [(m.id, m.owned_by) for m in models] == [("gpt-test", "openai")]
    assert routes.last.method == "GET" and "idempotency-key" not in routes.last.headers


def test_async_twins(routes: Routes) -> None:
    client = _client(routes)

    async def main() -> None:
        assert (await client.achat("hi")).text == "Hello there"
        assert (await client.acomplete("x")).text == " world"
        assert (await client.aembed("a")).dimensions == 2
        assert [m.id for m in await client.amodels()] == ["gpt-test"]
        routes.on("POST", "/v1/chat/completions", sse(*STREAM))
        stream = await client.achat_stream("hi")
        assert "".join([c.delta async for c in stream]) == "Hello" and stream.usage == Usage(5, 2)
        routes.on(
            "POST",
            "/v1/completions",
            sse({"choices": [{"index": 0, "text": "z", "finish_reason": "stop"}]}, "[DONE]"),
        )
        s2 = await client.acomplete_stream("x")
        assert [c.delta async for c in s2] == ["z"]
        await client.aclose()

    asyncio.run(main())


def test_retries_and_with_options(routes: Routes) -> None:
    clock = FakeClock()
    routes.on(
        "POST",
        "/v1/chat/completions",
        [httpx.Response(503, json={"error": {"message": "busy"}}), httpx.Response(200, json=CHAT)],
    )
    client = _client(routes, clock=clock)
    assert client.chat("hi").text == "Hello there"
    assert (
        clock.sleeps == [0.5]
        and routes.hits[0].headers["idempotency-key"] == routes.hits[1].headers["idempotency-key"]
    )
    routes.on(
        "POST", "/v1/chat/completions", httpx.Response(503, json={"error": {"message": "busy"}})
    )
    with pytest.raises(ServerError, match="busy"):
        client.with_options(max_retries=0, timeout=3.0, priority="high").chat("hi")
    assert len(routes.hits) == 3
    assert routes.last.headers["x-retry-count"] == "0"
    # the view shares stats with its parent
    assert client.stats()["openai_api POST /chat/completions"].requests == 2


def test_model_is_required() -> None:
    client = make(OpenAIProvider, Routes(), api_key=KEY)
    with pytest.raises(ValueError, match="no model"):
        client.chat("hi")
