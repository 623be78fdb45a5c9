"""A routing httpx.MockTransport handler for provider mapping tests (shared with
``tests/api/providers``): answers by (method, path), records every request."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ipfs_accelerate.api.core import FakeClock

from .conftest import NoJitter


@dataclass
class Hit:
    method: str
    path: str
    query: dict[str, str]
    headers: httpx.Headers
    body: Any


Answer = httpx.Response | Callable[[httpx.Request], httpx.Response] | list[Any] | BaseException


@dataclass
class Routes:
    routes: dict[tuple[str, str], Answer] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)

    def on(self, method: str, path: str, answer: Answer) -> Routes:
        self.routes[(method, path)] = answer
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        raw = request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.hits.append(
            Hit(request.method, request.url.path, dict(request.url.params), request.headers, body)
        )
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(
                404, json={"error": {"message": f"no route {request.method} {request.url.path}"}}
            )
        if isinstance(answer, list):  # consumed in order; the last one repeats
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    @property
    def last(self) -> Hit:
        return self.hits[-1]


def sse(*events: str | dict[str, Any] | tuple[str, dict[str, Any]]) -> httpx.Response:
    """A text/event-stream response from data strings, JSON payloads or (event, payload)."""
    out = []
    for e in events:
        if isinstance(e, tuple):
            out.append(f"event: {e[0]}\ndata: {json.dumps(e[1])}\n\n")
        elif isinstance(e, dict):
            out.append(f"data: {json.dumps(e)}\n\n")
        else:
            out.append(f"data: {e}\n\n")
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content="".join(out).encode()
    )


def make(cls: type, routes: Routes, **kw: Any) -> Any:
    """A provider instance talking to ``routes`` on a fake clock."""
    kw.setdefault("base_url", "http://api.test")
    kw.setdefault("clock", FakeClock())
    kw.setdefault("rng", NoJitter())
    kw.setdefault("env", {})
    return cls(transport=httpx.MockTransport(routes), **kw)
