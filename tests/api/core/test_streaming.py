"""SSE/NDJSON framing and the Stream lifecycle (slot release, stats, StreamError)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpx
import pytest

from ipfs_accelerate.api.core import (
    ChatChunk,
    ChunkDecoder,
    NDJSONDecoder,
    QueueConfig,
    RateLimitError,
    RequestOptions,
    ServerSentEvent,
    SSEDecoder,
    StreamError,
    Usage,
    aiter_ndjson,
    aiter_sse,
    iter_ndjson,
    iter_sse,
)

from .conftest import status

SSE = b'event: a\ndata: {"x": 1}\n\n: comment\ndata: line1\ndata: line2\nid: 7\nretry: 30\n\ndata:no-space\n\n'


def _expected() -> list[ServerSentEvent]:
    return [
        ServerSentEvent('{"x": 1}', "a"),
        ServerSentEvent("line1\nline2", None, "7", 30),
        ServerSentEvent("no-space", None, "7"),  # the last event id persists (WHATWG)
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_sse_any_chunking(size: int) -> None:
    chunks = [SSE[i : i + size] for i in range(0, len(SSE), size)]
    assert list(iter_sse(chunks)) == _expected()


@pytest.mark.parametrize("eol", [b"\r\n", b"\r", b"\n"])
def test_sse_line_endings_split_anywhere(eol: bytes) -> None:
    raw = SSE.replace(b"\n", eol)
    for cut in range(len(raw)):
        assert list(iter_sse([raw[:cut], raw[cut:]])) == _expected(), cut


def test_sse_truncation_is_an_error() -> None:
    with pytest.raises(StreamError, match="mid-line"):
        list(iter_sse([b'data: {"x": 1']))
    with pytest.raises(StreamError, match="mid-event"):
        list(iter_sse([b'data: {"x": 1}\n']))
    assert list(iter_sse([b""])) == []


def test_sse_event_json() -> None:
    assert ServerSentEvent('{"a": [1]}').json() == {"a": [1]}
    with pytest.raises(StreamError, match="malformed JSON"):
        ServerSentEvent("{nope").json()


def test_async_sse_and_ndjson() -> None:
    async def chunks(data: bytes, n: int):
        for i in range(0, len(data), n):
            yield data[i : i + n]

    async def main() -> tuple[list[Any], list[Any]]:
        events = [e async for e in aiter_sse(chunks(SSE, 5))]
        objs = [o async for o in aiter_ndjson(chunks(b'{"a":1}\n\n{"b":2}\n', 3))]
        return events, objs

    events, objs = asyncio.run(main())
    assert events == _expected() and objs == [{"a": 1}, {"b": 2}]


def test_ndjson() -> None:
    raw = b'{"a": 1}\r\n{"b": [2]}\n\n{"done": true}'
    for cut in range(len(raw)):
        assert list(iter_ndjson([raw[:cut], raw[cut:]])) == [{"a": 1}, {"b": [2]}, {"done": True}]
    with pytest.raises(StreamError, match="malformed NDJSON"):
        list(iter_ndjson([b'{"a": 1}\nnot json\n']))
    with pytest.raises(StreamError, match="mid-line"):
        list(iter_ndjson([b'{"a": 1}\n{"b": ']))
    d = NDJSONDecoder()
    assert d.feed(b'{"a"') == [] and d.feed(b": 1}\n") == [{"a": 1}]


def test_sse_decoder_is_incremental() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a") == []
    assert d.feed(b"\n") == []
    assert d.feed(b"\n") == [ServerSentEvent("a")]
    assert d.close() == []


class Decoder(ChunkDecoder[ChatChunk]):
    """A minimal protocol: {"t": text} events, "[END]" terminates, usage on the last event."""

    def decode(self, item: ServerSentEvent) -> Iterable[ChatChunk]:
        if item.data == "[END]":
            self.done = True
            return []
        obj = item.json()
        if "u" in obj:
            self.usage = Usage(*obj["u"])
        return [ChatChunk(delta=obj["t"])]


def _sse_response(body: bytes, ctype: str = "text/event-stream") -> httpx.Response:
    return httpx.Response(200, headers={"content-type": ctype}, content=body)


GOOD = b'data: {"t": "he"}\n\ndata: {"t": "llo", "u": [3, 2]}\n\ndata: [END]\n\n'
OPTS = RequestOptions("POST", "/stream", json={})


def test_stream_success_reconciles_usage_and_frees_slot(make_client) -> None:
    client, script = make_client(_sse_response(GOOD), queue=QueueConfig(max_concurrency=1))
    with client.stream(OPTS, Decoder()) as stream:
        assert client.queue.in_flight == 1  # held while streaming
        assert [c.delta for c in stream] == ["he", "llo"]
    assert stream.text == "hello" and stream.usage == Usage(3, 2)
    assert client.queue.in_flight == 0
    s = client.stats()["test POST /stream"]
    assert (s.successes, s.tokens_in, s.tokens_out) == (1, 3, 2)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'data: {"t": "he"}\n\n', "truncated"),
        (b'data: {"t": "he"}\n\ndata: {"t": "l', "mid-line"),
        (b'data: {"t": "he"}\n\ndata: {oops}\n\n', "malformed JSON"),
        (b'data: {"x": 1}\n\n', "malformed stream event"),
    ],
)
def test_bad_streams_raise_and_free_slot(make_client, body: bytes, match: str) -> None:
    client, _ = make_client(_sse_response(body), queue=QueueConfig(max_concurrency=1))
    stream = client.stream(OPTS, Decoder())
    with pytest.raises(StreamError, match=match) as info:
        list(stream)
    assert info.value.provider == "test" and info.value.url == "http://api.test/v1/stream"
    assert client.queue.in_flight == 0
    assert client.stats()["test POST /stream"].errors == {"StreamError": 1}


def test_wrong_content_type_is_a_stream_error(make_client) -> None:
    client, _ = make_client(_sse_response(b'{"ok": true}', "application/json"))
    with pytest.raises(StreamError, match="text/event-stream"):
        list(client.stream(OPTS, Decoder()))
    assert client.queue.in_flight == 0


def test_transport_error_mid_body_is_a_stream_error(make_client) -> None:
    class Broken(httpx.SyncByteStream):
        def __iter__(self):
            yield b'data: {"t": "a"}\n\n'
            raise httpx.RemoteProtocolError("peer closed connection")

    client, _ = make_client(
        httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Broken())
    )
    stream = client.stream(OPTS, Decoder())
    got = []
    with pytest.raises(StreamError, match="mid-body") as info:
        for c in stream:
            got.append(c.delta)
    assert got == ["a"] and isinstance(info.value.__cause__, httpx.RemoteProtocolError)
    assert client.queue.in_flight == 0


def test_stream_status_errors_are_retried_before_the_first_byte(make_client) -> None:
    client, script = make_client(status(503), _sse_response(GOOD))
    assert [c.delta for c in client.stream(OPTS, Decoder())] == ["he", "llo"]
    assert len(script.seen) == 2 and script.gaps == [0.5]
    client, script = make_client(status(429, {"retry-after": "500"}))
    with pytest.raises(RateLimitError):
        client.stream(OPTS, Decoder())
    assert client.queue.in_flight == 0


def test_closing_early_frees_slot_without_counting_a_failure(make_client) -> None:
    client, _ = make_client(_sse_response(GOOD), queue=QueueConfig(max_concurrency=1))
    stream = client.stream(OPTS, Decoder())
    assert next(iter(stream)).delta == "he"
    stream.close()
    assert client.queue.in_flight == 0
    s = client.stats()["test POST /stream"]
    assert (s.failures, s.successes) == (0, 1)
    unused = client.stream(OPTS, Decoder())
    unused.close()  # never iterated
    assert client.queue.in_flight == 0


def test_async_stream(make_client) -> None:
    client, _ = make_client(_sse_response(GOOD), queue=QueueConfig(max_concurrency=1))

    async def main() -> tuple[list[str], Usage | None]:
        async with await client.astream(OPTS, Decoder()) as stream:
            deltas = [c.delta async for c in stream]
        return deltas, stream.usage

    assert asyncio.run(main()) == (["he", "llo"], Usage(3, 2))
    assert client.queue.in_flight == 0

    client, _ = make_client(_sse_response(b'data: {"t": "he"}\n\n'))

    async def truncated() -> None:
        stream = await client.astream(OPTS, Decoder())
        with pytest.raises(StreamError, match="truncated"):
            async for _ in stream:
                pass

    asyncio.run(truncated())
    assert client.queue.in_flight == 0


def test_dropped_stream_gives_its_slot_back(make_client) -> None:
    import gc

    client, _ = make_client(_sse_response(GOOD), queue=QueueConfig(max_concurrency=1))
    stream = client.stream(OPTS, Decoder())
    assert client.queue.in_flight == 1
    del stream
    gc.collect()
    assert client.queue.in_flight == 0
