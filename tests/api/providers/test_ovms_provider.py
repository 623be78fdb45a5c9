"""ovms: tensor encoding/decoding for every KServe v2 datatype, and the wire format."""

from __future__ import annotations

import numpy as np
import pytest

from ipfs_accelerate.api.providers.ovms import (
    DTYPE_TO_NUMPY,
    OVMSProvider,
    decode_tensor,
    encode_tensor,
)
from ipfs_accelerate.api.testing import FakeKServeServer

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("dt", sorted(DTYPE_TO_NUMPY))
def test_encode_decode_round_trip(dt: str) -> None:
    if dt == "BYTES":
        arr = np.array([[b"a", b"bc"], [b"", "\u00e9".encode()]], dtype=object)
    elif dt == "BOOL":
        arr = np.array([[True, False], [False, True]])
    else:
        arr = (np.arange(6).reshape(2, 3) % 5).astype(DTYPE_TO_NUMPY[dt])
    enc = encode_tensor("t", arr)
    assert enc["datatype"] == dt and enc["shape"] == list(arr.shape)
    assert len(enc["data"]) == arr.size  # flattened row-major
    back = decode_tensor(enc)
    assert back.dtype == arr.dtype and back.tolist() == arr.tolist()


def test_nested_data_is_accepted_and_unknown_types_refused() -> None:
    out = decode_tensor({"name": "o", "datatype": "INT32", "shape": [2, 2], "data": [[1, 2], [3, 4]]})
    assert out.tolist() == [[1, 2], [3, 4]]
    with pytest.raises(ValueError, match="BF16"):
        decode_tensor({"name": "o", "datatype": "BF16", "shape": [1], "data": [1.0]})
    with pytest.raises(ValueError, match="no KServe v2 datatype"):
        encode_tensor("c", np.array([1 + 2j]))


def test_infer_on_the_wire() -> None:
    with FakeKServeServer() as srv, OVMSProvider(base_url=srv.url, env={}) as p:
        x = np.ones((1, 4), np.float32)
        r = p.infer({"INPUT0": x, "INPUT1": x}, model="add_sub", outputs=["OUTPUT0"], request_id="abc")
        sent = srv.requests_to("/v2/models/add_sub/infer")[-1].json()
    assert sent["id"] == "abc" and sent["outputs"] == [{"name": "OUTPUT0"}]
    assert sent["inputs"][0] == {"name": "INPUT0", "datatype": "FP32", "shape": [1, 4], "data": [1.0] * 4}
    assert r.id == "abc" and r["OUTPUT0"].tolist() == [[2.0] * 4]


def test_model_name_is_required() -> None:
    with OVMSProvider(base_url="http://127.0.0.1:1", env={}) as p, pytest.raises(ValueError, match="no model"):
        p.infer({"x": np.zeros(1)})
