"""tritonclient[http] judges the KServe v2 fake (the REST protocol OpenVINO Model Server speaks)."""

from __future__ import annotations

import numpy as np
import pytest

from ipfs_accelerate.api.testing import FakeKServeServer, Fault, embedding

from .conftest import LazySDK

th = LazySDK("tritonclient.http")
tu = LazySDK("tritonclient.utils")
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def srv() -> FakeKServeServer:
    with FakeKServeServer() as s:
        yield s


@pytest.fixture
def client(srv: FakeKServeServer) -> object:
    c = th.InferenceServerClient(url=f"127.0.0.1:{srv.port}")
    yield c
    c.close()


def test_health_and_metadata(srv: FakeKServeServer, client: object) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("add_sub") and not client.is_model_ready("nope")
    assert client.is_model_ready("add_sub", "1") and not client.is_model_ready("add_sub", "7")
    meta = client.get_model_metadata("add_sub")
    assert [i["name"] for i in meta["inputs"]] == ["INPUT0", "INPUT1"] and meta["inputs"][0][
        "shape"
    ] == [-1, 4]
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    with pytest.raises(tu.InferenceServerException, match="not found"):
        client.get_model_metadata("nope")
    assert all("content-type" not in r.headers for r in srv.requests if r.method == "GET")


@pytest.mark.parametrize("binary", [True, False])
def test_infer_fp32_json_and_binary(srv: FakeKServeServer, client: object, binary: bool) -> None:
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.full((2, 4), 0.5, dtype=np.float32)
    i0, i1 = th.InferInput("INPUT0", [2, 4], "FP32"), th.InferInput("INPUT1", [2, 4], "FP32")
    i0.set_data_from_numpy(a, binary_data=binary)
    i1.set_data_from_numpy(b, binary_data=binary)
    outs = [
        th.InferRequestedOutput("OUTPUT0", binary_data=binary),
        th.InferRequestedOutput("OUTPUT1", binary_data=not binary),
    ]
    r = client.infer("add_sub", [i0, i1], outputs=outs, request_id="req-7")
    np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(r.as_numpy("OUTPUT1"), a - b)
    assert r.get_response()["id"] == "req-7" and r.get_response()["model_name"] == "add_sub"
    rec = srv.requests[-1]
    assert (
        rec.path == "/v2/models/add_sub/infer" and "content-type" not in rec.headers
    )  # tritonclient's quirk
    assert ("inference-header-content-length" in rec.headers) == binary


def test_infer_int64_and_bytes(client: object) -> None:
    x = th.InferInput("INPUT", [3], "INT64")
    x.set_data_from_numpy(np.array([1, 2, -3], dtype=np.int64))
    np.testing.assert_array_equal(client.infer("scale_int64", [x]).as_numpy("OUTPUT"), [2, 4, -6])
    t = th.InferInput("TEXT", [2], "BYTES")
    t.set_data_from_numpy(np.array([b"hello", "héllo".encode()], dtype=object))
    emb = client.infer("embed", [t]).as_numpy("EMBEDDINGS")
    assert (
        emb.shape == (2, 16)
        and emb[0].tolist() == embedding("hello")
        and emb[1].tolist() == embedding("héllo")
    )
    e = th.InferInput("INPUT", [2], "BYTES")
    e.set_data_from_numpy(np.array([b"a", b"bc"], dtype=object), binary_data=False)
    out = client.infer(
        "echo_bytes", [e], outputs=[th.InferRequestedOutput("OUTPUT", binary_data=False)]
    ).as_numpy("OUTPUT")
    assert out.tolist() == ["a", "bc"]  # tritonclient decodes JSON BYTES to str


def test_validation_errors(client: object) -> None:
    x = th.InferInput("INPUT", [3], "INT32")
    x.set_data_from_numpy(np.array([1, 2, 3], dtype=np.int32))
    with pytest.raises(tu.InferenceServerException, match="precision") as exc:
        client.infer("scale_int64", [x])
    assert exc.value.status() == "400"
    y = th.InferInput("INPUT0", [2, 3], "FP32")
    y.set_data_from_numpy(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(tu.InferenceServerException, match="shape"):
        client.infer("add_sub", [y])


def test_faults_surface_in_tritonclient(srv: FakeKServeServer, client: object) -> None:
    x = th.InferInput("INPUT", [1], "INT64")
    x.set_data_from_numpy(np.array([1], dtype=np.int64))
    srv.inject(Fault.http(503, message="model is loading"))
    with pytest.raises(tu.InferenceServerException, match="model is loading") as exc:
        client.infer("scale_int64", [x])
    assert exc.value.status() == "503"
    assert client.infer("scale_int64", [x]).as_numpy("OUTPUT").tolist() == [2]
