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
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import httpx

from ._errors import APIError, StreamError
from ._types import Usage

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


def iter_sse(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()


async def aiter_sse(chunks: AsyncIterator[bytes]) -> AsyncIterator[ServerSentEvent]:
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.close():
        yield event


def iter_ndjson(chunks: Iterable[bytes]) -> Iterator[Any]:
    decoder = NDJSONDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()


async def aiter_ndjson(chunks: AsyncIterator[bytes]) -> AsyncIterator[Any]:
    decoder = NDJSONDecoder()
    async for chunk in chunks:
        for obj in decoder.feed(chunk):
            yield obj
    for obj in decoder.close():
        yield obj


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


OnFinish = Callable[[BaseException | None, Usage | None], None]


class _StreamBase(Generic[T]):
    def __init__(
        self,
        response: httpx.Response,
        decoder: ChunkDecoder[T],
        *,
        on_finish: OnFinish | None = None,
        redact: Callable[[str], str] = lambda s: s,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.response = response
        self.decoder = decoder
        self._on_finish = on_finish
        self._redact = redact
        self._context = dict(context or {})
        self._finished = False
        self._text: list[str] = []
        self.chunks = 0

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

    def _decode(self, item: Any) -> Iterable[T]:
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

    def _finish(self, error: BaseException | None) -> None:
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
    """A sync iterator of typed chunks; use as a context manager or iterate to the end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._iterator: Iterator[T] | None = None

    def __iter__(self) -> Iterator[T]:
        if self._iterator is None:
            self._iterator = self._iterate()
        return self._iterator

    def __next__(self) -> T:
        return next(iter(self))

    def _iterate(self) -> Iterator[T]:
        error: BaseException | None = None
        try:
            self._check_content_type()
            framer = SSEDecoder() if self.decoder.framing == "sse" else NDJSONDecoder()
            try:
                for raw in self.response.iter_bytes():
                    for item in framer.feed(raw):
                        yield from self._decode(item)
                for item in framer.close():
                    yield from self._decode(item)
            except httpx.HTTPError as exc:
                raise self._error(f"stream failed mid-body: {type(exc).__name__}: {exc}") from exc
            self._end_check()
        except GeneratorExit:
            raise
        except BaseException as exc:
            self._fill(exc)
            error = exc
            raise
        finally:
            self.response.close()
            self._finish(error)

    def close(self) -> None:
        """Stop early: closes the connection and frees the queue slot."""
        if self._iterator is not None:
            self._iterator.close()  # type: ignore[attr-defined]
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
        error: BaseException | None = None
        try:
            self._check_content_type()
            framer = SSEDecoder() if self.decoder.framing == "sse" else NDJSONDecoder()
            try:
                async for raw in self.response.aiter_bytes():
                    for item in framer.feed(raw):
                        for chunk in self._decode(item):
                            yield chunk
                for item in framer.close():
                    for chunk in self._decode(item):
                        yield chunk
            except httpx.HTTPError as exc:
                raise self._error(f"stream failed mid-body: {type(exc).__name__}: {exc}") from exc
            self._end_check()
        except GeneratorExit:
            raise
        except BaseException as exc:
            self._fill(exc)
            error = exc
            raise
        finally:
            await self.response.aclose()
            self._finish(error)

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
