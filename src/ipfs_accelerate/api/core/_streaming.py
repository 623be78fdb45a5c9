"""Streaming: SSE and NDJSON framing shared by every provider, and the typed stream objects.

Layers, each small:

* framing — :class:`SSEDecoder` / :class:`NDJSONDecoder` turn bytes into events/objects,
  incrementally (one implementation serves sync and async);
* meaning — a provider's :class:`ChunkDecoder` turns events into typed chunks, says when the
  protocol's terminal event was seen (``done``) and reconciles usage;
* lifetime — :class:`Stream` / :class:`AsyncStream` iterate, close the response, and report the
  outcome to the client (queue slot, stats, breaker) exactly once.

Never a silent partial success: bytes after the last line end, an event without its blank line,
a malformed JSON payload, a transport error mid-body, or EOF before the terminal event all raise
:class:`StreamError`.

Never a stream that outlives its limits: the call's ``Timeout.total``, ``first_event`` and
``gap`` are checked after every chunk of bytes (a server trickling bytes cannot keep a stream
alive) and a watchdog cuts a silent connection when the nearest limit passes; either way
:class:`StreamTimeoutError` names the limit and how long it had run.
"""

from __future__ import annotations

import contextlib
import json
import re
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import httpx

from ._clock import Clock, SystemClock
from ._config import Timeout
from ._errors import APIError, StreamError, StreamTimeoutError
from ._types import Usage
from ._watchdog import WATCHDOG, shutdown_socket

__all__ = [
    "AsyncStream",
    "ChunkDecoder",
    "NDJSONDecoder",
    "SSEDecoder",
    "ServerSentEvent",
    "Stream",
    "aiter_ndjson",
    "aiter_sse",
    "iter_ndjson",
    "iter_sse",
]

T = TypeVar("T")
Framing = Literal["sse", "ndjson"]
EXCERPT = 200


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.data)
        except ValueError as exc:
            raise StreamError(f"malformed JSON in SSE event: {self.data[:EXCERPT]!r}") from exc


_EOL = re.compile(rb"\r\n|\r|\n")


class SSEDecoder:
    """Incremental text/event-stream parser (WHATWG rules: data lines joined by newlines,
    comments ignored, one leading space stripped, CR / LF / CRLF line ends)."""

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self._pending = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        buf = self._buf + chunk if self._buf else chunk
        events: list[ServerSentEvent] = []
        pos = 0
        n = len(buf)
        while pos < n:
            m = _EOL.search(buf, pos)
            if m is None:
                break
            if m.group() == b"\r" and m.end() == n:
                break  # a CR at the end may be the first half of CRLF
            event = self._line(buf[pos : m.start()].decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
            pos = m.end()
        self._buf = buf[pos:]
        return events

    def close(self) -> list[ServerSentEvent]:
        """End of input: anything left over means the stream was cut."""
        events: list[ServerSentEvent] = []
        if self._buf == b"\r":
            self._buf = b""
            event = self._line("")
            if event is not None:
                events.append(event)
        if self._buf:
            raise StreamError(f"stream ended mid-line: {self._buf[:EXCERPT]!r}")
        if self._pending:
            raise StreamError("stream ended mid-event (no blank line after the last event)")
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._pending:
                return None
            event = ServerSentEvent("\n".join(self._data), self._event, self._id, self._retry)
            self._data, self._event, self._retry, self._pending = [], None, None, False
            return event
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isdigit():
                self._retry = int(value)
        else:
            return None
        self._pending = True
        return None


class NDJSONDecoder:
    """Incremental newline-delimited JSON parser (Ollama's streaming format)."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[Any]:
        buf = self._buf + chunk if self._buf else chunk
        *lines, self._buf = buf.split(b"\n")
        return [self._parse(line) for line in lines if line.strip()]

    def close(self) -> list[Any]:
        rest, self._buf = self._buf, b""
        if not rest.strip():
            return []
        try:
            return [json.loads(rest)]
        except ValueError as exc:
            raise StreamError(f"stream ended mid-line: {rest[:EXCERPT]!r}") from exc

    @staticmethod
    def _parse(line: bytes) -> Any:
        try:
            return json.loads(line)
        except ValueError as exc:
            raise StreamError(f"malformed NDJSON line: {line[:EXCERPT]!r}") from exc


def _framed(decoder: SSEDecoder | NDJSONDecoder, chunks: Iterable[bytes]) -> Iterator[Any]:
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()


async def _aframed(
    decoder: SSEDecoder | NDJSONDecoder, chunks: AsyncIterator[bytes]
) -> AsyncIterator[Any]:
    async for chunk in chunks:
        for item in decoder.feed(chunk):
            yield item
    for item in decoder.close():
        yield item


def iter_sse(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """Events of a text/event-stream body given as byte chunks; StreamError if it was cut."""
    return _framed(SSEDecoder(), chunks)


def aiter_sse(chunks: AsyncIterator[bytes]) -> AsyncIterator[ServerSentEvent]:
    return _aframed(SSEDecoder(), chunks)


def iter_ndjson(chunks: Iterable[bytes]) -> Iterator[Any]:
    """Objects of an NDJSON body given as byte chunks; StreamError if it was cut."""
    return _framed(NDJSONDecoder(), chunks)


def aiter_ndjson(chunks: AsyncIterator[bytes]) -> AsyncIterator[Any]:
    return _aframed(NDJSONDecoder(), chunks)


class ChunkDecoder(Generic[T]):
    """A provider's stream semantics: framed item → typed chunks.

    Subclasses implement :meth:`decode` (an SSE event or an NDJSON object in, zero or more chunks
    out), set ``done`` when the protocol's terminal event arrives, and keep ``usage`` current
    (reconciled from whatever partial usage the protocol reports). Raise StreamError (or any
    APIError) for error events; other exceptions are wrapped as "malformed event".
    """

    framing: Framing = "sse"

    def __init__(self) -> None:
        self.done = False
        self.usage: Usage | None = None

    def decode(self, item: Any) -> Iterable[T]:
        raise NotImplementedError

    def checked(
        self, item: Any, error_of: Callable[[dict[str, Any]], Any] = lambda o: o.get("error")
    ) -> dict[str, Any]:
        """The item's JSON object after the checks every protocol makes, written once: it is an
        object (an SSE event's data, or an NDJSON line), ``error_of`` finds no error in it, and
        it does not follow the terminal event."""
        obj = item.json() if isinstance(item, ServerSentEvent) else item
        if not isinstance(obj, dict):
            shown = item.data if isinstance(item, ServerSentEvent) else str(item)
            raise StreamError(f"stream event is not an object: {shown[:EXCERPT]!r}")
        error = error_of(obj)
        if error:
            raise StreamError(f"server sent an error mid-stream: {error}")
        if self.done:
            raise StreamError("event after the final event")
        return obj


OnFinish = Callable[[BaseException | None, Usage | None], None]
NO_LIMITS = Timeout.of(None)
#: a socket cut by the watchdog surfaces a moment after the limit it enforced
CUT_TOLERANCE = 0.05


class _StreamBase(Generic[T]):
    def __init__(
        self,
        response: httpx.Response,
        decoder: ChunkDecoder[T],
        *,
        on_finish: OnFinish | None = None,
        redact: Callable[[str], str] = lambda s: s,
        context: dict[str, Any] | None = None,
        clock: Clock | None = None,
        timeout: Timeout | None = None,
        started: float | None = None,
    ) -> None:
        self.response = response
        self.decoder = decoder
        self._on_finish = on_finish
        self._redact = redact
        self._context = dict(context or {})
        self._finished = False
        self._text: list[str] = []
        self.chunks = 0
        self._clock: Clock = clock or SystemClock()
        self._limits = timeout or NO_LIMITS
        self._started = self._clock.now() if started is None else started
        self._last_event: float | None = None
        self._dog: list[Any] | None = None
        self._framer: SSEDecoder | NDJSONDecoder = SSEDecoder()
        self._ended_by: BaseException | None = None  # what ended the iteration, for on_finish

    @property
    def usage(self) -> Usage | None:
        """Usage reconciled from the stream's events (final once the stream has ended)."""
        return self.decoder.usage

    @property
    def done(self) -> bool:
        return self.decoder.done

    @property
    def text(self) -> str:
        """Concatenated text deltas of choice 0 seen so far."""
        return "".join(self._text)

    def _error(self, message: str) -> StreamError:
        return StreamError(self._redact(message), **self._context)

    def _check_content_type(self) -> None:
        if self.decoder.framing != "sse":
            return
        ctype = self.response.headers.get("content-type", "")
        if not ctype.lower().startswith("text/event-stream"):
            raise self._error(f"expected a text/event-stream response, got {ctype or 'none'!r}")

    def _fill(self, exc: BaseException) -> None:
        """Give an APIError raised by framing or decoding this stream's context, redacted."""
        if not isinstance(exc, APIError):
            return
        for name, value in self._context.items():
            if getattr(exc, name, None) is None:
                setattr(exc, name, value)
        exc.message = self._redact(exc.message)
        exc.args = (exc.message,)
        if exc.body:
            exc.body = self._redact(exc.body)

    # -- limits ------------------------------------------------------------------------------------

    def _over_limit(self, tolerance: float = 0.0) -> StreamTimeoutError | None:
        """The error for the first limit that has passed (None if none has); the stream's
        context (provider, url, ...) is filled in by ``_reporting``, as for every error."""
        now = self._clock.now()
        t, ran = self._limits, now - self._started
        if t.total is not None and ran + tolerance >= t.total:
            limit, value, elapsed = "total", t.total, ran
        elif self._last_event is None and t.first_event is not None and ran + tolerance >= t.first_event:
            limit, value, elapsed = "first_event", t.first_event, ran
        elif (self._last_event is not None and t.gap is not None
              and now - self._last_event + tolerance >= t.gap):
            limit, value, elapsed = "gap", t.gap, now - self._last_event
        else:
            return None
        provider = self._context.get("provider") or "api"
        what = {"total": "total timeout", "first_event": "time to first event", "gap": "gap between events"}
        return StreamTimeoutError(
            f"{provider}: stream {what[limit]} limit of {value:g}s passed (after {elapsed:.2f}s)",
            limit=limit, elapsed=elapsed,
        )

    def _check(self) -> None:
        error = self._over_limit()
        if error is not None:
            raise error

    def _arm(self, event_seen: bool) -> None:
        """After an event (or at the start): (re)arm the watchdog for the nearest limit."""
        now = self._clock.now()
        if event_seen:
            self._last_event = now
        t = self._limits
        ends = [self._started + t.total] if t.total is not None else []
        if self._last_event is None and t.first_event is not None:
            ends.append(self._started + t.first_event)
        elif self._last_event is not None and t.gap is not None:
            ends.append(self._last_event + t.gap)
        WATCHDOG.cancel(self._dog)
        self._dog = None
        if ends:
            cut = shutdown_socket(self.response.extensions.get("network_stream"))
            self._dog = WATCHDOG.arm(min(ends) - now, cut)

    def _failed(self, exc: httpx.HTTPError) -> APIError:
        """A transport error mid-body: a limit that passed (the watchdog's cut), or a failure."""
        return self._over_limit(CUT_TOLERANCE) or self._error(
            f"stream failed mid-body: {type(exc).__name__}: {exc}"
        )

    def _decode(self, item: Any) -> Iterable[T]:
        self._arm(event_seen=True)
        try:
            chunks = list(self.decoder.decode(item))
        except APIError:
            raise
        except Exception as exc:
            raise self._error(f"malformed stream event: {str(item)[:EXCERPT]!r}") from exc
        for chunk in chunks:
            self.chunks += 1
            if getattr(chunk, "index", 0) == 0:
                delta = getattr(chunk, "delta", None)
                if isinstance(delta, str) and delta:
                    self._text.append(delta)
        return chunks

    def _end_check(self) -> None:
        if not self.decoder.done:
            raise self._error("stream ended before its terminal event (truncated)")

    def _begin(self) -> None:
        """Before the first byte: the content type is checked and the first limit armed."""
        self._check_content_type()
        self._framer = SSEDecoder() if self.decoder.framing == "sse" else NDJSONDecoder()
        self._arm(event_seen=False)

    def _step(self, raw: bytes | None) -> Iterator[T]:
        """The chunks one piece of the body completes (``None``: the body ended), one framed
        item at a time, so a chunk is handed out before a later item of the piece fails. The
        limits are checked on every piece: a trickling server cannot keep the stream alive."""
        if raw is None:
            for item in self._framer.close():
                yield from self._decode(item)
            self._end_check()
            return
        self._check()
        for item in self._framer.feed(raw):
            yield from self._decode(item)

    @contextlib.contextmanager
    def _reporting(self) -> Iterator[None]:
        """Whatever ends the iteration (sync or async): a transport error mid-body becomes the
        limit that passed or a StreamError, an APIError gets this stream's context (redacted),
        and the error is kept for ``_finish`` (called after the response is closed)."""
        try:
            yield
        except GeneratorExit:
            raise
        except httpx.HTTPError as exc:
            error = self._failed(exc)
            self._fill(error)
            self._ended_by = error
            raise error from exc
        except BaseException as exc:
            self._fill(exc)
            self._ended_by = exc
            raise


    def _finish(self, error: BaseException | None) -> None:
        WATCHDOG.cancel(self._dog)
        if self._finished:
            return
        self._finished = True
        if self._on_finish is not None:
            self._on_finish(error, self.decoder.usage)

    def __del__(self) -> None:
        # A stream dropped without close() must not keep its queue slot forever; httpx reclaims
        # the connection itself.
        if not getattr(self, "_finished", True):
            try:
                self._finish(None)
            except Exception:  # noqa: BLE001 — never raise from a finalizer
                pass


class Stream(_StreamBase[T]):
    """A sync iterator of typed chunks; use as a context manager or iterate to the end.

    Leaving early: a ``for`` loop owns the iterator that ``iter(stream)`` returns, and the stream
    keeps only a weak reference to it, so there is no stream <-> iterator cycle. CPython frees
    the last reference at once, so a bare ``break`` out of ``for c in provider.chat_stream(...)``
    (a temporary stream) closes the response and frees the queue slot right there, without
    waiting for the garbage collector; the same holds for an ``iter(stream)`` you drop. Once
    ``next(stream)`` is called the stream holds its iterator itself: that held reference needs
    ``close()`` (or ``with``), else the slot comes back only when the stream is collected.
    Iterating again after an abandoned loop raises StreamError instead of silently yielding
    nothing; after a complete one it yields nothing, like any exhausted iterator.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._iterator: Iterator[T] | None = None  # strong: only once next(stream) was called
        self._loop: weakref.ref[Iterator[T]] | None = None  # what iter(stream) handed out

    def _live(self) -> Iterator[T] | None:
        return self._iterator or (self._loop() if self._loop is not None else None)

    def __iter__(self) -> Iterator[T]:
        live = self._live()
        if live is not None:
            return live
        if self._loop is not None:  # handed out before, and already dropped
            if self.decoder.done:
                return iter(())
            raise self._error("stream was abandoned (its iterator was dropped); open a new one")
        live = self._iterate()
        self._loop = weakref.ref(live)
        return live

    def __next__(self) -> T:
        if self._iterator is None:
            self._iterator = iter(self)
        return next(self._iterator)

    def _iterate(self) -> Iterator[T]:
        try:
            with self._reporting():
                self._begin()
                for raw in self.response.iter_bytes():
                    yield from self._step(raw)
                yield from self._step(None)
        finally:
            self.response.close()
            self._finish(self._ended_by)

    def close(self) -> None:
        """Stop early: closes the connection and frees the queue slot."""
        live = self._live()
        if live is not None:
            live.close()  # type: ignore[attr-defined]
        self.response.close()
        self._finish(None)

    def until_done(self) -> list[T]:
        """Consume the whole stream and return its chunks."""
        return list(self)

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStream(_StreamBase[T]):
    """The async twin of :class:`Stream`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._iterator: AsyncIterator[T] | None = None

    def __aiter__(self) -> AsyncIterator[T]:
        if self._iterator is None:
            self._iterator = self._iterate()
        return self._iterator

    async def __anext__(self) -> T:
        return await self.__aiter__().__anext__()

    async def _iterate(self) -> AsyncIterator[T]:
        try:
            with self._reporting():
                self._begin()
                async for raw in self.response.aiter_bytes():
                    for chunk in self._step(raw):
                        yield chunk
                for chunk in self._step(None):
                    yield chunk
        finally:
            await self.response.aclose()
            self._finish(self._ended_by)

    async def aclose(self) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]
        await self.response.aclose()
        self._finish(None)

    async def until_done(self) -> list[T]:
        return [chunk async for chunk in self]

    async def __aenter__(self) -> AsyncStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
