"""Fixtures for the fake-server tests: each test gets a fresh server on a free port.

Clients are built with ``verify=False``: every URL here is plain http on loopback, and loading the
CA bundle costs ~50 ms of CPU per client (more than most tests), which the suite's time budget
cannot afford.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ipfs_accelerate.api.testing import FakeOpenAIServer

#: Recognisable fake key; tests assert it never leaks into reprs.
FAKE_KEY = "sk-fake-DO-NOT-LEAK-1234567890"


class LazySDK:
    """An official SDK, imported at its first use inside a test instead of at collection.

    The SDKs take ~8 s to import together (anthropic's types alone ~2 s); at module level every
    pytest-xdist worker paid that while collecting, even one that ran none of these tests. A
    missing SDK still skips the test that needs it, with the import error as the reason.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):  # pytest and inspect probe dunders/markers at collection
            raise AttributeError(attr)
        if self._module is None:
            self._module = pytest.importorskip(self._name)
        return getattr(self._module, attr)


@functools.cache
def http() -> httpx.Client:
    """One shared, thread-safe plain-http client for wire-level checks."""
    return httpx.Client(verify=False, timeout=5, limits=httpx.Limits(max_connections=128))


def sdk_http(module: Any, *, asynchronous: bool = False, **kw: Any) -> Any:
    """The SDK's own default httpx client (its limits and timeouts), minus CA loading."""
    cls = module.DefaultAsyncHttpxClient if asynchronous else module.DefaultHttpxClient
    return cls(verify=False, **kw)


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv
