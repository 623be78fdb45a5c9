"""groq: the OpenAI protocol under /openai/v1, with x_groq usage in streams."""

from __future__ import annotations

import asyncio

import httpx

from ipfs_accelerate.api.core import Usage
from ipfs_accelerate.api.providers.groq import GroqProvider

from ..core._routes import Routes, make, sse

CHAT = {
    "id": "c",
    "model": "llama-x",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "yo"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}


def test_prefix_auth_and_stream_usage() -> None:
    routes = Routes().on("POST", "/openai/v1/chat/completions", httpx.Response(200, json=CHAT))
    client = make(GroqProvider, routes, api_key="gsk_test", model="llama-x")
    assert client.base_url == "http://api.test/openai/v1"
    assert client.chat("hi").text == "yo"
    assert routes.last.path == "/openai/v1/chat/completions"
    assert routes.last.headers["authorization"] == "Bearer gsk_test"
    routes.on(
        "POST",
        "/openai/v1/chat/completions",
        sse(
            {
                "id": "c",
                "choices": [{"index": 0, "delta": {"content": "y"}, "finish_reason": None}],
            },
            {
                "id": "c",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "x_groq": {"usage": {"prompt_tokens": 3, "completion_tokens": 1}},
            },
            "[DONE]",
        ),
    )
    stream = client.chat_stream("hi")
    assert [c.delta for c in stream] == ["y", ""] and stream.usage == Usage(3, 1)


def test_async_and_models() -> None:
    routes = Routes().on(
        "GET",
        "/openai/v1/models",
        httpx.Response(200, json={"data": [{"id": "llama-x", "owned_by": "Meta"}]}),
    )
    client = make(GroqProvider, routes, api_key="gsk_test", base_url="http://api.test/")

    async def main() -> None:
        assert [m.id for m in await client.amodels()] == ["llama-x"]
        await client.aclose()

    asyncio.run(main())
    assert routes.last.path == "/openai/v1/models"
