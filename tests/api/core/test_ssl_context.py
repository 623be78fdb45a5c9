"""The core shares one verifying SSL context between clients (CA loading is ~0.1 s per client)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import certifi
import pytest

from ipfs_accelerate.api.core import APIClient, shared_ssl_context


def _ctx(http_client: Any) -> ssl.SSLContext:
    # httpx.Client -> HTTPTransport -> httpcore.ConnectionPool keeps the context it was given.
    return http_client._transport._pool._ssl_context


def test_clients_share_one_verifying_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    a = APIClient(base_url="https://a.example/v1")
    b = APIClient(base_url="https://b.example/v1")
    try:
        ctx = _ctx(a.http)
        assert ctx is _ctx(b.http) is shared_ssl_context()
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        assert _ctx(a.ahttp) is ctx
    finally:
        asyncio.run(a.aclose())
        b.close()


def test_ca_environment_still_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    default = shared_ssl_context()
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    custom = shared_ssl_context()
    assert custom is not default and custom is shared_ssl_context()
    client = APIClient(base_url="https://c.example/v1")
    try:
        assert _ctx(client.http) is custom
    finally:
        client.close()
