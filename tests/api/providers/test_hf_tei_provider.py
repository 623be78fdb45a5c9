"""hf_tei: batching (order kept, batch sizes on the wire), normalisation, rerank ordering."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ipfs_accelerate.api.core import APIStatusError, FakeClock
from ipfs_accelerate.api.providers.hf_tei import HFTEIProvider
from ipfs_accelerate.api.testing import FakeTEIServer, embedding

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def srv():
    with FakeTEIServer() as s:
        yield s


def test_batches_on_the_wire_and_order_kept(srv) -> None:
    texts = [f"text {i}" for i in range(7)]
    with HFTEIProvider(base_url=srv.url, env={}, batch_size=3) as p:
        e = p.embed(texts)
    sizes = [len(r.json()["inputs"]) for r in srv.requests_to("/embed")]
    assert sizes == [3, 3, 1]
    for v, t in zip(e.embeddings, texts, strict=True):
        np.testing.assert_allclose(v, embedding(t, len(v)), atol=1e-6)


def test_async_batches_run_concurrently_and_keep_order(srv) -> None:
    texts = [f"t{i}" for i in range(8)]

    async def main():
        async with HFTEIProvider(base_url=srv.url, env={}, batch_size=2) as p:
            return await p.aembed(texts)

    with srv.overlapping(2):  # answers wait until two batches are in flight: overlap, not luck
        e = asyncio.run(main())
    assert srv.max_in_flight >= 2  # batches overlapped
    assert [np.argmax(v) for v in e.embeddings] == [np.argmax(embedding(t, 16)) for t in texts]


def test_normalize_flag_is_sent(srv) -> None:
    with HFTEIProvider(base_url=srv.url, env={}) as p:
        raw = p.embed(["a b c"], normalize=False)
        unit = p.embed(["a b c"], normalize=True)
    assert [r.json()["normalize"] for r in srv.requests_to("/embed")] == [False, True]
    assert abs(np.linalg.norm(unit.embeddings[0]) - 1) < 1e-5
    assert np.allclose(np.asarray(raw.embeddings[0]) / np.linalg.norm(raw.embeddings[0]), unit.embeddings[0], atol=1e-5)


def test_server_batch_limit_is_a_413_not_a_retry(srv) -> None:
    clock = FakeClock()
    with HFTEIProvider(base_url=srv.url, env={}, batch_size=10_000, clock=clock) as p:
        info = p.server_info()
        limit = info["max_client_batch_size"]
        with pytest.raises(APIStatusError) as err:
            p.embed([str(i) for i in range(limit + 1)])  # TEI answers 413
        assert err.value.status == 413
        assert clock.sleeps == []
        p.configure_from_info()
        assert p.batch_size == limit and len(p.embed([str(i) for i in range(limit + 1)]).embeddings) == limit + 1


def test_rerank_sorted_and_indexed(srv) -> None:
    with HFTEIProvider(base_url=srv.url, env={}) as p:
        ranks = p.rerank("apple pie", ["car", "apple pie", "pie"], return_text=True)
    assert ranks[0].index == 1 and ranks[0].text == "apple pie"
    assert [r.score for r in ranks] == sorted((r.score for r in ranks), reverse=True)


def test_empty_input_and_bad_batch_size_are_local_errors() -> None:
    with pytest.raises(ValueError):
        HFTEIProvider(base_url="http://127.0.0.1:1", env={}, batch_size=0)
    with HFTEIProvider(base_url="http://127.0.0.1:1", env={}) as p, pytest.raises(ValueError):
        p.embed([])
