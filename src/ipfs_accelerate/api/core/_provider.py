"""``Provider``: the base class of every httpx-based API backend.

A provider subclass only maps requests and responses. It declares data (``name``, auth header,
retry policy, path prefix) and writes methods like::

    def chat(self, messages, *, model=None, **params) -> ChatCompletion:
        return self._call(self._chat(messages, model, params))

    async def achat(self, messages, *, model=None, **params) -> ChatCompletion:
        return await self._acall(self._chat(messages, model, params))

where ``_chat`` returns a :class:`Call` (request options + how to parse + where the usage is).
Everything else (keys, queue, retries, breaker, stats, timeouts, redaction) is the core's.

Configuration comes from constructor arguments, else from the provider's usual environment
variables as listed in the registry (``ipfs_accelerate.api.providers.PROVIDERS``), read when the
provider is built (never at import time). ``env=`` replaces ``os.environ`` for tests.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import httpx

from ._client import APIClient, RequestOptions, default_error_message
from ._config import OPENAI_RETRY, Priority, RetryPolicy, Timeout
from ._errors import APIError, APIStatusError, AuthenticationError, NotFoundError
from ._options import Closing, HTTPOptions
from ._secret import KeyPool, Secret
from ._stats import StatsSnapshot
from ._streaming import AsyncStream, ChunkDecoder, Stream
from ._types import Usage

__all__ = ["Call", "Provider", "RegistryEntry", "StreamCall"]

T = TypeVar("T")


class RegistryEntry(Protocol):
    """What the constructor reads from a provider's registry entry."""

    key_env: tuple[str, ...]
    url_env: tuple[str, ...]
    key_required: bool
    default_base_url: str


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """A request plus how to turn its 2xx response into a typed result."""

    options: RequestOptions
    parse: Callable[[httpx.Response], T]
    usage: Callable[[T], Usage | None] | None = None


@dataclass(frozen=True, slots=True)
class StreamCall(Generic[T]):
    """A streaming request plus a factory for its chunk decoder (one decoder per stream)."""

    options: RequestOptions
    decoder: Callable[[], ChunkDecoder[T]]


KeyArg = str | Secret | Sequence[str | Secret] | None


class Provider(Closing):
    """Base class; see the module docstring."""

    name: ClassVar[str] = ""
    #: appended to the base URL (Groq's SDK adds ``/openai/v1`` to whatever base URL it gets)
    path_prefix: ClassVar[str] = ""
    retry_policy: ClassVar[RetryPolicy] = OPENAI_RETRY
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id", "request-id")
    send_idempotency_key: ClassVar[bool] = True
    default_model: ClassVar[str | None] = None
    #: the provider's registry entry (``ipfs_accelerate.api.providers.PROVIDERS[name]``): key and
    #: URL variables, default URL. Each provider module sets it, so the core never imports the
    #: providers package.
    info: ClassVar[RegistryEntry | None] = None

    def __init__(
        self,
        *,
        api_key: KeyArg = None,
        base_url: str | None = None,
        model: str | None = None,
        default_headers: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        """``**options``: the fields of :class:`HTTPOptions` (timeout, max_retries, queue,
        breaker, clock, rng, transports, ...); ``retry_policy=None`` is the provider's own."""
        HTTPOptions.of(options, type(self).__name__)  # a typo fails here, naming the provider
        env = os.environ if env is None else env
        keys = _resolve_keys(api_key, self.info.key_env if self.info else (), env)
        if not keys and self.info is not None and self.info.key_required:
            names = " or ".join(self.info.key_env)
            raise AuthenticationError(f"{self.name}: no API key; pass api_key= or set {names}")
        if base_url is None and self.info is not None:
            base_url = next((env[v] for v in self.info.url_env if env.get(v)), None)
        if base_url is None:
            base_url = self.info.default_base_url if self.info else ""
        base_url = base_url.rstrip("/")
        if self.path_prefix and not base_url.endswith(self.path_prefix):
            base_url += self.path_prefix
        self.model = model or self.default_model
        self._call_defaults: dict[str, Any] = {}
        self._client = APIClient(
            base_url=base_url,
            provider=self.name or type(self).__name__,
            keys=KeyPool(keys) if keys else None,
            auth=self.auth_headers,
            default_headers={**self.extra_headers(), **(default_headers or {})},
            request_id_headers=self.request_id_headers,
            error_message=self.error_message,
            send_idempotency_key=self.send_idempotency_key,
            error_class=self.error_class,
            **{**options, "retry_policy": options.get("retry_policy") or self.retry_policy},
        )

    # -- hooks for subclasses --------------------------------------------------------------------

    def auth_headers(self, key: Secret) -> dict[str, str]:
        """Headers that carry ``key`` (default: ``Authorization: Bearer``)."""
        return {"Authorization": f"Bearer {key.reveal()}"}

    def extra_headers(self) -> dict[str, str]:
        """Constant headers the protocol needs (e.g. ``anthropic-version``)."""
        return {}

    def error_message(self, body: Any) -> str | None:
        """The human message inside an error body."""
        return default_error_message(body)

    def error_class(self, status: int, body: Any) -> type[APIStatusError] | None:
        """The error class when the body says more than the status (``None``: by status)."""
        return None

    # -- public surface shared by all providers --------------------------------------------------

    @property
    def client(self) -> APIClient:
        return self._client

    @property
    def base_url(self) -> str:
        return self._client.base_url

    def __repr__(self) -> str:
        keys = len(self._client.keys) if self._client.keys else 0
        return f"{type(self).__name__}(base_url={self._client.base_url!r}, keys={keys})"

    def with_options(
        self,
        *,
        priority: Priority | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> Self:
        """A view of this provider with per-call overrides; it shares the queue, breakers,
        stats and connections."""
        clone = copy.copy(self)
        clone._call_defaults = dict(self._call_defaults)
        if priority is not None:
            clone._call_defaults["priority"] = priority
        if timeout is not None:
            clone._call_defaults["timeout"] = Timeout.of(timeout)
        if max_retries is not None:
            clone._call_defaults["max_retries"] = max_retries
        return clone

    def stats(self) -> dict[str, StatsSnapshot]:
        """Per-endpoint counters (requests, retries, failures, latency p50/p95, tokens)."""
        return self._client.stats()

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- helpers for subclasses ------------------------------------------------------------------

    def _model(self, model: str | None) -> str:
        chosen = model or self.model
        if not chosen:
            raise ValueError(f"{self.name}: no model; pass model= here or to the constructor")
        return chosen

    def _options(self, method: str, path: str, **kwargs: Any) -> RequestOptions:
        """RequestOptions with this view's per-call defaults applied."""
        merged = {**self._call_defaults, **{k: v for k, v in kwargs.items() if v is not None}}
        return RequestOptions(method, path, **merged)

    def _call(self, call: Call[T]) -> T:
        return self._client.request(call.options, call.parse, call.usage)

    async def _acall(self, call: Call[T]) -> T:
        return await self._client.arequest(call.options, call.parse, call.usage)

    def _stream(self, call: StreamCall[T]) -> Stream[T]:
        return self._client.stream(call.options, call.decoder())

    async def _astream(self, call: StreamCall[T]) -> AsyncStream[T]:
        return await self._client.astream(call.options, call.decoder())

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any request on this provider's base URL with the full policy; returns the response
        (for endpoints the typed methods do not cover)."""
        return self._call(Call(self._options(method, path, **kwargs), parse=lambda r: r))

    async def arequest(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self._acall(Call(self._options(method, path, **kwargs), parse=lambda r: r))

    # -- health: one helper for every provider that has a liveness route ------------------------

    def _probe(self, path: str, endpoint: str | None = None) -> Call[bool]:
        """A GET that is True on any 2xx (not retried: a health check reports, it does not wait)."""
        return Call(self._options("GET", path, endpoint=endpoint, max_retries=0), parse=lambda r: True)

    def _health_probes(self) -> list[Call[bool]]:
        """The probes :meth:`health` tries in order; a 404 moves on to the next one."""
        raise NotImplementedError(f"{self.name} has no health route")

    def health(self) -> bool:
        """True when the server answers its health probe with 2xx; False on any error status or
        connection failure (a 404 falls back to the next probe, where there is one)."""
        for probe in self._health_probes():
            try:
                return self._call(probe)
            except NotFoundError:
                continue
            except APIError:
                return False
        return False

    async def ahealth(self) -> bool:
        for probe in self._health_probes():
            try:
                return await self._acall(probe)
            except NotFoundError:
                continue
            except APIError:
                return False
        return False


def _resolve_keys(api_key: KeyArg, key_env: Iterable[str], env: Mapping[str, str]) -> list[Secret]:
    if api_key is None:
        raw = next((env[v] for v in key_env if env.get(v)), None)
        if raw is None:
            return []
        return [Secret(k.strip()) for k in raw.split(",") if k.strip()]
    if isinstance(api_key, str | Secret):
        api_key = [api_key]
    return [Secret(k) for k in api_key if k]
