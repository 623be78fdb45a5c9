"""gemini: generateContent / streamGenerateContent?alt=sse / embedContent mapping."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ipfs_accelerate.api.core import FakeClock, ServerError, StreamError, Usage
from ipfs_accelerate.api.providers.gemini import GeminiProvider

from ..core._routes import Routes, make, sse

KEY = "AIza-test-key"
GEN = "/v1beta/models/gemini-test:generateContent"
STREAM = "/v1beta/models/gemini-test:streamGenerateContent"
RESPONSE = {
    "candidates": [
        {
            "content": {"parts": [{"text": "Hello "}, {"text": "world"}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6},
    "modelVersion": "gemini-test-001",
    "responseId": "resp-1",
}


def _chunk(text: str, finish: str | None = None, out: int = 1) -> dict:
    cand = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    return {
        "candidates": [cand],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": out},
        "responseId": "r",
    }


@pytest.fixture
def routes() -> Routes:
    return (
        Routes()
        .on("POST", GEN, httpx.Response(200, json=RESPONSE))
        .on("POST", STREAM, sse(_chunk("Hel"), _chunk("lo", "STOP", out=2)))
        .on(
            "POST",
            "/v1beta/models/embed-test:embedContent",
            httpx.Response(200, json={"embedding": {"values": [0.5, 0.25]}}),
        )
        .on(
            "POST",
            "/v1beta/models/embed-test:batchEmbedContents",
            httpx.Response(200, json={"embeddings": [{"values": [1, 0]}, {"values": [0, 1]}]}),
        )
        .on(
            "POST",
            "/v1beta/models/gemini-test:countTokens",
            httpx.Response(200, json={"totalTokens": 17}),
        )
    )


def _client(routes: Routes, **kw) -> GeminiProvider:
    return make(GeminiProvider, routes, api_key=KEY, model="gemini-test", **kw)


def test_generate_content_mapping(routes: Routes) -> None:
    client = _client(routes)
    r = client.chat(
        [
            {"role": "system", "content": "be kind"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": "again"}]},
        ],
        temperature=0.1,
        max_tokens=20,
        stop="END",
        safetySettings=[],
    )
    hit = routes.last
    assert hit.path == GEN and hit.query == {}
    assert hit.headers["x-goog-api-key"] == KEY and "authorization" not in hit.headers
    assert hit.body == {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "hello"}]},
            {"role": "user", "parts": [{"text": "again"}]},
        ],
        "systemInstruction": {"parts": [{"text": "be kind"}]},
        "generationConfig": {"temperature": 0.1, "maxOutputTokens": 20, "stopSequences": ["END"]},
        "safetySettings": [],
    }
    assert r.text == "Hello world" and r.finish_reason == "STOP" and r.usage == Usage(4, 2)
    assert (r.id, r.model) == ("resp-1", "gemini-test-001")
    client.chat("x", model="models/gemini-test", generation_config={"topK": 3})
    assert routes.last.path == GEN and routes.last.body["generationConfig"] == {"topK": 3}
    s = client.stats()["gemini POST /v1beta/models/{model}:generateContent"]
    assert (s.requests, s.tokens_in, s.tokens_out) == (2, 8, 4)


def test_blocked_prompt(routes: Routes) -> None:
    routes.on("POST", GEN, httpx.Response(200, json={"promptFeedback": {"blockReason": "SAFETY"}}))
    r = _client(routes).chat("bad")
    assert r.text == "" and r.finish_reason == "BLOCKED_SAFETY"


def test_stream(routes: Routes) -> None:
    client = _client(routes)
    stream = client.chat_stream("hi")
    chunks = list(stream)
    assert routes.last.path == STREAM and routes.last.query == {"alt": "sse"}
    assert [c.delta for c in chunks] == ["Hel", "lo"] and chunks[-1].finish_reason == "STOP"
    assert stream.usage == Usage(4, 2) and stream.text == "Hello"  # cumulative: the last one


@pytest.mark.parametrize(
    ("events", "match"),
    [
        ([_chunk("Hel")], "truncated"),
        (
            [_chunk("Hel"), {"error": {"code": 500, "message": "internal", "status": "INTERNAL"}}],
            "internal",
        ),
    ],
)
def test_bad_streams(routes: Routes, events, match: str) -> None:
    routes.on("POST", STREAM, sse(*events))
    with pytest.raises(StreamError, match=match):
        list(_client(routes).chat_stream("hi"))


def test_embed_single_and_batch(routes: Routes) -> None:
    client = _client(routes)
    e = client.embed("a", model="embed-test", task_type="RETRIEVAL_QUERY")
    assert routes.last.body == {
        "content": {"parts": [{"text": "a"}]},
        "taskType": "RETRIEVAL_QUERY",
    }
    assert e.embeddings == [[0.5, 0.25]]
    b = client.embed(["a", "b"], model="embed-test")
    assert routes.last.body == {
        "requests": [
            {"model": "models/embed-test", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/embed-test", "content": {"parts": [{"text": "b"}]}},
        ]
    }
    assert b.embeddings == [[1.0, 0.0], [0.0, 1.0]]


def test_count_tokens_and_paginated_models(routes: Routes) -> None:
    routes.on(
        "GET",
        "/v1beta/models",
        lambda req: httpx.Response(
            200,
            json={"models": [{"name": "models/b"}]}
            if req.url.params.get("pageToken") == "p2"
            else {"models": [{"name": "models/a"}], "nextPageToken": "p2"},
        ),
    )
    client = _client(routes)
    assert client.count_tokens("hello").input_tokens == 17
    assert [m.id for m in client.models()] == ["a", "b"]


def test_google_retry_schedule(routes: Routes) -> None:
    clock = FakeClock()
    routes.on(
        "POST",
        GEN,
        httpx.Response(
            503, json={"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
        ),
    )
    client = _client(routes, clock=clock, breaker=None)
    with pytest.raises(ServerError, match="overloaded"):
        client.chat("hi")
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0] and len(routes.hits) == 5


def test_api_version_and_async(routes: Routes) -> None:
    routes.on("POST", "/v1/models/gemini-test:generateContent", httpx.Response(200, json=RESPONSE))
    client = _client(routes, api_version="v1")

    async def main() -> None:
        assert (await client.achat("hi")).text == "Hello world"
        await client.aclose()

    asyncio.run(main())
    assert routes.last.path == "/v1/models/gemini-test:generateContent"
    client = _client(routes)

    async def rest() -> None:
        stream = await client.achat_stream("hi")
        assert "".join([c.delta async for c in stream]) == "Hello"
        assert (await client.aembed(["a", "b"], model="embed-test")).embeddings[1] == [0.0, 1.0]
        assert (await client.acount_tokens("x")).input_tokens == 17
        await client.aclose()

    asyncio.run(rest())


def test_invalid_key_is_an_authentication_error_and_rotates() -> None:
    """Google's 400 INVALID_ARGUMENT / API_KEY_INVALID (as the fake sends it) is typed as an
    authentication failure: not retried with one key, the next key with several."""
    from ipfs_accelerate.api.core import AuthenticationError, BadRequestError, RequestOptions
    from ipfs_accelerate.api.testing import FakeGeminiServer

    good, bad = "AIza-good-key-0001", "AIza-bad-key-0002"
    with FakeGeminiServer(api_key=good) as srv:
        with GeminiProvider(api_key=bad, base_url=srv.url, model="gemini-fake-flash", env={},
                            clock=FakeClock()) as p:
            with pytest.raises(AuthenticationError) as info:
                p.chat("hi")
        assert info.value.status == 400 and "API key not valid" in str(info.value)
        assert bad not in str(info.value) and len(srv.requests) == 1  # one key: no retry
        srv.reset()
        with GeminiProvider(api_key=[bad, good], base_url=srv.url, model="gemini-fake-flash",
                            env={}, clock=FakeClock()) as p:
            assert p.chat("hi").text
            assert [r.status for r in srv.requests] == [400, 200]  # rotated to the good key
        srv.reset()
        # any other 400 stays a bad request
        with GeminiProvider(api_key=good, base_url=srv.url, model="gemini-fake-flash", env={}) as p:
            with pytest.raises(BadRequestError) as other:
                p.client.request(RequestOptions(
                    "POST", "/v1beta/models/gemini-fake-flash:generateContent",
                    json={"contents": [{"parts": "not a list"}]},
                ))
        assert not isinstance(other.value, AuthenticationError)
