"""Fixtures for the core tests: a fake clock and a scripted httpx transport.

``Script`` is a real ``httpx.MockTransport`` handler (the transport seam httpx offers), which
answers from a list of responses/exceptions and records when (on the fake clock) and with which
headers each request arrived.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from ipfs_accelerate.api.core import APIClient, FakeClock, KeyPool, QueueConfig

#: A recognisable key; the secrets tests grep every output for it.
LEAKY_KEY = "sk-LEAK-CANARY-7f3a9c2e1b"


@dataclass
class Seen:
    at: float
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: dict[str, float | None]


@dataclass
class Script:
    """Answers requests in order from ``steps``; the last step repeats."""

    clock: FakeClock
    steps: list[Any]
    seen: list[Seen] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(
            Seen(
                self.clock.now(),
                request.method,
                str(request.url),
                dict(request.headers),
                request.read(),
                dict(request.extensions.get("timeout", {})),
            )
        )
        step = self.steps[min(len(self.seen) - 1, len(self.steps) - 1)]
        if callable(step) and not isinstance(step, httpx.Response):
            step = step(request)
        if isinstance(step, BaseException):
            raise step
        return step

    @property
    def times(self) -> list[float]:
        return [s.at for s in self.seen]

    @property
    def gaps(self) -> list[float]:
        t = self.times
        return [round(b - a, 6) for a, b in zip(t, t[1:], strict=False)]


def ok(body: Any = None, **kw: Any) -> httpx.Response:
    return httpx.Response(200, json={"ok": True} if body is None else body, **kw)


def status(code: int, headers: dict[str, str] | None = None, body: Any = None) -> httpx.Response:
    return httpx.Response(
        code,
        headers=headers or {},
        json=body if body is not None else {"error": {"message": f"status {code}"}},
    )


class NoJitter(random.Random):
    """random() == 0 → the backoff is exactly min(initial * 2**n, max)."""

    def random(self) -> float:
        return 0.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(clock: FakeClock) -> Callable[..., tuple[APIClient, Script]]:
    def make(*steps: Any, keys: list[str] | None = None, **kw: Any) -> tuple[APIClient, Script]:
        script = Script(clock, list(steps))
        kw.setdefault("rng", NoJitter())
        client = APIClient(
            base_url="http://api.test/v1",
            provider="test",
            keys=KeyPool(keys) if keys else None,
            clock=clock,
            transport=httpx.MockTransport(script),
            queue=kw.pop("queue", QueueConfig()),
            **kw,
        )
        return client, script

    return make
