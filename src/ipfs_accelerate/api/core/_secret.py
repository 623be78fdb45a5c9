"""API keys: a masking ``Secret`` type, a rotating key pool, and redaction helpers.

Why a type and not a str: a key held as ``str`` leaks through any repr, f-string or ``vars()``
dump; a ``Secret`` only gives its value to :meth:`Secret.reveal`, which the client calls when it
builds the auth header and nowhere else.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["KeyPool", "Redactor", "Secret", "redact_headers", "redact_url"]

MASK = "***"

# Headers that carry credentials in at least one of the twelve protocols.
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "x-amz-security-token",
    }
)
# Query parameters that carry credentials (Gemini accepts ?key=, S3 presigned URLs sign).
SENSITIVE_QUERY = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "token",
        "access_token",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "signature",
    }
)


class Secret:
    """A string whose repr and str are masked; ``reveal()`` returns the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("Secret needs a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Refuse to travel through pickle: results and reports are pickled between workers.
        raise TypeError("Secret values are not picklable")


class KeyPool:
    """Several keys for one provider, handed out round robin.

    A key that got 401 is set aside for good; a key that got 429 cools down until its
    Retry-After passed. When every key is set aside or cooling, the one that recovers
    first is used (a request is never refused for lack of a key).
    """

    def __init__(self, keys: Iterable[str | Secret]) -> None:
        self._keys = [Secret(k) for k in keys if k]
        if not self._keys:
            raise ValueError("KeyPool needs at least one non-empty key")
        self._next = 0
        self._invalid: set[int] = set()
        self._cooling_until: dict[int, float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyPool({len(self._keys)} keys, {len(self._invalid)} invalid)"

    @property
    def secrets(self) -> Sequence[Secret]:
        return tuple(self._keys)

    def index(self, key: Secret) -> int:
        return self._keys.index(key)

    def next(self, now: float) -> Secret:
        """The next usable key, round robin."""
        with self._lock:
            n = len(self._keys)
            for step in range(n):
                i = (self._next + step) % n
                if i in self._invalid or self._cooling_until.get(i, 0.0) > now:
                    continue
                self._next = (i + 1) % n
                return self._keys[i]
            # Nothing usable: the key whose cool-down ends first, else any (the server decides).
            cooling = [(t, i) for i, t in self._cooling_until.items() if i not in self._invalid]
            i = min(cooling)[1] if cooling else self._next
            self._next = (i + 1) % n
            return self._keys[i]

    def has_alternative(self, key: Secret, now: float) -> bool:
        """Whether another key than ``key`` is usable right now."""
        with self._lock:
            return any(
                k != key and i not in self._invalid and self._cooling_until.get(i, 0.0) <= now
                for i, k in enumerate(self._keys)
            )

    def mark_invalid(self, key: Secret) -> None:
        with self._lock:
            self._invalid.add(self._keys.index(key))

    def cool_down(self, key: Secret, until: float) -> None:
        with self._lock:
            i = self._keys.index(key)
            self._cooling_until[i] = max(self._cooling_until.get(i, 0.0), until)


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """A copy with every credential-bearing header masked."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: (MASK if k.lower() in SENSITIVE_HEADERS else v) for k, v in items}


def redact_url(url: str) -> str:
    """The URL with credential-bearing query parameters and userinfo masked."""
    parts = urlsplit(str(url))
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if k.lower() in SENSITIVE_QUERY else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class Redactor:
    """Scrubs known secret values out of any text (error bodies, messages, log lines).

    Servers sometimes echo the key back in an error body; header masking alone would miss it.
    """

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        values = sorted(
            {s.reveal() for s in secrets if len(s.reveal()) >= 4}, key=len, reverse=True
        )
        self._pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)
