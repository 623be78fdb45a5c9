"""huggingface_hub's InferenceClient judges the TGI and TEI fakes.

``InferenceClient(model=URL)`` POSTs text generation and feature extraction to ``/`` (not
``/generate`` or ``/embed``); chat goes to ``base_url + /v1/chat/completions``.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ipfs_accelerate.api.testing import (
    FakeTEIServer,
    FakeTGIServer,
    Fault,
    embedding,
    messages_text,
    reply_text,
    rerank_score,
)

from .conftest import LazySDK, http, sdk_http

hub = LazySDK("huggingface_hub")
pytestmark = pytest.mark.timeout(30)
MSGS = [{"role": "user", "content": "What is IPFS?"}]


@pytest.fixture
def tgi() -> FakeTGIServer:
    with FakeTGIServer() as s:
        yield s


@pytest.fixture
def tei() -> FakeTEIServer:
    with FakeTEIServer() as s:
        yield s


# -- TGI -------------------------------------------------------------------------------------------
def test_text_generation_plain_and_details(tgi: FakeTGIServer) -> None:
    c = hub.InferenceClient(model=tgi.url)
    assert c.text_generation("hello", max_new_tokens=5) == reply_text("hello", 5)
    out = c.text_generation("hello", max_new_tokens=5, details=True)
    assert out.generated_text == reply_text("hello", 5)
    assert out.details.finish_reason == "length" and out.details.generated_tokens == 5
    assert "".join(t.text for t in out.details.tokens) == out.generated_text
    full = c.text_generation("hello", return_full_text=True)
    assert (
        full == "hello" + reply_text("hello")
        and c.text_generation("hello", details=True).details.finish_reason == "eos_token"
    )
    assert {(r.method, r.path) for r in tgi.requests} == {("POST", "/")}


def test_text_generation_stream(tgi: FakeTGIServer) -> None:
    c = hub.InferenceClient(model=tgi.url)
    assert "".join(c.text_generation("hello", max_new_tokens=6, stream=True)) == reply_text(
        "hello", 6
    )
    events = list(c.text_generation("hello", stream=True, details=True))
    assert (
        events[-1].generated_text == reply_text("hello")
        and events[-1].details.finish_reason == "eos_token"
    )
    assert all(e.generated_text is None for e in events[:-1])


def test_stop_sequence_kept_in_text(tgi: FakeTGIServer) -> None:
    c = hub.InferenceClient(model=tgi.url)
    word = reply_text("hello").split()[2]
    out = c.text_generation("hello", stop=[word], details=True)
    assert out.details.finish_reason == "stop_sequence" and out.generated_text.endswith(word)


def test_native_routes_and_info(tgi: FakeTGIServer) -> None:

    g = http().post(
        tgi.url + "/generate",
        json={"inputs": "hello", "parameters": {"max_new_tokens": 3}},
        timeout=5,
    )
    assert (
        g.json() == {"generated_text": reply_text("hello", 3)}
        and g.headers["x-generated-tokens"] == "3"
    )
    with http().stream(
        "POST", tgi.url + "/generate_stream", json={"inputs": "hello"}, timeout=5
    ) as r:
        lines = [x for x in r.iter_lines() if x]
    assert len(lines) == 12 and "[DONE]" not in lines[-1]
    bad = http().post(tgi.url + "/generate", json={"inputs": ""}, timeout=5)
    assert bad.status_code == 422 and bad.json()["error_type"] == "validation"
    assert http().get(tgi.url + "/info", timeout=5).json()["model_id"] == tgi.model_id
    assert http().get(tgi.url + "/health", timeout=5).status_code == 200


def test_chat_completion_via_base_url(tgi: FakeTGIServer) -> None:
    c = hub.InferenceClient(base_url=tgi.url + "/v1")
    r = c.chat_completion(messages=MSGS, max_tokens=5)
    assert r.choices[0].message.content == reply_text(messages_text(MSGS), 5)
    text = "".join(
        ch.choices[0].delta.content or "" for ch in c.chat_completion(messages=MSGS, stream=True)
    )
    assert text == reply_text(messages_text(MSGS))
    assert tgi.requests[-1].path == "/v1/chat/completions"


def test_tgi_errors_map_to_hub_errors(tgi: FakeTGIServer) -> None:
    c = hub.InferenceClient(model=tgi.url)
    tgi.inject(Fault.http(429))
    with pytest.raises(hub.errors.OverloadedError):
        c.text_generation("hello")
    tgi.inject(Fault.http(422, message="Input validation error: `inputs` too long"))
    with pytest.raises(hub.errors.ValidationError):
        c.text_generation("hello")
    tgi.inject(Fault.stream_error(500, after=2, message="CUDA out of memory"))
    with pytest.raises(hub.errors.TextGenerationError, match="CUDA out of memory"):
        list(c.text_generation("hello", stream=True))


def test_async_text_generation(tgi: FakeTGIServer) -> None:
    async def go() -> tuple[str, str]:
        c = hub.AsyncInferenceClient(model=tgi.url)
        a = await c.text_generation("hello", max_new_tokens=4)
        b = "".join(
            [t async for t in await c.text_generation("hello", max_new_tokens=4, stream=True)]
        )
        await c.close()
        return a, b

    a, b = asyncio.run(go())
    assert a == b == reply_text("hello", 4)


# -- TEI -------------------------------------------------------------------------------------------
def test_feature_extraction_posts_to_root(tei: FakeTEIServer) -> None:
    c = hub.InferenceClient(model=tei.url)
    one = c.feature_extraction("hello")
    assert one.dtype == np.float32 and one.shape == (1, 16)
    assert one[0].tolist() == embedding("hello")
    many = c.feature_extraction(["a", "b"], normalize=False)
    assert many[1].tolist() == embedding("b", normalize=False)
    assert [r.path for r in tei.requests] == ["/", "/"]


def test_embed_rerank_info(tei: FakeTEIServer) -> None:

    r = http().post(tei.url + "/embed", json={"inputs": ["x", "y"]}, timeout=5).json()
    assert r == [embedding("x"), embedding("y")]
    assert abs(float(np.linalg.norm(r[0])) - 1) < 1e-6
    ranked = (
        http()
        .post(
            tei.url + "/rerank",
            json={"query": "ipfs data", "texts": ["cats", "ipfs stores data"], "return_text": True},
            timeout=5,
        )
        .json()
    )
    assert [x["index"] for x in ranked] == [1, 0] and ranked[0]["text"] == "ipfs stores data"
    assert ranked[0]["score"] == rerank_score("ipfs data", "ipfs stores data")
    too_many = http().post(tei.url + "/embed", json={"inputs": ["x"] * 33}, timeout=5)
    assert too_many.status_code == 413 and too_many.json()["error_type"] == "Validation"
    assert http().get(tei.url + "/info", timeout=5).json()["max_client_batch_size"] == 32


def test_tei_openai_route_with_openai_sdk(tei: FakeTEIServer) -> None:
    openai = pytest.importorskip("openai")
    c = openai.OpenAI(base_url=tei.url + "/v1", api_key="unused", http_client=sdk_http(openai))
    assert c.embeddings.create(model=tei.model_id, input="hello").data[0].embedding == embedding(
        "hello"
    )


def test_async_feature_extraction(tei: FakeTEIServer) -> None:
    async def go() -> np.ndarray:
        c = hub.AsyncInferenceClient(model=tei.url)
        try:
            return await c.feature_extraction("hello")
        finally:
            await c.close()

    assert asyncio.run(go())[0].tolist() == embedding("hello")
