"""The official google-genai SDK judges the Gemini fake."""

from __future__ import annotations

import asyncio

import pytest

from ipfs_accelerate.api.testing import FakeGeminiServer, Fault, count_tokens, embedding, reply_text

from .conftest import LazySDK, http

genai = LazySDK("google.genai")
types = LazySDK("google.genai.types")
errors = LazySDK("google.genai.errors")
pytestmark = pytest.mark.timeout(30)

KEY = "gk-fake-DO-NOT-LEAK"
MODEL = "gemini-fake-flash"


@pytest.fixture
def srv() -> FakeGeminiServer:
    with FakeGeminiServer(api_key=KEY) as s:
        yield s


def _client(srv: FakeGeminiServer, version: str = "v1beta", **opts: object) -> object:
    return genai.Client(
        api_key=KEY, http_options=types.HttpOptions(base_url=srv.url, api_version=version, **opts)
    )


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_generate_content(srv: FakeGeminiServer, version: str) -> None:
    c = _client(srv, version)
    cfg = types.GenerateContentConfig(system_instruction="be brief", max_output_tokens=50)
    r = c.models.generate_content(model=MODEL, contents="What is IPFS?", config=cfg)
    prompt = "be brief\nWhat is IPFS?"
    assert r.text == reply_text(prompt)
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    u = r.usage_metadata
    assert (u.prompt_token_count, u.candidates_token_count, u.total_token_count) == (
        count_tokens(prompt),
        12,
        count_tokens(prompt) + 12,
    )
    rec = srv.requests[-1]
    assert rec.path == f"/{version}/models/{MODEL}:generateContent" and rec.auth == KEY


def test_max_tokens_and_json_mode(srv: FakeGeminiServer) -> None:
    c = _client(srv)
    r = c.models.generate_content(
        model=MODEL, contents="hi", config=types.GenerateContentConfig(max_output_tokens=3)
    )
    assert (
        r.text == reply_text("hi", 3)
        and r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    )
    j = c.models.generate_content(
        model=MODEL,
        contents="hi",
        config=types.GenerateContentConfig(response_mime_type="application/json"),
    )
    assert j.parsed is None or j.text
    import json

    assert json.loads(j.text) == {"reply": reply_text("hi")}


def test_stream_generate_content_sse(srv: FakeGeminiServer) -> None:
    c = _client(srv)  # keep a reference: google-genai closes a client that is garbage-collected
    chunks = list(c.models.generate_content_stream(model=MODEL, contents="hi"))
    assert "".join(ch.text for ch in chunks) == reply_text("hi")
    assert chunks[-1].usage_metadata.candidates_token_count == 12
    assert srv.requests[-1].query == {"alt": ["sse"]}


def test_stream_without_alt_sse_is_a_json_array(srv: FakeGeminiServer) -> None:
    import json

    r = http().post(
        srv.url + f"/v1beta/models/{MODEL}:streamGenerateContent",
        json={"contents": [{"parts": [{"text": "hi"}]}]},
        headers={"x-goog-api-key": KEY},
        timeout=5,
    )
    arr = json.loads(r.text)
    assert "".join(x["candidates"][0]["content"]["parts"][0]["text"] for x in arr) == reply_text(
        "hi"
    )


def test_embeddings_count_tokens_models(srv: FakeGeminiServer) -> None:
    c = _client(srv)
    e = c.models.embed_content(
        model="gemini-fake-embedding",
        contents="hello",
        config=types.EmbedContentConfig(output_dimensionality=8),
    )
    assert e.embeddings[0].values == embedding("hello", 8)
    assert srv.requests[-1].path.endswith(":batchEmbedContents")  # the SDK always batches
    many = c.models.embed_content(
        model="gemini-fake-embedding",
        contents=[
            types.Content(parts=[types.Part(text="a")]),
            types.Content(parts=[types.Part(text="b")]),
        ],
    )
    assert [x.values for x in many.embeddings] == [embedding("a"), embedding("b")]
    assert c.models.count_tokens(model=MODEL, contents="hello world").total_tokens == 2
    assert [m.name for m in c.models.list()] == [
        "models/gemini-fake-flash",
        "models/gemini-fake-embedding",
    ]
    assert c.models.get(model=MODEL).name == f"models/{MODEL}"

    single = http().post(
        srv.url + "/v1beta/models/m:embedContent",
        params={"key": KEY},
        json={"content": {"parts": [{"text": "hello"}]}},
        timeout=5,
    )
    assert single.json() == {"embedding": {"values": embedding("hello")}}


def test_async_client(srv: FakeGeminiServer) -> None:
    c = _client(srv)

    async def go() -> tuple[str, str]:
        r = await c.aio.models.generate_content(model=MODEL, contents="hi")
        text = "".join(
            [
                ch.text
                async for ch in await c.aio.models.generate_content_stream(
                    model=MODEL, contents="hi"
                )
            ]
        )
        return r.text, text

    a, b = asyncio.run(go())
    assert a == b == reply_text("hi")


def test_key_errors_are_googles(srv: FakeGeminiServer) -> None:
    bad = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=srv.url))
    with pytest.raises(errors.ClientError) as exc:
        bad.models.generate_content(model=MODEL, contents="hi")
    assert exc.value.code == 400 and exc.value.status == "INVALID_ARGUMENT"
    info, localized = exc.value.details["error"]["details"]
    assert info["reason"] == "API_KEY_INVALID"
    assert info["metadata"] == {"service": "generativelanguage.googleapis.com"}
    assert localized["@type"] == "type.googleapis.com/google.rpc.LocalizedMessage"
    assert exc.value.message == localized["message"] == "API key not valid. Please pass a valid API key."
    assert KEY not in str(exc.value)


@pytest.mark.parametrize(
    ("status", "name", "cls"),
    [
        (429, "RESOURCE_EXHAUSTED", "ClientError"),
        (404, "NOT_FOUND", "ClientError"),
        (503, "UNAVAILABLE", "ServerError"),
    ],
)
def test_error_bodies(srv: FakeGeminiServer, status: int, name: str, cls: str) -> None:
    srv.inject(Fault.http(status))
    c = _client(srv)
    with pytest.raises(getattr(errors, cls)) as exc:
        c.models.generate_content(model=MODEL, contents="hi")
    assert (exc.value.code, exc.value.status) == (status, name)


def test_sdk_retry_options_against_faults(srv: FakeGeminiServer) -> None:
    srv.inject(Fault.http(503), times=2)
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.05)
    c = _client(srv, retry_options=retry)
    r = c.models.generate_content(model=MODEL, contents="hi")
    assert r.text == reply_text("hi") and [q.status for q in srv.requests] == [503, 503, 200]


def test_stream_error_event(srv: FakeGeminiServer) -> None:
    srv.inject(Fault.stream_error(503, after=2))
    c = _client(srv)
    with pytest.raises(errors.ServerError):
        list(c.models.generate_content_stream(model=MODEL, contents="hi"))
