"""The HTTP machinery under every fake server: threads, routing, recording and fault injection.

Built on the stdlib (`http.server`) rather than an ASGI stack because the faults need the raw
socket: a TCP RST before the status line, a first byte that never comes, a chunked stream cut in
the middle of an event. Each connection gets a thread (keep-alive, HTTP/1.1), so 64+ concurrent
clients are served; the listen backlog is deep enough for bursts of a thousand.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.server
import json
import re
import select
import selectors
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import parse_qs

from ._faults import Fault, parse_spec

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"}
)
IDEMPOTENCY_HEADERS = ("idempotency-key", "x-idempotency-key")
_REASONS = {529: "Overloaded", 499: "Client Closed Request"}
_HTML_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _REASONS.get(status, "Unknown")


class Headers(dict[str, str]):
    """Lower-cased request headers whose repr/str hides secrets; the raw values stay readable."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        for k, v in items:
            k = k.lower()
            self[k] = f"{self[k]}, {v}" if k in self else v

    def redacted(self) -> dict[str, str]:
        return {k: ("<redacted>" if k in SECRET_HEADERS else v) for k, v in self.items()}

    def __repr__(self) -> str:
        return repr(self.redacted())

    __str__ = __repr__


SECRET_QUERY = frozenset({"key", "api_key", "apikey", "access_token", "token"})


class Query(dict[str, list[str]]):
    """Parsed query string whose repr hides credentials passed as ``?key=`` (Gemini allows it)."""

    def redacted(self) -> dict[str, list[str]]:
        return {k: (["<redacted>"] if k.lower() in SECRET_QUERY else v) for k, v in self.items()}

    def __repr__(self) -> str:
        return repr(self.redacted())

    __str__ = __repr__


class HTTPError(Exception):
    """Raised by route handlers; rendered with the family's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


@dataclass
class Request:
    """What a route handler sees."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        if not self.body:
            raise HTTPError(400, "request body is empty; expected JSON")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, f"request body is not valid JSON: {exc}") from exc

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise HTTPError(400, "request body must be a JSON object")
        return data

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Response:
    """A complete response; ``body`` is JSON-encoded unless it is bytes or str."""

    body: Any = None
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass
class StreamResponse:
    """A streamed response: each item of ``events`` is one SSE event or NDJSON line, sent as one
    HTTP chunk. ``malformed`` replaces event ``after`` under the malformed-sse fault."""

    events: list[bytes]
    content_type: str = "text/event-stream; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    malformed: bytes = b'data: {"malformed": \n\n'


@dataclass
class RecordedRequest:
    """One request as the server saw it. ``repr`` hides secret headers; ``auth`` gives the raw
    credential for tests that must check it (never print it)."""

    seq: int
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    started: float
    ended: float | None = None
    status: int | None = None
    fault: str | None = None
    delivered: bool = False
    _left: bool = field(default=False, repr=False)

    @property
    def idempotency_key(self) -> str | None:
        for name in IDEMPOTENCY_HEADERS:
            if name in self.headers:
                return self.headers[name]
        return None

    @property
    def auth(self) -> str | None:
        for name in ("authorization", "x-api-key", "x-goog-api-key", "api-key"):
            if name in self.headers:
                return self.headers[name]
        return self.query.get("key", [None])[-1]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def summary(self) -> dict[str, Any]:
        """JSON-safe and secret-free."""
        return {
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "query": Query(self.query).redacted(),
            "status": self.status,
            "fault": self.fault,
            "delivered": self.delivered,
            "idempotency_key": self.idempotency_key,
            "headers": self.headers.redacted(),
        }


@dataclass
class _Rule:
    fault: Fault
    remaining: int | None
    path: str | None
    method: str | None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if self.path is None:
            return True
        if any(c in self.path for c in "*?["):
            import fnmatch

            return fnmatch.fnmatchcase(path, self.path)
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    fake: FakeServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse-DNS getfqdn(), which can stall offline.
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that vanished mid-response is routine here

    def server_activate(self) -> None:
        super().server_activate()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False

    def serve_until_stopped(self) -> None:
        """``serve_forever`` minus its polling: ``serve_forever`` only notices ``shutdown()`` at
        its next poll, so every stop cost up to a poll interval (50 ms x hundreds of per-test
        servers); here ``wake_and_stop()`` wakes the loop at once through a socket pair."""
        with selectors.DefaultSelector() as sel:
            sel.register(self, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in sel.select():
                    if key.fileobj is self and not self._stopping:
                        self._handle_request_noblock()

    def wake_and_stop(self) -> None:
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def server_close(self) -> None:
        super().server_close()
        for s in (getattr(self, "_wake_r", None), getattr(self, "_wake_w", None)):
            if s is not None:
                s.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections end eventually
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def handle(self) -> None:
        fake = self.server.fake
        fake._conn_opened(self.connection)
        try:
            super().handle()
        except OSError:
            pass
        finally:
            fake._conn_closed(self.connection)

    def _dispatch(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


Handler = Callable[[Request], "Response | StreamResponse"]


class FakeServer:
    """Base class of the per-protocol fake servers; see the package docstring for usage."""

    family: ClassVar[str] = "base"
    #: (method, path regex, handler attribute name); regex groups become `Request.params`.
    ROUTES: ClassVar[list[tuple[str, str, str]]] = []
    request_id_header: ClassVar[str] = "x-request-id"
    request_id_prefix: ClassVar[str] = "req_"
    _compiled: ClassVar[list[tuple[str, re.Pattern[str], str]]]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls._compiled = [(m, re.compile(p + r"\Z"), name) for m, p, name in cls.ROUTES]

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        latency: float = 0.0,
        gate: threading.Event | None = None,
        event_delay: float = 0.0,
        max_hang: float = 30.0,
        embedding_dim: int = 16,
        reply_tokens: int = 12,
    ) -> None:
        self.host, self.port, self.api_key = host, port, api_key
        # timing knobs (seconds), then the shape of generated content
        self.latency, self.gate, self.event_delay, self.max_hang = latency, gate, event_delay, max_hang
        self.embedding_dim, self.reply_tokens = embedding_dim, reply_tokens
        self.created = 1_700_000_000  # fixed "created" timestamps keep responses byte-identical
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rules: list[_Rule] = []
        self._header_fault_counts: Counter[tuple[str, str]] = Counter()
        self._requests: list[RecordedRequest] = []
        self._seq = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._release_at: int | None = None
        self._conns: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeServer:
        if self._httpd is not None:
            return self
        self._stop.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_until_stopped,
            name=f"fake-{self.family}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()
        httpd.wake_and_stop()
        if self._thread is not None:
            self._thread.join(timeout=5)  # the loop has left select(): closing is now safe
        httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:41234`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL an official SDK takes as its base (family-specific; root by default)."""
        return self.url

    # -- fault injection ---------------------------------------------------------------------
    def inject(
        self,
        fault: Fault | str,
        *,
        times: int | None = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Queue ``fault`` for the next ``times`` requests matching ``path``/``method``
        (``times=None``: every matching request until `clear_faults`). Rules are consumed in the
        order they were queued. ``path`` is an exact path, a prefix ending at a ``/``, or a glob."""
        f = Fault.parse(fault) if isinstance(fault, str) else fault
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            self._rules.append(_Rule(f, times, path, method))

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()
            self._header_fault_counts.clear()

    def pending_faults(self) -> list[tuple[str, int | None, str | None]]:
        with self._lock:
            return [(r.fault.spec(), r.remaining, r.path) for r in self._rules]

    def _take_fault(self, method: str, path: str, headers: Headers) -> Fault | None:
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.matches(method, path):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            del self._rules[i]
                    return rule.fault
            spec = headers.get("x-fake-fault")
            if not spec:
                return None
            _, opts = parse_spec(spec)
            if "times" in opts:
                key = (spec, next((headers[h] for h in IDEMPOTENCY_HEADERS if h in headers), ""))
                if self._header_fault_counts[key] >= int(opts["times"]):
                    return None
                self._header_fault_counts[key] += 1
        return Fault.parse(spec)

    # -- what the server saw -----------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    @property
    def max_in_flight(self) -> int:
        """High-water mark of requests being served at once (window: request read → last byte
        about to be written, so it never over-counts a client that reuses the connection)."""
        with self._lock:
            return self._max_in_flight

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @contextlib.contextmanager
    def overlapping(self, n: int) -> Iterator[None]:
        """Inside the block, hold every answer until ``n`` requests are in flight at once, then
        let them (and all later ones) go: a concurrency test sees its overlap on any machine,
        where a fixed ``latency`` only makes it likely on an idle one. A held answer waits at
        most ``max_hang``, so a client that never reaches ``n`` fails its assertion, not hangs."""
        gate = threading.Event()
        with self._lock:
            self.gate, self._release_at = gate, n
            if self._in_flight >= n:
                gate.set()
        try:
            yield
        finally:
            gate.set()
            with self._lock:
                self.gate, self._release_at = None, None

    def attempts_by_key(self) -> Counter[str]:
        """Requests received per idempotency key (retries of one logical request share a key)."""
        return Counter(k for r in self.requests if (k := r.idempotency_key))

    def delivered_by_key(self) -> Counter[str]:
        """Successful (2xx, uncorrupted, fully written) responses per idempotency key."""
        return Counter(k for r in self.requests if r.delivered and (k := r.idempotency_key))

    def reset(self) -> None:
        """Forget recorded requests, the high-water mark and all faults."""
        with self._lock:
            self._requests.clear()
            self._max_in_flight = self._in_flight
            self._rules.clear()
            self._header_fault_counts.clear()

    def stats(self) -> dict[str, Any]:
        reqs = self.requests
        return {
            "family": self.family,
            "requests": len(reqs),
            "max_in_flight": self.max_in_flight,
            "in_flight": self.in_flight,
            "by_status": dict(Counter(str(r.status) for r in reqs)),
            "attempts_by_key": dict(self.attempts_by_key()),
            "delivered_by_key": dict(self.delivered_by_key()),
            "faults_pending": self.pending_faults(),
        }

    # -- family hooks (overridden per protocol) ----------------------------------------------
    def error_body(self, status: int, message: str, code: str | None = None) -> Any:
        return {"error": message}

    def stream_error_event(self, status: int, message: str) -> bytes:
        return b"data: " + json.dumps(self.error_body(status, message)).encode() + b"\n\n"

    def auth_ok(self, req: Request) -> bool:
        """Default: ``Authorization: Bearer KEY``."""
        return req.headers.get("authorization") == f"Bearer {self.api_key}"

    def default_message(self, status: int) -> str:
        return {
            400: "Bad request (injected fault)",
            401: "Incorrect API key provided (injected fault)",
            403: "Permission denied (injected fault)",
            404: "Not found (injected fault)",
            408: "Request timed out (injected fault)",
            409: "Conflict (injected fault)",
            429: "Rate limit reached (injected fault)",
            529: "Overloaded (injected fault)",
        }.get(status, f"{_reason(status)} (injected fault)")

    def not_found(self, req: Request) -> HTTPError:
        return HTTPError(404, f"Unknown route {req.method} {req.path}", code="not_found")

    # -- request handling --------------------------------------------------------------------
    def _conn_opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _conn_closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _next_request_id(self) -> str:
        with self._lock:
            self._seq += 1
            return f"{self.request_id_prefix}{self._seq:08d}"

    def _handle(self, h: _Handler) -> None:
        raw_path = h.path
        if raw_path.startswith(("http://", "https://")):  # absolute-form request target
            raw_path = "/" + raw_path.split("/", 3)[3] if raw_path.count("/") >= 3 else "/"
        path, _, qs = raw_path.partition("?")
        headers = Headers(h.headers.items())
        try:
            body = self._read_body(h, headers)
        except (OSError, ValueError):
            h.close_connection = True
            return
        query = Query(parse_qs(qs, keep_blank_values=True))
        if path.startswith("/__fake__/"):
            self._control(h, path, h.command, body)
            return
        request_id = self._next_request_id()
        with self._lock:
            rec = RecordedRequest(
                self._seq, h.command, path, query, headers, body, time.monotonic()
            )
            self._requests.append(rec)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            if self._release_at is not None and self._in_flight >= self._release_at:
                self.gate.set()  # type: ignore[union-attr]  # set together with _release_at
        try:
            fault = self._take_fault(h.command, path, headers)
        except ValueError as exc:
            fault = None
            rec.fault = f"invalid x-fake-fault: {exc}"
        if fault is not None:
            rec.fault = fault.spec()
        try:
            self._serve(h, Request(h.command, path, query, headers, body), rec, fault, request_id)
        finally:
            self._leave(rec)
            rec.ended = time.monotonic()

    def _leave(self, rec: RecordedRequest) -> None:
        with self._lock:
            if not rec._left:
                rec._left = True
                self._in_flight -= 1

    def _read_body(self, h: _Handler, headers: Headers) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            out = bytearray()
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += h.rfile.read(size)
                h.rfile.readline()
        length = int(headers.get("content-length", "0") or 0)
        return h.rfile.read(length) if length > 0 else b""

    def _route(self, req: Request) -> Response | StreamResponse:
        allowed = False
        for method, pattern, name in self._compiled:
            m = pattern.match(req.path)
            if m is None:
                continue
            if method != req.method and not (method == "GET" and req.method == "HEAD"):
                allowed = True
                continue
            req.params = {k: v for k, v in m.groupdict().items() if v is not None}
            return getattr(self, name)(req)
        if allowed:
            raise HTTPError(
                405, f"Method {req.method} not allowed on {req.path}", code="method_not_allowed"
            )
        raise self.not_found(req)

    def _serve(
        self, h: _Handler, req: Request, rec: RecordedRequest, fault: Fault | None, rid: str
    ) -> None:
        kind = fault.kind if fault else None
        if kind in ("reset", "disconnect"):
            self._leave(rec)
            self._close(h, rst=kind == "reset")
            return
        if kind == "hang":
            self._wait(h, fault.seconds)  # type: ignore[union-attr]
            self._leave(rec)
            self._close(h, rst=False)
            return
        if kind == "slow" and not self._wait(h, fault.seconds):  # type: ignore[union-attr]
            self._leave(rec)
            self._close(h, rst=False)
            return
        if kind == "status" or (kind == "stream-error" and not self.wants_stream(req)):
            assert fault is not None and fault.status is not None
            status = fault.status
            extra = dict(fault.headers)
            if fault.retry_after is not None:
                extra["retry-after"] = fault.retry_after
            if fault.retry_after_ms is not None:
                extra["retry-after-ms"] = fault.retry_after_ms
            if fault.should_retry is not None:
                extra["x-should-retry"] = fault.should_retry
            body = self.error_body(status, fault.message or self.default_message(status))
            self._send(h, rec, rid, Response(body, status, headers=extra))
            return
        if kind == "html":
            assert fault is not None
            status = fault.status or 502
            page = _HTML_PAGE.format(status=status, reason=_reason(status))
            self._send(h, rec, rid, Response(page, status, "text/html"))
            return
        if self.latency and not self._wait(h, self.latency):
            self._leave(rec)
            self._close(h, rst=False)
            return
        if self.gate is not None and not self._wait(h, self.max_hang, until=self.gate):
            self._leave(rec)
            self._close(h, rst=False)
            return
        try:
            if self.api_key is not None and not self.auth_ok(req):
                raise HTTPError(
                    401,
                    self.default_message(401).replace(" (injected fault)", ""),
                    code="invalid_api_key",
                )
            resp = self._route(req)
        except HTTPError as exc:
            resp = Response(
                self.error_body(exc.status, exc.message, exc.code), exc.status, headers=exc.headers
            )
        if isinstance(resp, StreamResponse):
            self._send_stream(h, rec, rid, resp, fault)
        else:
            self._send(h, rec, rid, resp, fault)

    #: Whether a request without a "stream" field streams (true for Ollama and OPEA's ChatQnA).
    stream_default: ClassVar[bool] = False

    def wants_stream(self, req: Request) -> bool:
        """Whether the request asks for a stream (used to place stream-only faults)."""
        if req.q("alt") == "sse" or req.path.endswith(("_stream", ":streamGenerateContent")):
            return True
        try:
            data = json.loads(req.body) if req.body else None
        except ValueError:
            return False
        return isinstance(data, dict) and bool(data.get("stream", self.stream_default))

    # -- low-level writing -------------------------------------------------------------------
    def _head(
        self,
        status: int,
        rid: str,
        content_type: str,
        headers: dict[str, str],
        framing: dict[str, str],
        close: bool,
    ) -> bytes:
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        base = {
            "date": email.utils.formatdate(usegmt=True),
            "server": f"ipfs-accelerate-fake-{self.family}",
            "content-type": content_type,
            self.request_id_header: rid,
        }
        base.update(headers)
        base.update(framing)
        if close:
            base["connection"] = "close"
        lines.extend(f"{k}: {v}" for k, v in base.items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _write(self, h: _Handler, data: bytes) -> bool:
        try:
            h.wfile.write(data)
            return True
        except OSError:
            h.close_connection = True
            return False

    def _close(self, h: _Handler, *, rst: bool) -> None:
        h.close_connection = True
        sock = h.connection
        try:
            if rst:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        except OSError:
            pass

    def _wait(self, h: _Handler, seconds: float, until: threading.Event | None = None) -> bool:
        """Sleep up to ``seconds`` (capped by ``max_hang``) but stop as soon as the client hangs
        up or the server stops; True if the full time passed (or ``until`` was set) with the
        client still there."""
        deadline = time.monotonic() + min(max(seconds, 0.0), self.max_hang)
        sock = h.connection
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (until is not None and until.is_set()):
                return True
            if self._stop.is_set():
                return False
            try:
                readable, _, _ = select.select([sock], [], [], min(left, 0.05))
                if readable and sock.recv(1, socket.MSG_PEEK) == b"":
                    return False
            except (OSError, ValueError):
                return False

    def _send(
        self,
        h: _Handler,
        rec: RecordedRequest,
        rid: str,
        resp: Response,
        fault: Fault | None = None,
    ) -> None:
        body = resp.encoded()
        kind = fault.kind if fault else None
        content_type = resp.content_type
        if kind in ("malformed-json", "malformed-sse") and resp.status < 400:
            body = body[: max(len(body) // 2, 1)] + b"\x00<not json"
            content_type = "application/json"
        rec.status = resp.status
        close = h.close_connection
        if kind in ("truncate", "cut", "stall") and resp.status < 400:
            head = self._head(
                resp.status,
                rid,
                content_type,
                resp.headers,
                {"content-length": str(len(body))},
                True,
            )
            self._leave(rec)
            self._write(h, head + body[: len(body) // 2])
            if kind == "stall":
                self._wait(h, fault.seconds)  # type: ignore[union-attr]
            self._close(h, rst=False)
            return
        head = self._head(
            resp.status, rid, content_type, resp.headers, {"content-length": str(len(body))}, close
        )
        if kind == "trickle":
            self._leave(rec)
            if self._write(h, head):
                self._trickle(h, body, fault.seconds)  # type: ignore[union-attr]
            self._close(h, rst=False)
            return
        # Mark before writing: the client may act on the last byte before this thread runs again.
        rec.delivered = 200 <= resp.status < 300 and kind not in ("malformed-json", "malformed-sse")
        self._leave(rec)
        if not self._write(h, head if h.command == "HEAD" else head + body):
            rec.delivered = False

    def _send_stream(
        self, h: _Handler, rec: RecordedRequest, rid: str, resp: StreamResponse, fault: Fault | None
    ) -> None:
        kind = fault.kind if fault else None
        events = list(resp.events)
        after = max(0, min(fault.after, len(events) - 1)) if fault else 0
        if kind == "malformed-json":
            kind, after = "malformed-sse", 0
        rec.status = resp.status
        head = self._head(
            resp.status,
            rid,
            resp.content_type,
            resp.headers,
            {"transfer-encoding": "chunked"},
            h.close_connection,
        )
        if not self._write(h, head):
            return

        def chunk(data: bytes) -> bytes:
            return b"%x\r\n%s\r\n" % (len(data), data)

        if kind == "trickle":  # every byte of every event in its own HTTP chunk
            assert fault is not None
            self._leave(rec)
            data = b"".join(events)
            for i in range(len(data)):
                if not self._write(h, chunk(data[i : i + 1])) or not self._wait(h, fault.seconds):
                    break
            else:
                self._write(h, b"0\r\n\r\n")
            self._close(h, rst=False)
            return

        if kind in ("truncate", "cut", "stall", "stream-error"):
            for ev in events[:after]:
                if not self._write(h, chunk(ev)) or not self._pause(h):
                    return
            if kind == "stream-error":
                assert fault is not None
                err = self.stream_error_event(
                    fault.status or 500, fault.message or self.default_message(fault.status or 500)
                )
                self._leave(rec)
                self._write(h, chunk(err) + b"0\r\n\r\n")
            elif kind == "truncate":
                self._leave(rec)
                self._write(h, b"0\r\n\r\n")
            else:
                if kind == "stall":
                    self._wait(h, fault.seconds)  # type: ignore[union-attr]
                nxt = events[after]
                self._leave(rec)
                self._write(h, b"%x\r\n%s" % (len(nxt), nxt[: max(len(nxt) // 2, 1)]))
                self._close(h, rst=False)
            return
        if kind == "malformed-sse":
            events = events[:after] + [resp.malformed] + events[after:]
        for ev in events[:-1]:
            if not self._write(h, chunk(ev)) or not self._pause(h):
                return
        rec.delivered = 200 <= resp.status < 300 and kind is None
        self._leave(rec)
        if not self._write(h, chunk(events[-1]) + b"0\r\n\r\n"):
            rec.delivered = False

    def _trickle(self, h: _Handler, data: bytes, seconds: float) -> None:
        """Write ``data`` one byte at a time, ``seconds`` apart, until done or the client left."""
        for i in range(len(data)):
            if not self._write(h, data[i : i + 1]) or not self._wait(h, seconds):
                return

    def _pause(self, h: _Handler) -> bool:
        return self._wait(h, self.event_delay) if self.event_delay else True

    # -- control endpoints (for out-of-process users) ----------------------------------------
    def _control(self, h: _Handler, path: str, method: str, body: bytes) -> None:
        status, out = 200, {}
        try:
            data = json.loads(body) if body else {}
            if path == "/__fake__/faults" and method == "POST":
                self.inject(
                    data["fault"],
                    times=data.get("times", 1),
                    path=data.get("path"),
                    method=data.get("method"),
                )
                out = {"pending": self.pending_faults()}
            elif path == "/__fake__/faults" and method == "DELETE":
                self.clear_faults()
                out = {"pending": []}
            elif path == "/__fake__/reset" and method == "POST":
                self.reset()
                out = {"ok": True}
            elif path == "/__fake__/stats" and method == "GET":
                out = self.stats()
            elif path == "/__fake__/requests" and method == "GET":
                out = {"requests": [r.summary() for r in self.requests]}
            elif path == "/__fake__/health":
                out = {"ok": True, "family": self.family}
            else:
                status, out = 404, {"error": f"unknown control endpoint {method} {path}"}
        except (ValueError, KeyError, TypeError) as exc:
            status, out = 400, {"error": str(exc)}
        payload = json.dumps(out).encode()
        head = self._head(
            status,
            "control",
            "application/json",
            {},
            {"content-length": str(len(payload))},
            h.close_connection,
        )
        self._write(h, head + payload)
