"""llvm: llama.cpp-family servers — OpenAI protocol plus health/tokenize on both flavours."""

from __future__ import annotations

import asyncio

import httpx

from ipfs_accelerate.api.providers.llvm import LLVMProvider

from ..core._routes import Routes, make, sse


def _llama_server() -> Routes:
    """The C++ llama-server's extras."""
    return (
        Routes()
        .on("GET", "/health", httpx.Response(200, json={"status": "ok"}))
        .on("POST", "/tokenize", httpx.Response(200, json={"tokens": [5, 6]}))
        .on("POST", "/detokenize", httpx.Response(200, json={"content": "hi"}))
    )


def _llama_cpp_python() -> Routes:
    """llama-cpp-python's server: no /health, extras under /extras."""
    return (
        Routes()
        .on(
            "GET",
            "/v1/models",
            httpx.Response(
                200, json={"object": "list", "data": [{"id": "tiny", "owned_by": "me"}]}
            ),
        )
        .on("POST", "/extras/tokenize", httpx.Response(200, json={"tokens": [7, 8, 9]}))
        .on("POST", "/extras/detokenize", httpx.Response(200, json={"text": "yo"}))
    )


def test_llama_server_extras() -> None:
    routes = _llama_server()
    client = make(LLVMProvider, routes, base_url="http://api.test/v1")
    assert client.health() is True
    assert client.tokenize("hi") == [5, 6] and routes.last.body == {"content": "hi"}
    assert client.detokenize([5, 6]) == "hi" and routes.last.body == {"tokens": [5, 6]}


def test_llama_cpp_python_fallbacks() -> None:
    routes = _llama_cpp_python()
    client = make(LLVMProvider, routes, base_url="http://api.test/v1", model="tiny")
    assert client.health() is True
    assert [h.path for h in routes.hits] == ["/health", "/v1/models"]
    assert client.tokenize("hey") == [7, 8, 9]
    assert routes.last.path == "/extras/tokenize" and routes.last.body == {
        "input": "hey",
        "model": "tiny",
    }
    assert client.detokenize([7]) == "yo"


def test_health_while_loading_is_false_without_retries() -> None:
    routes = Routes().on(
        "GET",
        "/health",
        httpx.Response(503, json={"error": {"message": "Loading model", "code": 503}}),
    )
    client = make(LLVMProvider, routes, base_url="http://api.test/v1")
    assert client.health() is False and len(routes.hits) == 1


def test_chat_stream_and_async_extras() -> None:
    routes = _llama_server().on(
        "POST",
        "/v1/chat/completions",
        sse(
            {"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"}]},
            "[DONE]",
        ),
    )
    client = make(LLVMProvider, routes, base_url="http://api.test/v1", model="tiny")
    stream = client.chat_stream("x")
    assert [c.delta for c in stream] == [
        "a"
    ] and stream.usage is None  # llama-cpp-python sends none

    async def main() -> None:
        assert await client.ahealth() is True
        assert await client.atokenize("hi") == [5, 6]
        assert await client.adetokenize([5]) == "hi"
        await client.aclose()

    asyncio.run(main())
    other = make(LLVMProvider, _llama_cpp_python(), base_url="http://api.test/v1")

    async def fallback() -> None:
        assert await other.ahealth() is True
        assert await other.atokenize("hi") == [7, 8, 9]
        assert await other.adetokenize([1]) == "yo"
        await other.aclose()

    asyncio.run(fallback())
