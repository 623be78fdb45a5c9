"""vllm: OpenAI protocol without a key, plus /health, /tokenize, /detokenize, /version."""

from __future__ import annotations

import asyncio

import httpx

from ipfs_accelerate.api.providers.vllm import VLLMProvider, server_root

from ..core._routes import Routes, make

CHAT = {
    "id": "c",
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 2, "completion_tokens": 1},
}


def _routes() -> Routes:
    return (
        Routes()
        .on("POST", "/v1/chat/completions", httpx.Response(200, json=CHAT))
        .on("GET", "/health", httpx.Response(200))
        .on("GET", "/version", httpx.Response(200, json={"version": "0.9.0"}))
        .on(
            "POST",
            "/tokenize",
            httpx.Response(200, json={"tokens": [1, 2, 3], "count": 3, "max_model_len": 512}),
        )
        .on("POST", "/detokenize", httpx.Response(200, json={"prompt": "abc"}))
    )


def test_no_key_needed_and_extras() -> None:
    routes = _routes()
    client = make(VLLMProvider, routes, base_url="http://api.test/v1", model="m")
    assert client.chat("hi").text == "ok"
    assert "authorization" not in routes.last.headers
    assert client.health() is True and routes.last.path == "/health"
    assert client.tokenize("abc") == [1, 2, 3] and routes.last.body == {
        "model": "m",
        "prompt": "abc",
    }
    assert client.detokenize([1, 2, 3]) == "abc" and routes.last.body == {
        "model": "m",
        "tokens": [1, 2, 3],
    }
    assert client.version() == "0.9.0"
    assert set(client.stats()) >= {"vllm GET /health", "vllm POST /tokenize"}


def test_health_false_without_retrying() -> None:
    routes = Routes().on("GET", "/health", httpx.Response(503))
    client = make(VLLMProvider, routes, base_url="http://api.test/v1")
    assert client.health() is False and len(routes.hits) == 1
    routes.on("GET", "/health", httpx.ConnectError("refused"))
    assert client.health() is False


def test_key_when_server_requires_one_and_async() -> None:
    routes = _routes()
    client = make(
        VLLMProvider,
        routes,
        base_url="http://api.test/v1",
        env={"VLLM_API_KEY": "token-abc"},
        model="m",
    )

    async def main() -> None:
        assert (await client.achat("hi")).text == "ok"
        assert await client.ahealth() is True
        assert await client.atokenize("abc") == [1, 2, 3]
        assert await client.adetokenize([1]) == "abc"
        await client.aclose()

    asyncio.run(main())
    assert routes.hits[0].headers["authorization"] == "Bearer token-abc"


def test_server_root() -> None:
    assert server_root("http://h:8000/v1") == "http://h:8000"
    assert server_root("http://h:8000") == "http://h:8000"
