"""openai_api, vllm and llvm against the real llama-cpp-python server on a random tiny GGUF.

The model's text is garbage by design, so these tests assert structure, determinism at
temperature 0, and what ``logit_bias`` forces — numbers a broken mapping would get wrong.
"""

from __future__ import annotations

import asyncio
import math

import pytest

from ipfs_accelerate.api.providers import get_provider_class
from ipfs_accelerate.api.testing.peers import LlamaCppServer, TinyGGUF

from ._shared import PeerAddress

pytestmark = [pytest.mark.peer, pytest.mark.timeout(120)]

OPENAI_FAMILY = ("openai_api", "vllm", "llvm")


def _provider(name: str, server: PeerAddress):
    # A dummy key: llama-cpp-python ignores auth, and openai_api insists on having one.
    return get_provider_class(name)(
        api_key="sk-peer-dummy", base_url=server.base_url, model=server.alias, env={}
    )


def _force(gguf: TinyGGUF, piece: str = "▁hello") -> dict[str, float]:
    return {str(gguf.token_id(piece)): 100.0}


@pytest.mark.parametrize("name", OPENAI_FAMILY)
def test_models_lists_the_alias(name: str, llama_server: PeerAddress) -> None:
    with _provider(name, llama_server) as p:
        assert [m.id for m in p.models()] == ["tiny"]


@pytest.mark.parametrize("name", OPENAI_FAMILY)
def test_chat_structure_usage_and_determinism(name: str, llama_server: PeerAddress) -> None:
    with _provider(name, llama_server) as p:
        a = p.chat("hello there", max_tokens=6, temperature=0)
        b = p.chat("hello there", max_tokens=6, temperature=0)
    assert len(a.choices) == 1 and a.choices[0].message.role == "assistant"
    assert a.finish_reason in ("length", "stop")
    assert a.usage is not None and a.usage.input_tokens > 0 and 0 < a.usage.output_tokens <= 6
    assert a.model == "tiny" and a.id and a.id.startswith("chatcmpl")
    assert a.text == b.text  # temperature 0 is deterministic on this server


@pytest.mark.parametrize("name", OPENAI_FAMILY)
def test_logit_bias_forces_known_tokens(
    name: str, llama_server: PeerAddress, tiny_gguf: TinyGGUF
) -> None:
    with _provider(name, llama_server) as p:
        c = p.complete("x", max_tokens=4, temperature=0, logit_bias=_force(tiny_gguf))
    assert c.text.split() == ["hello"] * 4
    assert c.usage is not None and c.usage.output_tokens == 4
    assert c.choices[0].finish_reason == "length"


@pytest.mark.parametrize("name", OPENAI_FAMILY)
def test_streaming_matches_non_streaming(
    name: str, llama_server: PeerAddress, tiny_gguf: TinyGGUF
) -> None:
    bias = _force(tiny_gguf, "▁cat")
    with _provider(name, llama_server) as p:
        full = p.chat("hi", max_tokens=3, temperature=0, logit_bias=bias)
        with p.chat_stream("hi", max_tokens=3, temperature=0, logit_bias=bias) as stream:
            chunks = list(stream)
    assert stream.done
    assert stream.text == full.text and full.text.split() == ["cat"] * 3
    assert sum(1 for c in chunks if c.delta) == 3
    assert chunks[-1].finish_reason == "length" or any(c.finish_reason for c in chunks)
    # llama-cpp-python ignores stream_options.include_usage: no usage is invented.
    assert stream.usage is None or stream.usage.output_tokens == 3


@pytest.mark.parametrize("name", OPENAI_FAMILY)
def test_async_chat_and_stream(name: str, llama_server: PeerAddress, tiny_gguf: TinyGGUF) -> None:
    bias = _force(tiny_gguf, "▁dog")

    async def run() -> tuple[str, str]:
        async with _provider(name, llama_server) as p:
            full = await p.achat("hi", max_tokens=2, temperature=0, logit_bias=bias)
            stream = await p.acomplete_stream("hi", max_tokens=2, temperature=0, logit_bias=bias)
            async with stream:
                async for _ in stream:
                    pass
            return full.text, stream.text

    full, streamed = asyncio.run(run())
    assert full.split() == ["dog", "dog"]
    assert streamed.split() == ["dog", "dog"]


@pytest.mark.parametrize("name", OPENAI_FAMILY)
def test_embeddings(name: str, llama_embed_server: PeerAddress, tiny_embed_gguf: TinyGGUF) -> None:
    with _provider(name, llama_embed_server) as p:
        e = p.embed(["hello world", "the cat", "hello world"])
    assert len(e.embeddings) == 3
    assert {len(v) for v in e.embeddings} == {tiny_embed_gguf.n_embd}
    assert all(math.isfinite(x) for v in e.embeddings for x in v)
    assert e.embeddings[0] == pytest.approx(e.embeddings[2], abs=1e-6)
    assert e.embeddings[0] != pytest.approx(e.embeddings[1], abs=1e-3)


def test_errors_are_typed_and_retried_only_when_retryable(llama_server: PeerAddress) -> None:
    from ipfs_accelerate.api.core import NotFoundError, ServerError

    with _provider("openai_api", llama_server) as p:
        with pytest.raises(NotFoundError) as nf:
            p.request("GET", "/no-such-route")
        assert nf.value.status == 404
        assert sum(s.retries for s in p.stats().values()) == 0
        # llama-cpp-python answers a validation error with 500 (a peer quirk), so it is retried.
        with pytest.raises(ServerError) as se:
            p.with_options(max_retries=1).chat("hi", max_tokens="many")
        assert se.value.status == 500 and "int_parsing" in str(se.value)
        snap = p.stats()["openai_api POST /chat/completions"]
    assert snap.retries == 1 and snap.failures == 1


def test_llvm_extras_on_llama_cpp_python(llama_server: PeerAddress, tiny_gguf: TinyGGUF) -> None:
    with _provider("llvm", llama_server) as p:
        assert p.health() is True  # no /health here: falls back to /v1/models
        ids = p.tokenize("hello world")
        assert tiny_gguf.token_id("▁hello") in ids and tiny_gguf.token_id("▁world") in ids
        assert p.detokenize(ids).strip() == "hello world"


def test_server_stops_and_port_is_released(tiny_gguf: TinyGGUF) -> None:
    import os
    import socket

    from ipfs_accelerate.api.testing.peers import llama_cpp_skip_reason

    if (reason := llama_cpp_skip_reason()) is not None:
        pytest.skip(reason)
    with LlamaCppServer(tiny_gguf.path) as srv:
        pid, port = srv.pid, srv.port
        assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again
