"""Fixtures for the fake-server tests: each test gets a fresh server on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ipfs_accelerate.api.testing import FakeOpenAIServer

#: Recognisable fake key; tests assert it never leaks into reprs.
FAKE_KEY = "sk-fake-DO-NOT-LEAK-1234567890"


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv
