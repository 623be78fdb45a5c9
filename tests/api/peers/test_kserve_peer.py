"""ovms against a real KServe v2 ModelServer (kserve's own implementation of the protocol)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ipfs_accelerate.api.core import BadRequestError, NotFoundError
from ipfs_accelerate.api.providers.ovms import OVMSProvider
from ipfs_accelerate.api.testing.peers import TINY_B, TINY_W

from ._shared import PeerAddress

pytestmark = [pytest.mark.peer, pytest.mark.timeout(120)]


@pytest.fixture
def ovms(kserve_server: PeerAddress) -> OVMSProvider:
    p = OVMSProvider(base_url=kserve_server.base_url, model="tiny", env={})
    yield p
    p.close()


def test_health_and_metadata(ovms: OVMSProvider) -> None:
    assert ovms.server_live() and ovms.server_ready()
    assert ovms.model_ready() and ovms.model_ready("echo")
    assert ovms.model_ready("missing") is False
    meta = ovms.model_metadata()
    assert meta.name == "tiny"
    assert [(t.name, t.datatype, t.shape) for t in meta.inputs] == [("INPUT0", "FP32", (-1, 4))]
    assert [(t.name, t.datatype) for t in meta.outputs] == [("OUTPUT0", "FP32"), ("OUTPUT1", "INT64")]
    assert ovms.server_metadata()["name"] == "kserve"


def test_infer_matches_numpy(ovms: OVMSProvider) -> None:
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    r = ovms.infer({"INPUT0": x}, request_id="req-42")
    expected = x @ TINY_W + TINY_B
    assert r.id == "req-42" and r.model_name == "tiny"
    assert r["OUTPUT0"].dtype == np.float32 and r["OUTPUT0"].shape == (5, 3)
    np.testing.assert_allclose(r["OUTPUT0"], expected, rtol=1e-6, atol=1e-6)
    assert r["OUTPUT1"].dtype == np.int64 and r["OUTPUT1"].tolist() == expected.argmax(1).tolist()
    r2 = asyncio.run(ovms.ainfer({"INPUT0": x}))
    np.testing.assert_array_equal(r2["OUTPUT0"], r["OUTPUT0"])


@pytest.mark.parametrize(
    "array",
    [
        np.array([[1, -2], [3, 4]], dtype=np.int8),
        np.array([65535, 0], dtype=np.uint16),
        np.array([2**40, -(2**40)], dtype=np.int64),
        np.array([0.1, -1e300], dtype=np.float64),
        np.array([True, False, True]),
        np.array([b"ipfs", "\u00e9".encode()], dtype=object),
    ],
    ids=["INT8", "UINT16", "INT64", "FP64", "BOOL", "BYTES"],
)
def test_typed_tensors_round_trip(ovms: OVMSProvider, array: np.ndarray) -> None:
    out = ovms.infer({"x": array}, model="echo")["x"]
    assert out.dtype == array.dtype and out.shape == array.shape
    assert out.tolist() == array.tolist()


def test_errors_are_typed(ovms: OVMSProvider) -> None:
    with pytest.raises(BadRequestError, match="missing input INPUT0"):
        ovms.infer({"WRONG": np.zeros((1, 4), np.float32)})
    with pytest.raises(NotFoundError):
        ovms.infer({"INPUT0": np.zeros((1, 4), np.float32)}, model="no-such-model")
    # kserve refuses FP16 in JSON (binary extension only): a 400, not a retry storm
    with pytest.raises(BadRequestError, match="FP16"):
        ovms.infer({"h": np.ones(2, np.float16)}, model="echo")
    assert sum(s.retries for s in ovms.stats().values()) == 0
