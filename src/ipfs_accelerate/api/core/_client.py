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

import functools
import logging
import os
import random
import ssl
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, TypeVar

import httpx

from ._breaker import CircuitBreaker
from ._clock import Clock, SystemClock
from ._config import (
    DEFAULT_BREAKER,
    DEFAULT_TIMEOUT,
    IDEMPOTENCY_HEADER,
    OPENAI_RETRY,
    RETRY_COUNT_HEADER,
    BreakerConfig,
    Priority,
    QueueConfig,
    RetryPolicy,
    Timeout,
)
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ResponseDecodeError,
    StreamError,
    make_status_error,
)
from ._queue import RequestQueue, Ticket
from ._retry import decide_retry
from ._secret import KeyPool, Redactor, Secret, redact_headers, redact_url
from ._stats import StatsRegistry, StatsSnapshot
from ._streaming import AsyncStream, ChunkDecoder, Stream
from ._types import Usage

__all__ = ["APIClient", "RequestOptions", "default_error_message"]

log = logging.getLogger("ipfs_accelerate.api")

T = TypeVar("T")
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


class APIClient:
    """Policy around one base URL; providers call :meth:`request` / :meth:`stream` (and twins)."""

    def __init__(
        self,
        *,
        base_url: str,
        provider: str = "api",
        keys: KeyPool | None = None,
        auth: Callable[[Secret], Mapping[str, str]] | None = None,
        default_headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy = OPENAI_RETRY,
        max_retries: int | None = None,
        queue: QueueConfig | RequestQueue | None = None,
        breaker: BreakerConfig | None = DEFAULT_BREAKER,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        request_id_headers: tuple[str, ...] = ("x-request-id", "request-id"),
        error_message: Callable[[Any], str | None] = default_error_message,
        send_idempotency_key: bool = True,
        error_class: Callable[[int, Any], type[APIStatusError] | None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.provider = provider
        self.keys = keys
        self._auth = auth or (lambda key: {"Authorization": f"Bearer {key.reveal()}"})
        self.default_headers = {"User-Agent": USER_AGENT, **(default_headers or {})}
        self.timeout = Timeout.of(timeout)
        if max_retries is not None:
            retry_policy = retry_policy.with_(max_retries=max_retries)
        self.retry_policy = retry_policy
        self.clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        if isinstance(queue, RequestQueue):
            self.queue = queue
        else:
            self.queue = RequestQueue(queue or QueueConfig(), self.clock)
        self._breaker_config = breaker
        self._breakers: dict[str, CircuitBreaker] = {}
        self._stats = StatsRegistry()
        self._transport = transport
        self._async_transport = async_transport
        if async_transport is None and isinstance(transport, httpx.AsyncBaseTransport):
            self._async_transport = transport
        self._http = http_client
        self._ahttp = async_http_client
        self._owns_http = http_client is None
        self._owns_ahttp = async_http_client is None
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

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            transport = (
                self._transport if isinstance(self._transport, httpx.BaseTransport) else None
            )
            self._http = httpx.Client(
                transport=transport,
                verify=shared_ssl_context(),
                limits=self._limits(),
                timeout=None,
            )
        return self._http

    @property
    def ahttp(self) -> httpx.AsyncClient:
        if self._ahttp is None:
            transport = self._async_transport
            self._ahttp = httpx.AsyncClient(
                transport=transport,
                verify=shared_ssl_context(),
                limits=self._limits(),
                timeout=None,
            )
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
        if self._breaker_config is None:
            return None
        b = self._breakers.get(endpoint)
        if b is None:
            b = self._breakers.setdefault(
                endpoint, CircuitBreaker(endpoint, self._breaker_config, self.clock)
            )
        return b

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

    # -- the retry loop --------------------------------------------------------------------------

    def _attempts(self, opts: RequestOptions) -> Generator[Any, Any, httpx.Response]:
        """Decide every step of one logical request; yields actions, returns the 2xx response.

        For a streaming request the returned response is open and still holds its queue slot;
        the :class:`Stream` releases it.
        """
        clock = self.clock
        policy = self.retry_policy
        max_retries = policy.max_retries if opts.max_retries is None else opts.max_retries
        timeout = opts.timeout or self.timeout
        endpoint = self.endpoint_name(opts)
        stats = self._stats.get(endpoint)
        breaker = self.breaker(endpoint)
        deadline = clock.now() + timeout.total if timeout.total is not None else None
        idem = opts.idempotency_key
        if idem is None and self.send_idempotency_key and opts.method.upper() != "GET":
            idem = f"ipfs-accelerate-retry-{uuid.uuid4()}"
        ticket = self.queue.ticket(opts.priority)
        key = self.keys.next(clock.now()) if self.keys else None
        retries_taken = 0
        last_error: APIError | None = None
        while True:
            remaining = deadline - clock.now() if deadline is not None else None
            if remaining is not None and remaining <= 0:
                raise APITimeoutError(
                    f"{self.provider}: total timeout of {timeout.total:g}s spent",
                    **self._context(opts),
                )
            yield _Acquire(ticket, retries_taken == 0, remaining)
            holding = True
            admitted = False
            response: httpx.Response | None = None
            error: APIError
            try:
                if breaker is not None:
                    try:
                        breaker.before_request()
                    except APIError as exc:
                        exc.__dict__.update(self._context(opts))
                        if last_error is not None:  # opened by our own failed attempts
                            raise exc from last_error
                        raise
                    admitted = True
                if deadline is not None:
                    remaining = deadline - clock.now()
                request = self._build_request(opts, key, retries_taken, idem, remaining)
                stats.attempted()
                try:
                    response = yield _Send(request, opts.stream)
                except httpx.RequestError as exc:
                    error = self._transport_error(exc, opts)
                    if breaker is not None:
                        breaker.record_failure()
                else:
                    if response.is_success:
                        if breaker is not None:
                            breaker.record_success()
                        if opts.stream:
                            holding = False  # the Stream owns the slot now
                        return response
                    if opts.stream:
                        yield _ReadClose(response)
                    error = self.status_error(response, opts)
                    if breaker is not None:
                        if response.status_code >= 500 or response.status_code == 408:
                            breaker.record_failure()
                        else:
                            breaker.record_success()
            except BaseException:
                if breaker is not None and admitted:
                    breaker.release_trial()
                raise
            finally:
                if holding:
                    self.queue.release()

            last_error = error
            status = response.status_code if response is not None else None
            headers = response.headers if response is not None else None
            decision = decide_retry(
                policy,
                status=status,
                headers=headers,
                retries_taken=retries_taken,
                max_retries=max_retries,
                wall_now=clock.time(),
                rand=self._rng.random(),
            )
            rotate = False
            # a rejected key: 401, or what the provider's body says is one (Gemini's 400)
            key_rejected = status == 401 or isinstance(error, AuthenticationError)
            if self.keys is not None and key is not None and (key_rejected or status == 429):
                rotate = True
                if key_rejected:
                    self.keys.mark_invalid(key)
                    if retries_taken < max_retries and self.keys.has_alternative(key, clock.now()):
                        decision = replace(decision, retry=True, delay=0.0, reason="key rejected: next key")
                else:
                    wait = (
                        decision.retry_after
                        if decision.retry_after and decision.retry_after > 0
                        else decision.delay
                    )
                    self.keys.cool_down(key, clock.now() + max(wait, policy.initial_delay))
            if not decision.retry:
                if retries_taken:
                    log.info(
                        "%s: giving up after %d retries: %s (%s)",
                        endpoint,
                        retries_taken,
                        type(error).__name__,
                        decision.reason,
                    )
                raise error
            if deadline is not None and clock.now() + decision.delay >= deadline:
                log.info("%s: not retrying, the total timeout would pass first", endpoint)
                raise error
            log.info(
                "%s: retry %d/%d in %.3fs after %s (%s)",
                endpoint,
                retries_taken + 1,
                max_retries,
                decision.delay,
                status if status is not None else type(error).__name__,
                decision.reason,
            )
            stats.retried()
            if decision.delay > 0:
                yield _Sleep(decision.delay)
            retries_taken += 1
            if rotate and self.keys is not None:
                key = self.keys.next(clock.now())

    def _drive(self, gen: Generator[Any, Any, httpx.Response]) -> httpx.Response:
        """Perform the loop's actions synchronously."""
        value: Any = None
        exc: BaseException | None = None
        while True:
            try:
                action = gen.throw(exc) if exc is not None else gen.send(value)
            except StopIteration as stop:
                return stop.value
            value, exc = None, None
            try:
                kind = type(action)
                if kind is _Send:
                    value = self.http.send(action.request, stream=action.stream)
                elif kind is _Acquire:
                    self.queue.acquire(action.ticket, first=action.first, timeout=action.timeout)
                elif kind is _Sleep:
                    self.clock.sleep(action.seconds)
                elif kind is _ReadClose:
                    try:
                        action.response.read()
                    except httpx.HTTPError:
                        pass
                    finally:
                        action.response.close()
            except BaseException as e:  # handed back to the loop, which decides
                exc = e

    async def _adrive(self, gen: Generator[Any, Any, httpx.Response]) -> httpx.Response:
        """Perform the loop's actions on the event loop."""
        value: Any = None
        exc: BaseException | None = None
        while True:
            try:
                action = gen.throw(exc) if exc is not None else gen.send(value)
            except StopIteration as stop:
                return stop.value
            value, exc = None, None
            try:
                kind = type(action)
                if kind is _Send:
                    value = await self.ahttp.send(action.request, stream=action.stream)
                elif kind is _Acquire:
                    await self.queue.aacquire(
                        action.ticket, first=action.first, timeout=action.timeout
                    )
                elif kind is _Sleep:
                    await self.clock.asleep(action.seconds)
                elif kind is _ReadClose:
                    try:
                        await action.response.aread()
                    except httpx.HTTPError:
                        pass
                    finally:
                        await action.response.aclose()
            except BaseException as e:
                exc = e

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

    def _finish(
        self,
        opts: RequestOptions,
        started: float,
        error: BaseException | None,
        usage: Usage | None,
    ) -> None:
        stats = self._stats.get(self.endpoint_name(opts))
        stats.finished(
            self.clock.now() - started,
            error=error,
            tokens_in=usage.input_tokens if usage else None,
            tokens_out=usage.output_tokens if usage else None,
        )

    def request(
        self,
        opts: RequestOptions,
        parse: Callable[[httpx.Response], T] = lambda r: r.json(),
        usage: Callable[[T], Usage | None] | None = None,
    ) -> T:
        """Send with retries and return ``parse(response)`` for the 2xx response."""
        started = self.clock.now()
        self._stats.get(self.endpoint_name(opts)).started()
        try:
            response = self._drive(self._attempts(opts))
            result = self._parse(response, opts, parse)
        except BaseException as exc:
            self._finish(opts, started, exc, None)
            raise
        self._finish(opts, started, None, usage(result) if usage else None)
        return result

    async def arequest(
        self,
        opts: RequestOptions,
        parse: Callable[[httpx.Response], T] = lambda r: r.json(),
        usage: Callable[[T], Usage | None] | None = None,
    ) -> T:
        started = self.clock.now()
        self._stats.get(self.endpoint_name(opts)).started()
        try:
            response = await self._adrive(self._attempts(opts))
            result = self._parse(response, opts, parse)
        except BaseException as exc:
            self._finish(opts, started, exc, None)
            raise
        self._finish(opts, started, None, usage(result) if usage else None)
        return result

    def _on_stream_finish(
        self, opts: RequestOptions, started: float
    ) -> Callable[[BaseException | None, Usage | None], None]:
        breaker = self.breaker(self.endpoint_name(opts))

        def finish(error: BaseException | None, usage: Usage | None) -> None:
            self.queue.release()
            if breaker is not None and isinstance(error, StreamError):
                breaker.record_failure()
            self._finish(opts, started, error, usage)

        return finish

    def stream(self, opts: RequestOptions, decoder: ChunkDecoder[T]) -> Stream[T]:
        """Send with retries (only until the response headers arrive) and return its stream."""
        opts = opts.with_(stream=True)
        started = self.clock.now()
        self._stats.get(self.endpoint_name(opts)).started()
        try:
            response = self._drive(self._attempts(opts))
        except BaseException as exc:
            self._finish(opts, started, exc, None)
            raise
        return Stream(
            response,
            decoder,
            on_finish=self._on_stream_finish(opts, started),
            redact=self.redact,
            context=self._context(opts),
        )

    async def astream(self, opts: RequestOptions, decoder: ChunkDecoder[T]) -> AsyncStream[T]:
        opts = opts.with_(stream=True)
        started = self.clock.now()
        self._stats.get(self.endpoint_name(opts)).started()
        try:
            response = await self._adrive(self._attempts(opts))
        except BaseException as exc:
            self._finish(opts, started, exc, None)
            raise
        return AsyncStream(
            response,
            decoder,
            on_finish=self._on_stream_finish(opts, started),
            redact=self.redact,
            context=self._context(opts),
        )
