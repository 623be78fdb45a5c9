"""ollama: what goes on the wire (stream:false, options) and NDJSON stream semantics."""

from __future__ import annotations

import asyncio
import json

import pytest

from ipfs_accelerate.api.core import FakeClock, StreamError
from ipfs_accelerate.api.providers.ollama import OllamaChunkDecoder, OllamaProvider
from ipfs_accelerate.api.testing import FakeOllamaServer, reply_text

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def srv():
    with FakeOllamaServer() as s:
        yield s


def _p(srv, **kw) -> OllamaProvider:
    return OllamaProvider(base_url=srv.url, model="llama3.2", env={}, **kw)


def test_non_streaming_calls_say_so_and_options_are_nested(srv) -> None:
    with _p(srv) as p:
        r = p.chat("hi", temperature=0, max_tokens=5, seed=7, format="json", keep_alive="1m")
    body = srv.requests[-1].json()
    assert body["stream"] is False  # Ollama streams unless told not to
    assert body["options"] == {"temperature": 0, "num_predict": 5, "seed": 7}
    assert body["format"] == "json" and body["keep_alive"] == "1m"
    assert json.loads(r.text) == {"reply": reply_text("hi", 5)}  # format=json is honoured
    assert r.finish_reason == "length"


def test_stream_usage_comes_from_the_done_line(srv) -> None:
    with _p(srv) as p, p.generate_stream("hello there") as s:
        chunks = list(s)
    assert s.done and chunks[-1].finish_reason == "stop"
    assert s.text == reply_text("hello there")
    assert s.usage is not None and s.usage.output_tokens == len(s.text.split())
    assert srv.requests[-1].json()["stream"] is True


def test_official_client_does_not_retry_but_we_do(srv) -> None:
    srv.inject("503", path="/api/tags", times=2)
    clock = FakeClock()
    with _p(srv, clock=clock) as p:
        assert [m.id for m in p.tags()]
    assert len(clock.sleeps) == 2 and len(srv.requests_to("/api/tags")) == 3


def test_decoder_rejects_error_lines_and_lines_after_done() -> None:
    d = OllamaChunkDecoder()
    with pytest.raises(StreamError, match="model not found"):
        d.decode({"error": "model not found"})
    d = OllamaChunkDecoder()
    d.decode({"message": {"role": "assistant", "content": "x"}, "done": True, "eval_count": 1})
    with pytest.raises(StreamError, match="after the final"):
        d.decode({"message": {"content": "y"}, "done": False})
    with pytest.raises(StreamError, match="not an object"):
        OllamaChunkDecoder().decode(["list"])


def test_async_embed_and_version(srv) -> None:
    async def main():
        async with _p(srv) as p:
            return await p.aembed(["a", "b", "c"]), await p.aversion()

    e, v = asyncio.run(main())
    assert len(e.embeddings) == 3 and v
    assert srv.requests_to("/api/embed")[-1].json()["input"] == ["a", "b", "c"]
