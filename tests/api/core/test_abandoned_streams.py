"""Abandoning a stream releases its connection: 100 streams left by ``break``, ``close()`` or
garbage collection leave no open connection in the transport's pool, and no queue slot held.

Checked on the pool itself (httpcore's ``connections``), against a real fake OpenAI server whose
stream is long enough that every abandoned stream still had bytes in flight.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import httpx
import pytest

from ipfs_accelerate.api.core import StreamError
from ipfs_accelerate.api.providers.openai_api import OpenAIProvider
from ipfs_accelerate.api.testing import FakeOpenAIServer

KEY = "sk-abandon-test"
N = 100
MESSAGES = [{"role": "user", "content": "one two three four five six seven eight nine ten " * 3}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(api_key=KEY) as srv:
        yield srv


def _open(pool: object) -> list[object]:
    """Connections the pool still holds that are not idle and reusable (i.e. in use or half-read)."""
    return [c for c in pool.connections if not c.is_idle() and not c.is_closed()]  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", ["break", "close", "gc"])
def test_sync_abandoned_streams_free_their_connections(server: FakeOpenAIServer, how: str) -> None:
    transport = httpx.HTTPTransport()
    with OpenAIProvider(base_url=server.url + "/v1", api_key=KEY, env={}, transport=transport,
                        model="gpt-test") as p:
        for _ in range(N):
            stream = p.chat_stream(MESSAGES)
            if how == "break":
                with stream:  # a bare `break` is test_bare_break_on_a_temporary_stream_frees_it_at_once
                    for _chunk in stream:
                        break
            elif how == "close":
                next(iter(stream))
                stream.close()
            else:
                next(iter(stream))
                del stream
                gc.collect()
            assert _open(transport._pool) == []
        assert p.client.queue.in_flight == 0
        assert len(transport._pool.connections) <= 1  # at most one idle keep-alive connection


def test_bare_break_on_a_temporary_stream_frees_it_at_once(server: FakeOpenAIServer) -> None:
    """No `with`, no close(), and the collector switched off: the loop's iterator is the last
    reference, so CPython's refcounting alone must release the connection and the queue slot."""
    transport = httpx.HTTPTransport()
    enabled = gc.isenabled()
    gc.disable()
    try:
        with OpenAIProvider(base_url=server.url + "/v1", api_key=KEY, env={}, transport=transport,
                            model="gpt-test") as p:
            for _ in range(N):
                seen = 0
                for _chunk in p.chat_stream(MESSAGES):
                    seen += 1
                    break
                assert seen == 1
                assert _open(transport._pool) == [] and p.client.queue.in_flight == 0
            held = p.chat_stream(MESSAGES)
            for _chunk in held:
                break
            with pytest.raises(StreamError, match="abandoned"):  # no silent empty second loop
                list(held)
            assert p.client.queue.in_flight == 0
    finally:
        if enabled:
            gc.enable()


def test_async_abandoned_streams_free_their_connections(server: FakeOpenAIServer) -> None:
    async def main() -> None:
        transport = httpx.AsyncHTTPTransport()
        async with OpenAIProvider(base_url=server.url + "/v1", api_key=KEY, env={},
                                  async_transport=transport, model="gpt-test") as p:
            for i in range(N):
                stream = await p.achat_stream(MESSAGES)
                if i % 2:
                    async for _chunk in stream:
                        break
                    await stream.aclose()
                else:
                    async with stream:
                        await stream.__anext__()
                assert _open(transport._pool) == []
            assert p.client.queue.in_flight == 0

    asyncio.run(main())
