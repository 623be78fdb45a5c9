"""Faults a fake server can inject, and the one-line spec that names each of them.

A spec is ``KIND[;key=value]...`` where KIND is an HTTP status (``429``) or one of the names in
`KINDS`. The same text is accepted by `FakeServer.inject`, the ``x-fake-fault`` request header, the
``/__fake__/faults`` control endpoint and ``ipfs-accelerate fake-server --fault``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

KINDS: dict[str, str] = {
    "status": "answer with an HTTP error status and the provider's error body (KIND may be the number)",
    "reset": "close the socket with a TCP RST before any response byte",
    "disconnect": "close the socket (FIN) before any response byte",
    "hang": "accept the request and send nothing for `seconds`, then disconnect",
    "slow": "wait `seconds` before the first response byte, then answer normally",
    "truncate": "stream: end cleanly after `after` events (no [DONE]/message_stop/done); "
    "non-stream: send half the body then close",
    "cut": "stream: close the socket in the middle of event `after`; non-stream: as truncate",
    "stall": "stream: send `after` events, then nothing for `seconds`, then close",
    "trickle": "send the whole response (body or stream) one byte every `seconds` (default 0.2)",
    "malformed-sse": "stream: event `after` carries invalid JSON; the rest of the stream is normal",
    "malformed-json": "200 with content-type application/json and a body that is not JSON",
    "html": "status (default 502) with a text/html error page, as a proxy in front would send",
    "stream-error": "stream: after `after` events, the provider's in-stream error event "
    "(status default 500; 529 gives Anthropic's overloaded_error)",
}

_ALIASES = {
    "malformed_sse": "malformed-sse",
    "malformed_json": "malformed-json",
    "stream_error": "stream-error",
    "slow-first-byte": "slow",
    "timeout": "hang",
    "connection-reset": "reset",
}


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour; build with the named constructors or `Fault.parse`."""

    kind: str
    status: int | None = None
    retry_after: str | None = None  # sent verbatim: "1", "1.5", an HTTP date, "soon", ...
    retry_after_ms: str | None = None
    should_retry: str | None = None  # x-should-retry: "true" / "false"
    seconds: float = 0.0
    after: int = 1
    message: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.kind == "status" and self.status is None:
            raise ValueError("a status fault needs a status")

    # -- named constructors ------------------------------------------------------------------
    @classmethod
    def http(
        cls,
        status: int,
        *,
        retry_after: str | float | None = None,
        retry_after_ms: str | float | None = None,
        should_retry: bool | str | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """An error status with the provider's error body and optional retry headers."""
        sr = (
            should_retry
            if should_retry is None or isinstance(should_retry, str)
            else str(should_retry).lower()
        )
        return cls(
            "status",
            status=status,
            retry_after=None if retry_after is None else str(retry_after),
            retry_after_ms=None if retry_after_ms is None else str(retry_after_ms),
            should_retry=sr,
            message=message,
            headers=tuple((headers or {}).items()),
        )

    @classmethod
    def rate_limit(
        cls, retry_after: str | float | None = None, *, retry_after_ms: str | float | None = None
    ) -> Fault:
        return cls.http(429, retry_after=retry_after, retry_after_ms=retry_after_ms)

    @classmethod
    def reset(cls) -> Fault:
        return cls("reset")

    @classmethod
    def disconnect(cls) -> Fault:
        return cls("disconnect")

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        return cls("hang", seconds=seconds)

    @classmethod
    def slow_first_byte(cls, seconds: float) -> Fault:
        return cls("slow", seconds=seconds)

    @classmethod
    def truncate(cls, after: int = 1) -> Fault:
        return cls("truncate", after=after)

    @classmethod
    def cut(cls, after: int = 1) -> Fault:
        return cls("cut", after=after)

    @classmethod
    def stall(cls, after: int = 1, seconds: float = 5.0) -> Fault:
        return cls("stall", after=after, seconds=seconds)

    @classmethod
    def trickle(cls, seconds: float = 0.2) -> Fault:
        return cls("trickle", seconds=seconds)

    @classmethod
    def malformed_sse(cls, after: int = 1) -> Fault:
        return cls("malformed-sse", after=after)

    @classmethod
    def malformed_json(cls) -> Fault:
        return cls("malformed-json")

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        return cls("html", status=status)

    @classmethod
    def stream_error(cls, status: int = 500, after: int = 1, message: str | None = None) -> Fault:
        return cls("stream-error", status=status, after=after, message=message)

    # -- text form ---------------------------------------------------------------------------
    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Parse ``KIND[;key=value]...``; keys: retry-after, retry-after-ms, x-should-retry,
        seconds, after, status, message, and ``header.NAME=value`` for extra headers.
        ``times=N`` is accepted and ignored here (it belongs to the caller)."""
        kind, opts = parse_spec(spec)
        kw: dict[str, object] = {}
        extra: list[tuple[str, str]] = []
        if kind.isdigit():
            kw["status"] = int(kind)
            kind = "status"
        kind = _ALIASES.get(kind, kind)
        for key, value in opts.items():
            if key == "retry-after":
                kw["retry_after"] = value
            elif key == "retry-after-ms":
                kw["retry_after_ms"] = value
            elif key in ("x-should-retry", "should-retry"):
                kw["should_retry"] = value
            elif key == "seconds":
                kw["seconds"] = float(value)
            elif key == "after":
                kw["after"] = int(value)
            elif key == "status":
                kw["status"] = int(value)
            elif key == "message":
                kw["message"] = value
            elif key.startswith("header."):
                extra.append((key[len("header.") :], value))
            elif key == "times":
                continue
            else:
                raise ValueError(f"unknown fault option {key!r} in {spec!r}")
        if extra:
            kw["headers"] = tuple(extra)
        if kind == "trickle" and "seconds" not in kw:
            kw["seconds"] = 0.2
        if kind in ("html", "stream-error") and "status" not in kw:
            kw["status"] = 502 if kind == "html" else 500
        return cls(kind, **kw)  # type: ignore[arg-type]

    def spec(self) -> str:
        """The text form (round-trips through `parse`)."""
        head = str(self.status) if self.kind == "status" else self.kind
        parts = [head]
        defaults = Fault("status", status=0) if self.kind == "status" else Fault(self.kind)
        for name, key in (
            ("retry_after", "retry-after"),
            ("retry_after_ms", "retry-after-ms"),
            ("should_retry", "x-should-retry"),
            ("seconds", "seconds"),
            ("after", "after"),
            ("message", "message"),
        ):
            value = getattr(self, name)
            if value != getattr(defaults, name):
                parts.append(f"{key}={value}")
        if self.kind != "status" and self.status is not None:
            parts.append(f"status={self.status}")
        parts.extend(f"header.{k}={v}" for k, v in self.headers)
        return ";".join(parts)

    def with_(self, **changes: object) -> Fault:
        return replace(self, **changes)  # type: ignore[arg-type]


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``KIND;k=v;k2=v2`` into the kind and its options (keys lower-cased)."""
    parts = [p.strip() for p in spec.split(";") if p.strip()]
    if not parts:
        raise ValueError("empty fault spec")
    opts: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"fault option {part!r} needs key=value")
        opts[key.strip().lower()] = value.strip()
    return parts[0].lower(), opts
