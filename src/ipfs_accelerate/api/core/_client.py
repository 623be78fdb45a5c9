"""The HTTP core: one retry loop over an injectable httpx transport, sync and async.

:class:`APIClient` owns everything that is not protocol mapping: base URL, auth headers from a
:class:`KeyPool`, the :class:`RequestQueue`, a :class:`CircuitBreaker` per endpoint, per-endpoint
stats, timeouts, redaction, and the retry loop.

Exactly one retry loop: :meth:`APIClient._attempts` is a generator that *decides* (acquire a slot,
send this request, sleep this long, give up with this error) and yields actions; two ten-line
drivers (:meth:`_drive` / :meth:`_adrive`) *perform* them with the sync or async httpx client.
So the sync and async paths cannot drift apart.

The seam under it is httpx's transport: pass ``transport=httpx.MockTransport(handler)`` (or any
``httpx.BaseTransport`` / ``AsyncBaseTransport``) and every policy runs for real against it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import ssl
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, TypeVar

import httpx

from . import _loop
from ._breaker import CircuitBreaker
from ._config import IDEMPOTENCY_HEADER, OPENAI_RETRY, RETRY_COUNT_HEADER, Priority, Timeout
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ResponseDecodeError,
    StreamError,
    make_status_error,
)
from ._options import Guarded, HTTPOptions
from ._queue import Ticket
from ._secret import KeyPool, Redactor, Secret, redact_headers, redact_url
from ._stats import StatsSnapshot
from ._streaming import AsyncStream, ChunkDecoder, Stream
from ._types import Usage

__all__ = ["APIClient", "RequestOptions", "default_error_message"]

log = logging.getLogger("ipfs_accelerate.api")

T = TypeVar("T")
Parse = Callable[[httpx.Response], T]  # a 2xx response -> the typed result
UsageOf = Callable[[T], Usage | None]  # the result -> its token usage
USER_AGENT = "ipfs-accelerate/0.1"
BODY_EXCERPT = 500


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """One logical request. ``path`` is joined to the client's base URL unless it is absolute.

    ``endpoint`` names the route for stats and the breaker (defaults to ``path``; pass a
    template such as ``/models/{model}:generateContent`` when the path embeds names).
    """

    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    content: bytes | None = None
    endpoint: str | None = None
    priority: Priority = "normal"
    max_retries: int | None = None
    timeout: Timeout | None = None
    idempotency_key: str | None = None
    stream: bool = False

    def with_(self, **changes: Any) -> RequestOptions:
        return replace(self, **changes)


# Actions the retry loop yields to its driver.
class _Acquire(NamedTuple):
    ticket: Ticket
    first: bool
    timeout: float | None


class _Send(NamedTuple):
    request: httpx.Request
    stream: bool


class _ReadClose(NamedTuple):
    """Read an error response's body (best effort) and close it."""

    response: httpx.Response


class _Sleep(NamedTuple):
    seconds: float


def _json(response: httpx.Response) -> Any:
    return response.json()


def default_error_message(body: Any) -> str | None:
    """The human message in the error bodies of the common protocols.

    OpenAI/Groq/vLLM/Gemini: ``{"error": {"message": ...}}``; Anthropic: ``{"type": "error",
    "error": {"message": ...}}``; Ollama/TGI: ``{"error": "..."}``; FastAPI/KServe:
    ``{"detail": ...}`` or ``{"message": ...}``.
    """
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if isinstance(err, dict):
        msg = err.get("message") or err.get("msg")
        if msg:
            return str(msg)
    if isinstance(err, str) and err:
        return err
    for name in ("message", "detail", "msg"):
        if body.get(name):
            return str(body[name])
    return None


@functools.lru_cache(maxsize=8)
def _ssl_context_for(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context()  # reads SSL_CERT_FILE / SSL_CERT_DIR itself


def shared_ssl_context() -> ssl.SSLContext:
    """One verifying SSL context per CA configuration (the SSL_CERT_FILE / SSL_CERT_DIR that httpx
    honours), shared by every client: httpx otherwise loads the CA bundle for each new client
    (~0.05-0.1 s of CPU), which dominates short-lived clients. SSLContext is thread-safe."""
    return _ssl_context_for(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


class APIClient(Guarded):
    """Policy around one base URL; providers call :meth:`request` / :meth:`stream` (and twins).

    ``**options`` are the fields of :class:`HTTPOptions` (timeouts, retries, queue, breaker,
    clock, rng, transports); the rest describe the protocol."""

    def __init__(
        self,
        *,
        base_url: str,
        provider: str = "api",
        keys: KeyPool | None = None,
        auth: Callable[[Secret], Mapping[str, str]] | None = None,
        default_headers: Mapping[str, str] | None = None,
        request_id_headers: tuple[str, ...] = ("x-request-id", "request-id"),
        error_message: Callable[[Any], str | None] = default_error_message,
        send_idempotency_key: bool = True,
        error_class: Callable[[int, Any], type[APIStatusError] | None] | None = None,
        **options: Any,
    ) -> None:
        opts = HTTPOptions.of(options, "APIClient")
        self.base_url = base_url.rstrip("/")
        self.provider = provider
        self.keys = keys
        self._auth = auth or (lambda key: {"Authorization": f"Bearer {key.reveal()}"})
        self.default_headers = {"User-Agent": USER_AGENT, **(default_headers or {})}
        self._guard(opts, OPENAI_RETRY)
        self._transport = opts.transport
        self._async_transport = opts.async_transport
        if opts.async_transport is None and isinstance(opts.transport, httpx.AsyncBaseTransport):
            self._async_transport = opts.transport
        self._http = opts.http_client
        self._ahttp = opts.async_http_client
        self._owns_http = opts.http_client is None
        self._owns_ahttp = opts.async_http_client is None
        self.request_id_headers = request_id_headers
        self._error_message = error_message
        self.send_idempotency_key = send_idempotency_key
        self._error_class = error_class
        self.redact = Redactor(keys.secrets if keys else ())

    def __repr__(self) -> str:
        keys = len(self.keys) if self.keys else 0
        return f"APIClient(provider={self.provider!r}, base_url={redact_url(self.base_url)!r}, keys={keys})"

    # -- plumbing --------------------------------------------------------------------------------

    def _limits(self) -> httpx.Limits:
        n = max(self.queue.config.max_concurrency, 10)
        return httpx.Limits(max_connections=n, max_keepalive_connections=n)

    def _client_options(self) -> dict[str, Any]:
        """What the sync and async httpx clients share (no httpx timeout: ours are per attempt)."""
        return {"verify": shared_ssl_context(), "limits": self._limits(), "timeout": None}

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            transport = self._transport if isinstance(self._transport, httpx.BaseTransport) else None
            self._http = httpx.Client(transport=transport, **self._client_options())
        return self._http

    @property
    def ahttp(self) -> httpx.AsyncClient:
        if self._ahttp is None:
            self._ahttp = httpx.AsyncClient(transport=self._async_transport, **self._client_options())
        return self._ahttp

    def close(self) -> None:
        if self._http is not None and self._owns_http:
            self._http.close()
            self._http = None

    async def aclose(self) -> None:
        if self._ahttp is not None and self._owns_ahttp:
            await self._ahttp.aclose()
            self._ahttp = None
        self.close()

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def breaker(self, endpoint: str) -> CircuitBreaker | None:
        return self._breakers.get(endpoint)

    def endpoint_name(self, opts: RequestOptions) -> str:
        return f"{self.provider} {opts.method.upper()} {opts.endpoint or opts.path}"

    def stats(self) -> dict[str, StatsSnapshot]:
        return self._stats.snapshot()

    def _context(self, opts: RequestOptions) -> dict[str, Any]:
        return {
            "method": opts.method.upper(),
            "url": redact_url(self.url(opts.path)),
            "provider": self.provider,
        }

    def _build_request(
        self,
        opts: RequestOptions,
        key: Secret | None,
        retries_taken: int,
        idempotency_key: str | None,
        remaining: float | None,
    ) -> httpx.Request:
        headers = dict(self.default_headers)
        if opts.headers:
            headers.update(opts.headers)
        if key is not None:
            headers.update(self._auth(key))
        headers[RETRY_COUNT_HEADER] = str(retries_taken)
        if idempotency_key:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        timeout = (opts.timeout or self.timeout).for_attempt(remaining)
        return httpx.Request(
            opts.method.upper(),
            self.url(opts.path),
            params=opts.params,
            json=opts.json,
            content=opts.content,
            headers=headers,
            extensions={"timeout": timeout},
        )

    def status_error(self, response: httpx.Response, opts: RequestOptions) -> APIStatusError:
        """The typed, redacted error for a non-2xx response (body must already be read)."""
        text = response.content.decode("utf-8", "replace")
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        detail = self._error_message(body) if body is not None else None
        if not detail:
            detail = text[:200].strip() or response.reason_phrase
        request_id = next(
            (response.headers[h] for h in self.request_id_headers if h in response.headers), None
        )
        message = self.redact(f"{self.provider}: HTTP {response.status_code}: {detail}")
        cls = self._error_class(response.status_code, body) if self._error_class else None
        return make_status_error(
            response.status_code,
            message,
            cls=cls,
            request_id=request_id,
            body=self.redact(text[:BODY_EXCERPT]),
            headers=redact_headers(response.headers),
            **self._context(opts),
        )

    def _transport_error(self, exc: Exception, opts: RequestOptions) -> APIConnectionError:
        cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
        what = "timed out" if cls is APITimeoutError else "connection failed"
        detail = self.redact(str(exc)) or type(exc).__name__
        err = cls(f"{self.provider}: {what}: {type(exc).__name__}: {detail}", **self._context(opts))
        err.__cause__ = exc
        return err

    # -- the retry loop: httpx's attempt and classifier over the one loop of ``_loop`` ---------

    def _attempts(self, opts: RequestOptions) -> Generator[Any, Any, httpx.Response]:
        """The loop for one logical request; returns the 2xx response.

        For a streaming request the returned response is open and still holds its queue slot;
        the :class:`Stream` releases it.
        """
        policy = self.retry_policy
        endpoint = self.endpoint_name(opts)
        idem = opts.idempotency_key
        if idem is None and self.send_idempotency_key and opts.method.upper() != "GET":
            idem = f"ipfs-accelerate-retry-{uuid.uuid4()}"

        def build(retries_taken: int, key: Secret | None, remaining: float | None) -> httpx.Request:
            return self._build_request(opts, key, retries_taken, idem, remaining)

        return _loop.attempts(
            endpoint=endpoint,
            context=self._context(opts),
            clock=self.clock,
            ticket=self.queue.ticket(opts.priority),
            breaker=self.breaker(endpoint),
            stats=self._stats.get(endpoint),
            policy=policy,
            max_retries=policy.max_retries if opts.max_retries is None else opts.max_retries,
            total=(opts.timeout or self.timeout).total,
            rng=self._rng,
            build=build,
            classify=functools.partial(self._classify, opts),
            release=self.queue.release,
            keys=self.keys,
            hold=opts.stream,
        )

    def _classify(
        self, opts: RequestOptions, response: httpx.Response | None, exc: Exception | None
    ) -> _loop.Outcome:
        """httpx's verdict: a 2xx is the result; a status or transport error, typed."""
        if exc is not None:
            if isinstance(exc, APIError):  # a deadline spent while reading the body
                return _loop.Outcome(error=exc, breaker_failure=True, final=True)
            if isinstance(exc, httpx.RequestError):
                return _loop.Outcome(error=self._transport_error(exc, opts), breaker_failure=True)
            raise exc
        assert response is not None
        if response.is_success:
            return _loop.Outcome(result=response)
        status = response.status_code
        return _loop.Outcome(
            error=self.status_error(response, opts),
            status=status,
            headers=response.headers,
            breaker_failure=status >= 500 or status == 408,
        )

    def _perform(self, stream: bool, action: _loop.Attempt) -> httpx.Response:
        """One attempt, sync: send, then read the body chunk by chunk under the deadline (a
        server trickling bytes cannot outlive it). A stream's 2xx body is left to the Stream."""
        response = self.http.send(action.arg, stream=True)
        if not (stream and response.is_success):
            with contextlib.closing(response), _Body(self, response, action, stream) as body:
                for chunk in response.iter_bytes():
                    body.add(chunk)
        return response

    async def _aperform(self, stream: bool, action: _loop.Attempt) -> httpx.Response:
        """One attempt on the event loop; the same deadline rule as :meth:`_perform`."""
        response = await self.ahttp.send(action.arg, stream=True)
        if not (stream and response.is_success):
            async with contextlib.aclosing(response):
                with _Body(self, response, action, stream) as body:
                    async for chunk in response.aiter_bytes():
                        body.add(chunk)
        return response

    def _drive(self, gen: Generator[Any, Any, httpx.Response], stream: bool = False) -> httpx.Response:
        return _loop.drive(gen, self.queue, self.clock, functools.partial(self._perform, stream))

    async def _adrive(
        self, gen: Generator[Any, Any, httpx.Response], stream: bool = False
    ) -> httpx.Response:
        return await _loop.adrive(gen, self.queue, self.clock, functools.partial(self._aperform, stream))

    # -- public entry points ---------------------------------------------------------------------

    def _parse(
        self, response: httpx.Response, opts: RequestOptions, parse: Callable[[httpx.Response], T]
    ) -> T:
        try:
            return parse(response)
        except APIError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            ctype = response.headers.get("content-type", "none")
            raise ResponseDecodeError(
                f"{self.provider}: could not decode the {response.status_code} response "
                f"(content-type {ctype!r}): {type(exc).__name__}: {self.redact(str(exc))[:200]}",
                status=response.status_code,
                body=self.redact(response.content.decode("utf-8", "replace")[:BODY_EXCERPT]),
                headers=redact_headers(response.headers),
                **self._context(opts),
            ) from exc

    def _track(self, opts: RequestOptions) -> _loop.Tracked:
        return _loop.Tracked(self._stats.get(self.endpoint_name(opts)), self.clock)

    def request(self, opts: RequestOptions, parse: Parse[T] = _json, usage: UsageOf[T] | None = None) -> T:
        """Send with retries and return ``parse(response)`` for the 2xx response."""
        with self._track(opts) as call:
            result = self._parse(self._drive(self._attempts(opts)), opts, parse)
        return call.done(result, usage)

    async def arequest(self, opts: RequestOptions, parse: Parse[T] = _json, usage: UsageOf[T] | None = None) -> T:
        with self._track(opts) as call:
            result = self._parse(await self._adrive(self._attempts(opts)), opts, parse)
        return call.done(result, usage)

    def _stream_options(self, opts: RequestOptions, call: _loop.Tracked) -> dict[str, Any]:
        """What a Stream needs besides its response: how to report its end, and its limits."""
        breaker = self.breaker(self.endpoint_name(opts))

        def finish(error: BaseException | None, usage: Usage | None) -> None:
            self.queue.release()
            if breaker is not None and isinstance(error, StreamError):
                breaker.record_failure()
            call.finish(error, usage)

        return {
            "on_finish": finish,
            "redact": self.redact,
            "context": self._context(opts),
            "clock": self.clock,
            "timeout": opts.timeout or self.timeout,
            "started": call.started,
        }

    def stream(self, opts: RequestOptions, decoder: ChunkDecoder[T]) -> Stream[T]:
        """Send with retries (only until the response headers arrive) and return its stream."""
        opts = opts.with_(stream=True)
        with self._track(opts) as call:
            response = self._drive(self._attempts(opts), stream=True)
        return Stream(response, decoder, **self._stream_options(opts, call))

    async def astream(self, opts: RequestOptions, decoder: ChunkDecoder[T]) -> AsyncStream[T]:
        opts = opts.with_(stream=True)
        with self._track(opts) as call:
            response = await self._adrive(self._attempts(opts), stream=True)
        return AsyncStream(response, decoder, **self._stream_options(opts, call))


class _Body:
    """A response body read chunk by chunk under the call's total deadline (the one rule for the
    sync and async attempts). An error response of a stream is read best effort."""

    def __init__(self, client: APIClient, response: httpx.Response, action: _loop.Attempt, stream: bool) -> None:
        self.response = response
        self.action = action
        self.stream = stream
        self.clock = client.clock
        self.context = {"method": response.request.method, "url": redact_url(str(response.request.url)),
                        "provider": client.provider}
        self.chunks: list[bytes] = []

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.action.check(self.clock, "reading the body", self.context)

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if exc is None:
            self.response._content = b"".join(self.chunks)
            return False
        if self.stream and isinstance(exc, httpx.HTTPError):
            self.response._content = b""
            return True
        return False
