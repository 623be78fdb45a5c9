"""opea: the ChatQnA byte-repr stream, per-service URLs, FastAPI error bodies."""

from __future__ import annotations

import pytest

from ipfs_accelerate.api.core import BadRequestError, ServerSentEvent, StreamError
from ipfs_accelerate.api.providers.opea import OPEAChunkDecoder, OPEAProvider
from ipfs_accelerate.api.testing import FakeOPEAServer, reply_text

pytestmark = pytest.mark.timeout(30)


def _ev(data: str) -> ServerSentEvent:
    return ServerSentEvent(data=data)


def test_decoder_joins_utf8_split_across_chunks() -> None:
    d = OPEAChunkDecoder()
    raw = "h\u00e9llo".encode()  # é is two bytes; split them across events
    out = [c.delta for part in (raw[:2], raw[2:]) for c in d.decode(_ev(repr(part)))]
    d.decode(_ev("[DONE]"))
    assert "".join(out) == "h\u00e9llo" and d.done


def test_decoder_accepts_str_repr_openai_json_and_metadata_after_done() -> None:
    d = OPEAChunkDecoder()
    assert [c.delta for c in d.decode(_ev("'plain'"))] == ["plain"]
    chunk = '{"id":"x","choices":[{"index":0,"delta":{"content":"json"},"finish_reason":null}]}'
    assert [c.delta for c in d.decode(_ev(chunk))] == ["json"]
    d.decode(_ev("[DONE]"))
    assert d.decode(_ev("[METADATA DONE]")) == []
    with pytest.raises(StreamError):
        d.decode(_ev("b'late'"))
    with pytest.raises(StreamError, match=r"\[ERROR\]"):
        OPEAChunkDecoder().decode(_ev("[ERROR]"))


def test_chatqna_sends_stream_false_and_streams_bytes_repr() -> None:
    with FakeOPEAServer() as srv, OPEAProvider(base_url=srv.url, env={}) as p:
        r = p.chatqna("What is IPFS?", max_tokens=3)
        assert srv.requests_to("/v1/chatqna")[-1].json()["stream"] is False
        with p.chatqna_stream([{"role": "user", "content": "What is IPFS?"}]) as s:
            list(s)
    assert r.text == reply_text("What is IPFS?", 3)
    assert s.done and s.text == reply_text("What is IPFS?") and s.usage is None


def test_service_urls_route_each_microservice() -> None:
    with FakeOPEAServer() as gateway, FakeOPEAServer() as embedder:
        with OPEAProvider(base_url=gateway.url, env={}, service_urls={"embed": embedder.url}) as p:
            p.embed("x")
            p.health()
        assert [r.path for r in embedder.requests] == ["/v1/embeddings"]
        assert [r.path for r in gateway.requests] == ["/v1/health_check"]


def test_fastapi_validation_errors_are_readable() -> None:
    with FakeOPEAServer() as srv, OPEAProvider(base_url=srv.url, env={}) as p:
        with pytest.raises(BadRequestError) as info:
            p.request("POST", "/v1/reranking", json={"retrieved_docs": []})
    assert info.value.status == 422 and "body.input: Field required" in str(info.value)
