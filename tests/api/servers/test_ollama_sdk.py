"""The official ollama client judges the Ollama fake (NDJSON streaming, error bodies)."""

from __future__ import annotations

import asyncio

import pytest

from ipfs_accelerate.api.testing import FakeOllamaServer, Fault, count_tokens, embedding, reply_text

from .conftest import LazySDK, http

ollama = LazySDK("ollama")
pytestmark = pytest.mark.timeout(30)

MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is IPFS?"}]
PROMPT = "be brief\nWhat is IPFS?"


@pytest.fixture
def srv() -> FakeOllamaServer:
    with FakeOllamaServer() as s:
        yield s


def test_chat_and_generate(srv: FakeOllamaServer) -> None:
    c = ollama.Client(host=srv.url, verify=False)
    r = c.chat(model="llama3.2", messages=MSGS)
    assert r.message.role == "assistant" and r.message.content == reply_text(PROMPT)
    assert r.done and r.done_reason == "stop"
    assert (r.prompt_eval_count, r.eval_count) == (count_tokens(PROMPT), 12)
    assert r.eval_duration == 12_000_000
    g = c.generate(model="llama3.2", prompt="hello", options={"num_predict": 4})
    assert g.response == reply_text("hello", 4) and g.done_reason == "length"
    assert srv.requests[0].json()["stream"] is False


def test_ndjson_streaming(srv: FakeOllamaServer) -> None:
    c = ollama.Client(host=srv.url, verify=False)
    parts = list(c.chat(model="llama3.2", messages=MSGS, stream=True))
    assert "".join(p.message.content for p in parts) == reply_text(PROMPT)
    assert [p.done for p in parts] == [False] * 12 + [True]
    assert parts[-1].eval_count == 12
    assert srv.requests[-1].status == 200
    text = "".join(p.response for p in c.generate(model="llama3.2", prompt="hello", stream=True))
    assert text == reply_text("hello")


def test_stop_and_json_format(srv: FakeOllamaServer) -> None:
    c = ollama.Client(host=srv.url, verify=False)
    stop_word = reply_text("hello").split()[3]
    r = c.generate(model="llama3.2", prompt="hello", options={"stop": [stop_word]})
    assert r.response == reply_text("hello").split(stop_word)[0]
    import json

    j = c.chat(model="llama3.2", messages=MSGS, format="json")
    assert json.loads(j.message.content) == {"reply": reply_text(PROMPT)}


def test_embed_tags_show_ps_version(srv: FakeOllamaServer) -> None:
    c = ollama.Client(host=srv.url, verify=False)
    e = c.embed(model="nomic-embed-text", input=["alpha", "beta"])
    assert [list(v) for v in e.embeddings] == [embedding("alpha"), embedding("beta")]
    assert e.prompt_eval_count == 2
    legacy = c.embeddings(model="nomic-embed-text", prompt="alpha")
    assert list(legacy.embedding) == embedding("alpha", normalize=False)
    assert [m.model for m in c.list().models] == ["llama3.2:latest", "nomic-embed-text:latest"]
    assert c.show("llama3.2").details.family == "llama"  # type: ignore[union-attr]
    assert c.ps().models == []

    assert http().get(srv.url + "/", timeout=5).text == "Ollama is running"
    assert http().get(srv.url + "/api/version", timeout=5).json()["version"]


def test_async_client(srv: FakeOllamaServer) -> None:
    async def go() -> tuple[str, str]:
        c = ollama.AsyncClient(host=srv.url, verify=False)
        r = await c.chat(model="llama3.2", messages=MSGS)
        text = "".join(
            [
                p.message.content
                async for p in await c.chat(model="llama3.2", messages=MSGS, stream=True)
            ]
        )
        return r.message.content or "", text

    a, b = asyncio.run(go())
    assert a == b == reply_text(PROMPT)


def test_errors_and_no_retry(srv: FakeOllamaServer) -> None:
    c = ollama.Client(host=srv.url, verify=False)
    srv.inject(Fault.http(404, message='model "nope" not found, try pulling it first'))
    with pytest.raises(ollama.ResponseError) as exc:
        c.chat(model="nope", messages=MSGS)
    assert exc.value.status_code == 404 and "try pulling it first" in exc.value.error
    srv.inject(Fault.http(503))
    with pytest.raises(ollama.ResponseError) as exc:
        c.chat(model="llama3.2", messages=MSGS)
    assert exc.value.status_code == 503
    assert len(srv.requests) == 2  # the official client never retries


def test_stream_faults(srv: FakeOllamaServer) -> None:
    c = ollama.Client(host=srv.url, verify=False)
    srv.inject(Fault.stream_error(500, after=3, message="runner crashed"))
    with pytest.raises(ollama.ResponseError, match="runner crashed"):
        list(c.chat(model="llama3.2", messages=MSGS, stream=True))
    srv.inject(Fault.truncate(after=3))  # no done:true line; the client does not notice
    assert len(list(c.chat(model="llama3.2", messages=MSGS, stream=True))) == 3
    srv.inject(Fault.malformed_sse(after=2))
    with pytest.raises(ValueError):
        list(c.chat(model="llama3.2", messages=MSGS, stream=True))
    srv.inject(Fault.cut(after=2))
    with pytest.raises(Exception) as exc:  # httpx transport error, unwrapped by the client
        list(c.chat(model="llama3.2", messages=MSGS, stream=True))
    assert "incomplete" in str(exc.value) or "closed" in str(exc.value)
