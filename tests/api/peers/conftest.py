"""Session-scoped real peers, skipped with a reason when not installed.

llama-cpp-python and kserve start once per run, shared by every pytest-xdist worker (``_shared``);
moto runs in each worker's own process (a thread, ~0.4 s) because tests reset its state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

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

from ._shared import PeerAddress, SharedPeers

PeerSpec = tuple[Callable[[], Any], Callable[[Any], dict[str, Any]]]


def _digest(path: object) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()  # noqa: SIM115 - tiny file


def _llama_spec(gguf: TinyGGUF, alias: str, embedding: bool) -> PeerSpec:
    return (
        lambda: LlamaCppServer(gguf.path, alias=alias, embedding=embedding).start(),
        lambda srv: {"base_url": srv.base_url, "alias": srv.alias, "pid": srv.pid,
                     "model_sha256": _digest(gguf.path)},
    )


KSERVE_SPEC: PeerSpec = (
    lambda: KServeServer().start(),
    lambda ks: {"base_url": ks.base_url, "pid": ks.pid},
)
# fixture name -> (shared peer name, skip-reason probe)
PEER_FIXTURES: dict[str, tuple[str, Callable[[], str | None]]] = {
    "llama_server": ("llama", llama_cpp_skip_reason),
    "llama_embed_server": ("llama-embed", llama_cpp_skip_reason),
    "kserve_server": ("kserve", kserve_skip_reason),
}


@pytest.fixture(scope="session")
def shared_peers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SharedPeers:
    """Workers of one xdist run share getbasetemp().parent; a plain run uses its own basetemp.

    On first use it prefetches every peer some collected test needs (on threads, shared by the
    run), so their start-ups overlap instead of each stalling the test that first needs it."""
    base = tmp_path_factory.getbasetemp()
    shared = SharedPeers(base.parent if hasattr(request.config, "workerinput") else base)
    request.config.add_cleanup(shared.release_all)  # after the session: outside test timeouts
    needed = {f for item in request.session.items for f in getattr(item, "fixturenames", ())}
    for fixture, (name, skip_reason) in PEER_FIXTURES.items():
        if fixture not in needed or skip_reason() is not None:
            continue
        if name == "kserve":
            spec = KSERVE_SPEC
        else:
            embed = name == "llama-embed"
            gguf = request.getfixturevalue("tiny_embed_gguf" if embed else "tiny_gguf")
            spec = _llama_spec(gguf, "tiny-embed" if embed else "tiny", embedding=embed)
        shared.prefetch(name, *spec)
    return shared


def _llama(shared: SharedPeers, name: str, gguf: TinyGGUF, alias: str, embedding: bool) -> PeerAddress:
    reason = llama_cpp_skip_reason()
    if reason:
        pytest.skip(reason)
    state = shared.get(name, *_llama_spec(gguf, alias, embedding))
    # The tests compute token ids from their own copy of the model: it must be the served one.
    assert state["model_sha256"] == _digest(gguf.path), "workers wrote different tiny GGUFs"
    return PeerAddress(state["base_url"], state["alias"], state["pid"])


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
def llama_server(shared_peers: SharedPeers, tiny_gguf: TinyGGUF) -> PeerAddress:
    return _llama(shared_peers, "llama", tiny_gguf, "tiny", embedding=False)


@pytest.fixture(scope="session")
def llama_embed_server(shared_peers: SharedPeers, tiny_embed_gguf: TinyGGUF) -> PeerAddress:
    return _llama(shared_peers, "llama-embed", tiny_embed_gguf, "tiny-embed", embedding=True)


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
def kserve_server(shared_peers: SharedPeers) -> PeerAddress:
    reason = kserve_skip_reason()
    if reason:
        pytest.skip(reason)
    state = shared_peers.get("kserve", *KSERVE_SPEC)
    return PeerAddress(state["base_url"], pid=state["pid"])
