"""Typed errors raised by every API client.

The tree (one factory, :func:`make_status_error`, maps an HTTP status to its class)::

    APIError                      base: message, status, request_id, body (excerpt), method, url
    ├── APIConnectionError        no response arrived (refused, reset, DNS, protocol error)
    │   └── APITimeoutError       connect/read/write/pool timeout, or the total budget ran out
    ├── APIStatusError            the server answered with a non-2xx status
    │   ├── BadRequestError       400, 422
    │   ├── AuthenticationError   401
    │   ├── PermissionDeniedError 403
    │   ├── NotFoundError         404
    │   ├── ConflictError         409
    │   ├── RateLimitError        429
    │   └── ServerError           5xx (529 "overloaded" included)
    ├── ResponseDecodeError       a 2xx whose body is not what the protocol promises (bad JSON)
    ├── StreamError               a stream that is malformed, truncated, or failed mid-way
    │   └── StreamTimeoutError    a stream limit passed (also an APITimeoutError): total, first
    │                             event, or gap between events
    ├── CircuitOpenError          the endpoint's breaker is open: nothing was sent
    └── QueueFullError            the request queue is at its limit: nothing was sent

Why no raw ``httpx.Request`` on the error: its headers hold the API key, and errors end up in logs
and reports. Errors carry the method, a query-redacted URL, redacted response headers and a body
excerpt scrubbed of every configured key instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, Unpack

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "QueueFullError",
    "RateLimitError",
    "ResponseDecodeError",
    "ServerError",
    "StreamError",
    "StreamTimeoutError",
    "make_status_error",
]

BODY_EXCERPT_CHARS = 500


class APIError(Exception):
    """Base of every error an API client raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        body: str | None = None,
        method: str | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.body = body[:BODY_EXCERPT_CHARS] if body else body
        self.method = method
        self.url = url
        self.headers: dict[str, str] = dict(headers or {})
        self.provider = provider

    @property
    def status_code(self) -> int | None:
        """Alias used by the official SDKs."""
        return self.status

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None and f"{self.status}" not in self.message:
            parts.append(f"status={self.status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable across process pools (the runner uses workers).
        return (_rebuild, (type(self), self.message, dict(vars(self))))


def _rebuild(cls: type[APIError], message: str, state: dict[str, Any]) -> APIError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class APIConnectionError(APIError):
    """No response arrived: connection refused or reset, DNS, protocol violation."""


class APITimeoutError(APIConnectionError):
    """A connect/read/write/pool timeout, or one of the call's deadlines was spent.

    ``limit`` names the limit that fired when it is one of ours: ``"total"`` (the whole call),
    ``"first_event"`` / ``"gap"`` (a stream's time to its first event / longest silence);
    ``elapsed`` is how long the call (or, for ``gap``, the silence) had lasted when it fired.
    """

    def __init__(
        self, message: str, *, limit: str | None = None, elapsed: float | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.limit = limit
        self.elapsed = elapsed


class APIStatusError(APIError):
    """The server answered with a non-success status."""


class BadRequestError(APIStatusError):
    """400 or 422: the request is wrong; retrying cannot help."""


class AuthenticationError(APIStatusError):
    """401: the key is missing or invalid."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: unknown model or path."""


class ConflictError(APIStatusError):
    """409: a conflicting request is in progress (retried, as the official SDKs do)."""


class RateLimitError(APIStatusError):
    """429: too many requests (or Retry-After above the cap we are willing to wait)."""


class ServerError(APIStatusError):
    """5xx, including Anthropic's 529 "overloaded"."""


class ResponseDecodeError(APIError):
    """A success status whose body cannot be decoded as the protocol promises."""


class StreamError(APIError):
    """A stream that is malformed, truncated before its terminal event, or failed mid-way.

    Raised instead of ending the iteration quietly: a partial answer is never a success.
    """


class StreamTimeoutError(StreamError, APITimeoutError):
    """A stream outlived one of its limits (``limit``: total, first_event or gap)."""


class CircuitOpenError(APIError):
    """The endpoint's circuit breaker is open; the request was not sent.

    ``retry_in`` says how many seconds until the breaker lets a trial request through.
    """

    def __init__(self, message: str, *, retry_in: float = 0.0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_in = retry_in


class QueueFullError(APIError):
    """The request queue already holds its maximum of waiting requests; nothing was sent."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The class for an HTTP status (>= 500 → ServerError, other codes → APIStatusError)."""
    if status >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status, APIStatusError)


class ErrorContext(TypedDict, total=False):
    """Where an error happened, as :class:`APIError` takes it (every key optional)."""

    request_id: str | None
    body: str | None
    method: str | None
    url: str | None
    headers: Mapping[str, str] | None
    provider: str | None


def make_status_error(
    status: int,
    message: str,
    *,
    cls: type[APIStatusError] | None = None,
    **context: Unpack[ErrorContext],
) -> APIStatusError:
    """The one place a status becomes an exception; ``cls`` overrides the status's class where a
    provider's body says more than its status (Gemini: a bad key is 400 ``API_KEY_INVALID``)."""
    cls = cls or status_error_class(status)
    return cls(message, status=status, **context)
