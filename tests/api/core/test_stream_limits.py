"""Streams pinned in detail: WHATWG SSE field rules, the exact errors (with excerpts), a
provider's ChunkDecoder checks, the three stream limits on an injected clock (at and around
their boundaries, and what the watchdog is armed for), and the stream objects' lifetime.

Streams are built directly over an ``httpx.Response`` whose body is a list of pieces, each
arriving after a given number of fake seconds, so limits are proven without sleeping.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ipfs_accelerate.api.core import (
    AsyncStream,
    ChatChunk,
    ChunkDecoder,
    FakeClock,
    NDJSONDecoder,
    ServerSentEvent,
    Stream,
    StreamError,
    StreamTimeoutError,
    Timeout,
    Usage,
    iter_ndjson,
    iter_sse,
)

CTX = {"provider": "toy", "method": "POST", "url": "http://toy/v1/stream"}
Piece = tuple[float, "bytes | Exception"]


# -- framing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "events"),
    [
        (b"data\n\n", [ServerSentEvent("")]),  # a field without a colon has an empty value
        (b"data:  two\n\n", [ServerSentEvent(" two")]),  # only one leading space is stripped
        (b"id: a\x00b\ndata: x\n\n", [ServerSentEvent("x")]),  # an id with NUL is ignored
        (b"retry: 1x\ndata: x\n\n", [ServerSentEvent("x")]),  # a non-numeric retry is ignored
        (b"retry: 15\ndata: x\n\n", [ServerSentEvent("x", retry=15)]),
        (b"foo: bar\n\n", []),  # an unknown field starts no event
        (b": only a comment\n\n", []),
        (b"data: \xff\n\n", [ServerSentEvent("\ufffd")]),  # bad UTF-8 is replaced, not fatal
        (b"data: a\r\r", [ServerSentEvent("a")]),  # the closing CR arrives last
    ],
)
def test_sse_field_rules(raw: bytes, events: list[ServerSentEvent]) -> None:
    assert list(iter_sse([raw])) == events


def test_sse_errors_are_exact_with_an_excerpt() -> None:
    with pytest.raises(StreamError) as info:
        list(iter_sse([b"data: " + b"x" * 300]))
    assert info.value.message == "stream ended mid-line: " + repr(b"data: " + b"x" * 194)
    with pytest.raises(StreamError) as info:
        list(iter_sse([b"data: x\n"]))
    assert info.value.message == "stream ended mid-event (no blank line after the last event)"
    with pytest.raises(StreamError) as info:
        ServerSentEvent("{" * 300).json()
    assert info.value.message == "malformed JSON in SSE event: " + repr("{" * 200)


def test_ndjson_close_is_idempotent_and_errors_carry_an_excerpt() -> None:
    d = NDJSONDecoder()
    assert d.close() == [] and d.feed(b"  ") == [] and d.close() == [] and d.close() == []
    with pytest.raises(StreamError) as info:
        list(iter_ndjson([b"y" * 300 + b"\n"]))
    assert info.value.message == "malformed NDJSON line: " + repr(b"y" * 200)
    with pytest.raises(StreamError) as info:
        list(iter_ndjson([b"{" * 300]))
    assert info.value.message == "stream ended mid-line: " + repr(b"{" * 200)


# -- a provider's decoder --------------------------------------------------------------------------


class Toy(ChunkDecoder[ChatChunk]):
    """{"t": text} events; [END] ends; {"u": [in, out]} reports usage; {"raise": ...} fails."""

    def decode(self, item: Any) -> Iterable[Any]:
        if isinstance(item, ServerSentEvent) and item.data == "[END]":
            self.done = True
            return []
        obj = self.checked(item)
        if "raise" in obj:
            raise (StreamError(obj["raise"], body=obj["raise"]) if obj.get("api") else KeyError(obj["raise"]))
        if "u" in obj:
            self.usage = Usage(*obj["u"])
        if obj.get("end"):
            self.done = True
        return obj.get("chunks", [ChatChunk(delta=obj.get("t", ""))])


class NDToy(Toy):
    framing = "ndjson"


def test_checked_names_what_is_wrong_with_an_event() -> None:
    d = Toy()
    assert d.done is False and d.usage is None
    assert d.checked(ServerSentEvent('{"a": 1}')) == {"a": 1} and d.checked({"b": 2}) == {"b": 2}
    cases: list[tuple[Any, str]] = [
        (ServerSentEvent("[1]"), "stream event is not an object: '[1]'"),
        ([1, 2], "stream event is not an object: '[1, 2]'"),
        (ServerSentEvent("[" + "0," * 150 + "0]"), "stream event is not an object: " + repr(("[" + "0," * 150)[:200])),
        ({"error": {"message": "boom"}}, "server sent an error mid-stream: {'message': 'boom'}"),
    ]
    for item, message in cases:
        with pytest.raises(StreamError) as info:
            d.checked(item)
        assert info.value.message == message
    with pytest.raises(StreamError) as info:
        d.checked({"type": "error", "detail": "x"}, error_of=lambda o: o["type"] == "error" and o["detail"])
    assert info.value.message == "server sent an error mid-stream: x"
    d.done = True
    with pytest.raises(StreamError) as info:
        d.checked({"a": 1})
    assert info.value.message == "event after the final event"


# -- streams over a fake clock ---------------------------------------------------------------------


class Pieces(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body whose pieces arrive ``dt`` fake seconds apart; an exception piece is raised."""

    def __init__(self, clock: FakeClock, pieces: list[Piece]) -> None:
        self.clock, self.pieces, self.closed = clock, pieces, False

    def _next(self) -> Iterator[bytes]:
        for dt, piece in self.pieces:
            self.clock.advance(dt)
            if isinstance(piece, Exception):
                raise piece
            yield piece

    def __iter__(self) -> Iterator[bytes]:
        yield from self._next()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._next():
            yield piece

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def _ev(obj: str) -> bytes:
    return b"data: " + obj.encode() + b"\n\n"


END = _ev("[END]")
Finished = list[tuple[BaseException | None, Usage | None]]


def _make(
    cls: type[Any],
    pieces: list[Piece],
    *,
    limits: Timeout | None = None,
    decoder: ChunkDecoder[Any] | None = None,
    ctype: str | None = "text/event-stream",
    started: float | None = None,
    **kw: Any,
) -> tuple[Any, FakeClock, Finished, Pieces]:
    clock = FakeClock()
    body = Pieces(clock, pieces)
    response = httpx.Response(200, headers={"content-type": ctype} if ctype else {}, stream=body)
    finished: Finished = []
    stream = cls(
        response, decoder or Toy(), on_finish=lambda e, u: finished.append((e, u)), context=kw.pop("context", dict(CTX)),
        clock=clock, timeout=limits, started=started, **kw,
    )
    return stream, clock, finished, body


def _fails(stream: Any) -> StreamError:
    with pytest.raises(StreamError) as info:
        list(stream)
    return info.value


def test_total_limit_at_its_boundary_named_with_provider_and_context() -> None:
    ok, _, finished, _ = _make(Stream, [(0.0, _ev('{"t": "a"}')), (0.999, END)], limits=Timeout(total=1.0))
    assert [c.delta for c in ok] == ["a"] and finished == [(None, None)]
    stream, _, finished, body = _make(Stream, [(0.5, _ev('{"t": "a"}')), (0.5, END)], limits=Timeout(total=1.0))
    err = _fails(stream)
    assert isinstance(err, StreamTimeoutError) and (err.limit, err.elapsed) == ("total", 1.0)
    assert str(err) == "toy: stream total timeout limit of 1s passed (after 1.00s)"
    assert (err.provider, err.url, err.method) == ("toy", CTX["url"], "POST")
    assert finished == [(err, None)] and body.closed


def test_total_wins_over_a_passed_gap_and_counts_from_started() -> None:
    limits = Timeout(total=2.0, first_event=None, gap=0.5)
    stream, _, _, _ = _make(Stream, [(0.0, _ev('{"t": "a"}')), (3.0, END)], limits=limits)
    assert _fails(stream).limit == "total"  # type: ignore[attr-defined]
    # a stream that started (on the call's clock) before it was made counts from then
    stream, clock, _, _ = _make(Stream, [(0.25, END)], limits=Timeout(total=1.0), started=999.0)
    err = _fails(stream)
    assert (err.limit, err.elapsed) == ("total", 1.25)  # type: ignore[attr-defined]


def test_first_event_limit_applies_only_until_the_first_event() -> None:
    limits = Timeout(total=None, first_event=1.0, gap=None)
    stream, _, _, _ = _make(Stream, [(0.5, b": ping\n\n"), (0.5, END)], limits=limits)
    err = _fails(stream)
    assert (err.limit, err.elapsed) == ("first_event", 1.0)  # type: ignore[attr-defined]
    assert str(err) == "toy: stream time to first event limit of 1s passed (after 1.00s)"
    ok, _, _, _ = _make(Stream, [(0.999, _ev('{"t": "a"}')), (5.0, END)], limits=limits)
    assert [c.delta for c in ok] == ["a"]  # after the first event only the gap counts (none here)


def test_gap_limit_counts_from_the_last_event() -> None:
    limits = Timeout(total=None, first_event=None, gap=1.0)
    pieces: list[Piece] = [(5.0, _ev('{"t": "a"}')), (0.999, _ev('{"t": "b"}')), (0.5, b": ka\n\n"), (0.5, END)]
    stream, _, _, _ = _make(Stream, pieces, limits=limits)
    got: list[str] = []
    with pytest.raises(StreamTimeoutError) as info:
        for c in stream:
            got.append(c.delta)
    assert got == ["a", "b"] and (info.value.limit, info.value.elapsed) == ("gap", 1.0)
    assert str(info.value) == "toy: stream gap between events limit of 1s passed (after 1.00s)"


def test_no_limit_means_none_and_a_missing_provider_is_api() -> None:
    pieces: list[Piece] = [(500.0, _ev('{"t": "a"}')), (500.0, END)]
    stream, _, _, _ = _make(Stream, pieces)
    assert [c.delta for c in stream] == ["a"] and stream._dog is None
    stream, _, _, _ = _make(Stream, [(2.0, END)], limits=Timeout(total=1.0), context={})
    err = _fails(stream)
    assert str(err) == "api: stream total timeout limit of 1s passed (after 2.00s)"


def test_a_cut_connection_just_before_a_limit_is_that_limit() -> None:
    """The watchdog cuts a moment after the limit's clock says; a transport error within
    CUT_TOLERANCE of a limit is that limit, further away it is a failure."""
    cut = httpx.ReadError("cut")
    for limits, pieces, limit in [
        (Timeout(total=1.0, first_event=None, gap=None), [(0.96, cut)], "total"),
        (Timeout(total=None, first_event=1.0, gap=None), [(0.96, cut)], "first_event"),
        (Timeout(total=None, first_event=None, gap=1.0), [(0.0, _ev('{"t": "a"}')), (0.96, cut)], "gap"),
    ]:
        stream, _, _, _ = _make(Stream, pieces, limits=limits)
        assert getattr(_fails(stream), "limit", None) == limit
    stream, _, _, _ = _make(Stream, [(0.9, cut)], limits=Timeout(total=1.0))
    err = _fails(stream)
    assert err.message == "stream failed mid-body: ReadError: cut" and not isinstance(err, StreamTimeoutError)


def _armed_in(stream: Any) -> float | None:
    """Seconds until the watchdog cuts this stream (real time), None when it is not armed."""
    return None if stream._dog is None else stream._dog[0] - time.monotonic()


def test_the_watchdog_is_armed_for_the_nearest_limit_and_re_armed_per_event() -> None:
    """Limits of minutes, so the 60 s windows below only bound a stalled scheduler; each
    wrong choice (another limit, a sign flipped, the sum) lands outside them."""
    limits = Timeout(total=1000.0, first_event=300.0, gap=200.0)
    stream, clock, _, _ = _make(Stream, [(5.0, _ev('{"t": "a"}')), (0.0, END)], limits=limits)
    it = iter(stream)
    assert stream._dog is None  # nothing is armed before the iteration starts
    stream._begin()
    armed = _armed_in(stream)
    assert armed is not None and 240.0 < armed <= 300.0  # the first event's limit, from the start
    assert next(it).delta == "a"
    armed = _armed_in(stream)
    assert armed is not None and 140.0 < armed <= 200.0  # re-armed after the event: the gap
    first = stream._dog
    list(it)
    assert first[2] is None and stream._dog[2] is None  # every arming was cancelled at the end

    # only a total: what is left of it; only a first-event limit: off after the first event
    only_total = Timeout(total=1000.0, first_event=None, gap=None)
    stream, _, _, _ = _make(Stream, [(400.0, _ev('{"t": "a"}')), (0.0, END)], limits=only_total)
    it = iter(stream)
    next(it)
    armed = _armed_in(stream)
    assert armed is not None and 540.0 < armed <= 600.0
    stream.close()
    only_first = Timeout(total=None, first_event=300.0, gap=None)
    stream, _, _, _ = _make(Stream, [(1.0, _ev('{"t": "a"}')), (0.0, END)], limits=only_first)
    it = iter(stream)
    next(it)
    assert stream._dog is None  # after the first event no limit is left
    stream.close()


def test_the_watchdog_cuts_the_connection_under_the_stream() -> None:
    class Sock:
        shut: list[int] = []

        def shutdown(self, how: int) -> None:
            self.shut.append(how)

    class Net:
        def get_extra_info(self, name: str) -> Any:
            return Sock() if name == "socket" else None

    clock = FakeClock()
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Pieces(clock, []),
                              extensions={"network_stream": Net()})
    stream = Stream(response, Toy(), clock=clock, timeout=Timeout(total=0.0, first_event=None, gap=None))
    stream._begin()
    deadline = time.monotonic() + 30  # a bound on a hang, not a timing
    while not Sock.shut and time.monotonic() < deadline:
        time.sleep(0.005)
    assert Sock.shut == [2]  # socket.SHUT_RDWR
    stream.close()


# -- what a stream hands out ------------------------------------------------------------------------


@dataclass
class Bare:
    """A chunk type with a delta but no index (index 0 is assumed)."""

    delta: Any = ""


def test_text_counts_choice_zero_string_deltas_and_chunks_counts_all() -> None:
    chunks = [ChatChunk(delta="a"), ChatChunk(delta="x", index=1), ChatChunk(delta=""), ChatChunk(delta="b")]

    class Many(Toy):
        def decode(self, item: Any) -> Iterable[Any]:
            if item.data == "[END]":
                self.done = True
                return []
            if item.data == "bare":
                return [Bare("c"), Bare([1]), Bare(None), object()]
            return chunks

    stream, _, _, _ = _make(Stream, [(0.0, b"data: {}\n\ndata: bare\n\n" + END)], decoder=Many())
    assert stream.chunks == 0
    assert len(list(stream)) == 8 and stream.chunks == 8
    assert stream.text == "abc"


def test_decoder_errors_keep_their_type_get_context_and_are_redacted() -> None:
    redact = lambda s: s.replace("sk-secret", "***")  # noqa: E731
    stream, _, finished, _ = _make(Stream, [(0.0, _ev('{"raise": "bad sk-secret", "api": 1}'))], redact=redact)
    err = _fails(stream)
    assert type(err) is StreamError and err.message == "bad ***" and str(err).startswith("bad ***")
    assert err.body == "bad ***" and (err.provider, err.url) == ("toy", CTX["url"])
    assert finished == [(err, None)]

    own = StreamError("mine", provider="own")

    class Own(Toy):
        def decode(self, item: Any) -> Iterable[Any]:
            raise own

    stream, _, _, _ = _make(Stream, [(0.0, _ev("{}"))], decoder=Own())
    assert _fails(stream) is own and own.provider == "own" and own.url == CTX["url"]

    stream, _, _, _ = _make(Stream, [(0.0, _ev('{"raise": "k"}'))])
    err = _fails(stream)
    assert err.message == "malformed stream event: " + repr(str(ServerSentEvent('{"raise": "k"}')))
    assert isinstance(err.__cause__, KeyError) and err.provider == "toy"


def test_content_type_rules() -> None:
    ok, _, _, _ = _make(Stream, [(0.0, END)], ctype="Text/Event-Stream; charset=utf-8")
    assert list(ok) == []
    stream, _, _, _ = _make(Stream, [(0.0, END)], ctype=None)
    assert _fails(stream).message == "expected a text/event-stream response, got 'none'"
    stream, _, _, _ = _make(Stream, [(0.0, END)], ctype="application/json")
    assert _fails(stream).message == "expected a text/event-stream response, got 'application/json'"
    nd, _, _, _ = _make(Stream, [(0.0, b'{"t": "a"}\n{"t": "b", "end": true}')], ctype="application/x-ndjson", decoder=NDToy())
    assert [c.delta for c in nd] == ["a", "b"]  # NDJSON: no content-type check; last line unterminated


def test_a_stream_without_its_terminal_event_is_truncated() -> None:
    stream, _, finished, _ = _make(Stream, [(0.0, _ev('{"t": "a", "u": [2, 1]}'))])
    err = _fails(stream)
    assert err.message == "stream ended before its terminal event (truncated)"
    assert finished == [(err, Usage(2, 1))]


# -- the stream object's lifetime ------------------------------------------------------------------


GOOD: list[Piece] = [(0.0, _ev('{"t": "he"}') + _ev('{"t": "llo", "u": [3, 2]}') + END)]


def test_one_live_iterator_and_next_on_the_stream_itself() -> None:
    stream, _, finished, _ = _make(Stream, GOOD)
    assert stream.done is False and stream.usage is None
    it = iter(stream)
    assert iter(stream) is it  # the live loop is handed out again, not a second reader
    assert next(stream).delta == "he" and next(it).delta == "llo"
    with pytest.raises(StopIteration):
        next(stream)
    assert stream.done and stream.usage == Usage(3, 2) and finished == [(None, Usage(3, 2))]
    del it
    gc.collect()
    assert list(stream) == [] and stream.until_done() == []  # exhausted, like any iterator

    looped, _, _, _ = _make(Stream, GOOD)
    assert [c.delta for c in looped] == ["he", "llo"]  # the for loop owned (and dropped) it
    assert list(looped) == []

    fresh, _, _, _ = _make(Stream, GOOD)
    assert next(fresh).delta == "he"  # next() before any iter()
    assert [c.delta for c in fresh.until_done()] == ["llo"]


def test_an_abandoned_loop_cannot_be_resumed_silently() -> None:
    stream, _, finished, body = _make(Stream, GOOD)
    for chunk in stream:
        assert chunk.delta == "he"
        break
    assert body.closed and finished == [(None, None)]
    with pytest.raises(StreamError) as info:
        iter(stream)
    assert info.value.message == "stream was abandoned (its iterator was dropped); open a new one"
    assert info.value.provider == "toy"


def test_close_ends_the_live_iterator_and_reports_once() -> None:
    stream, _, finished, body = _make(Stream, GOOD)
    it = iter(stream)
    assert next(it).delta == "he"
    stream.close()
    assert list(it) == [] and body.closed and finished == [(None, None)]
    stream.close()
    assert finished == [(None, None)]
    with _make(Stream, GOOD)[0] as unused:  # never iterated: closing is still clean
        pass
    assert unused.response.is_closed


def test_a_dropped_stream_reports_its_end() -> None:
    stream, _, finished, _ = _make(Stream, GOOD)
    del stream
    gc.collect()
    assert finished == [(None, None)]


def test_async_stream_lifetime_limits_and_errors() -> None:
    async def main() -> None:
        stream, _, finished, body = _make(AsyncStream, GOOD)
        async with stream:
            assert (await stream.__anext__()).delta == "he"
            assert [c.delta async for c in stream] == ["llo"]
        assert stream.usage == Usage(3, 2) and finished == [(None, Usage(3, 2))] and body.closed

        stream, _, finished, _ = _make(AsyncStream, GOOD)
        assert [c.delta for c in await stream.until_done()] == ["he", "llo"]

        unused, _, finished, body = _make(AsyncStream, GOOD)
        await unused.aclose()  # never iterated
        assert body.closed and finished == [(None, None)]

        limits = Timeout(total=None, first_event=None, gap=1.0)
        stream, _, finished, _ = _make(AsyncStream, [(0.0, _ev('{"t": "a"}')), (1.0, END)], limits=limits)
        with pytest.raises(StreamTimeoutError) as info:
            async for _ in stream:
                pass
        assert info.value.limit == "gap" and finished == [(info.value, None)]

        stream, _, finished, _ = _make(AsyncStream, [(0.0, _ev('{"t": "a"}')), (0.0, httpx.ReadError("x"))])
        with pytest.raises(StreamError) as info2:
            async for _ in stream:
                pass
        assert info2.value.message == "stream failed mid-body: ReadError: x"
        assert finished == [(info2.value, None)] and isinstance(info2.value.__cause__, httpx.ReadError)

    asyncio.run(main())
