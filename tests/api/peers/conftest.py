"""Session-scoped real peers: each starts once per test session and is skipped with a reason
when it is not installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ipfs_accelerate.api.testing.peers import (
    KServeServer,
    LlamaCppServer,
    MotoS3Server,
    TinyGGUF,
    kserve_skip_reason,
    llama_cpp_skip_reason,
    moto_skip_reason,
    write_tiny_gguf,
)


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> TinyGGUF:
    pytest.importorskip("gguf", reason="gguf not installed; run scripts/setup_api_peers.sh")
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", seed=0)


@pytest.fixture(scope="session")
def tiny_embed_gguf(tmp_path_factory: pytest.TempPathFactory) -> TinyGGUF:
    pytest.importorskip("gguf", reason="gguf not installed; run scripts/setup_api_peers.sh")
    return write_tiny_gguf(
        tmp_path_factory.mktemp("gguf") / "tiny-embed.gguf", embedding=True, seed=1
    )


@pytest.fixture(scope="session")
def llama_server(tiny_gguf: TinyGGUF) -> Iterator[LlamaCppServer]:
    reason = llama_cpp_skip_reason()
    if reason:
        pytest.skip(reason)
    with LlamaCppServer(tiny_gguf.path, alias="tiny") as srv:
        yield srv


@pytest.fixture(scope="session")
def llama_embed_server(tiny_embed_gguf: TinyGGUF) -> Iterator[LlamaCppServer]:
    reason = llama_cpp_skip_reason()
    if reason:
        pytest.skip(reason)
    with LlamaCppServer(tiny_embed_gguf.path, alias="tiny-embed", embedding=True) as srv:
        yield srv


@pytest.fixture(scope="session")
def _moto_session() -> Iterator[MotoS3Server]:
    reason = moto_skip_reason()
    if reason:
        pytest.skip(reason)
    with MotoS3Server() as srv:
        yield srv


@pytest.fixture
def moto_s3(_moto_session: MotoS3Server) -> MotoS3Server:
    """The moto server, emptied before each test."""
    _moto_session.reset()
    return _moto_session


@pytest.fixture(scope="session")
def kserve_server() -> Iterator[KServeServer]:
    reason = kserve_skip_reason()
    if reason:
        pytest.skip(reason)
    with KServeServer() as srv:
        yield srv
