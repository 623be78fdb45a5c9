"""hf_tgi: /generate parameters, /generate_stream SSE without [DONE], chat via the Messages API."""

from __future__ import annotations

import httpx
import pytest

from ipfs_accelerate.api.core import ServerSentEvent, StreamError
from ipfs_accelerate.api.providers.hf_tgi import HFTGIProvider, TGIChunkDecoder, parse_generate
from ipfs_accelerate.api.testing import FakeTGIServer, reply_text

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def srv():
    with FakeTGIServer() as s:
        yield s


def test_generate_maps_parameters_and_reads_details(srv) -> None:
    with HFTGIProvider(base_url=srv.url, env={}) as p:
        r = p.generate("tell me", max_tokens=4, temperature=0.5, seed=1)
    sent = srv.requests_to("/generate")[-1].json()
    assert sent["inputs"] == "tell me"
    assert sent["parameters"] == {"max_new_tokens": 4, "temperature": 0.5, "seed": 1, "details": True}
    assert r.text == reply_text("tell me", 4) and r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.output_tokens == 4


def test_stream_ends_on_generated_text_not_done(srv) -> None:
    with HFTGIProvider(base_url=srv.url, env={}) as p, p.generate_stream("tell me") as s:
        list(s)
    assert s.done and s.decoder.generated_text == reply_text("tell me") == s.text


def test_parse_generate_accepts_list_form_and_rejects_garbage() -> None:
    assert parse_generate([{"generated_text": "x"}]).text == "x"
    with pytest.raises(ValueError):
        parse_generate({"nope": 1})


def test_decoder_errors_and_special_tokens() -> None:
    d = TGIChunkDecoder()
    (chunk,) = d.decode(ServerSentEvent(data='{"token": {"id": 2, "text": "</s>", "special": true}, "generated_text": null}'))
    assert chunk.delta == ""  # special tokens are not text
    with pytest.raises(StreamError, match="overloaded"):
        d.decode(ServerSentEvent(data='{"error": "overloaded", "error_type": "overloaded"}'))


def test_chat_uses_messages_api_and_health(srv) -> None:
    with HFTGIProvider(base_url=srv.url, env={}) as p:
        assert p.health() is True
        r = p.chat([{"role": "user", "content": "hey"}], max_tokens=3)
    sent = srv.requests_to("/v1/chat/completions")[-1].json()
    assert sent["model"] == "tgi" and sent["max_tokens"] == 3
    assert r.text == reply_text("hey", 3)


def test_tokenize_against_the_fake_tgi_wire_format() -> None:
    """TGI's POST /tokenize answers [{id, text, start, stop}] with offsets into ``inputs``."""
    text = "bravo, alpha zebra!"
    with FakeTGIServer() as srv:
        rows = httpx.post(f"{srv.url}/tokenize", json={"inputs": text}, timeout=5).json()
        assert [r["text"] for r in rows] == ["bravo", ",", "alpha", "zebra", "!"]
        assert all(text[r["start"]:r["stop"]] == r["text"] for r in rows)
        assert httpx.post(f"{srv.url}/tokenize", json={}, timeout=5).status_code == 422
        with HFTGIProvider(base_url=srv.url, env={}) as p:
            assert p.tokenize(text) == [r["id"] for r in rows] == [11, 3, 10, 3, 3]
