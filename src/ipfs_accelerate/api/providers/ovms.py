"""OpenVINO Model Server over the KServe v2 REST API (Open Inference Protocol).

* ``server_live`` / ``server_ready``: ``GET /v2/health/live`` / ``/v2/health/ready``;
  ``server_metadata``: ``GET /v2``.
* ``model_ready(name, version=None)``: ``GET /v2/models/{name}[/versions/{v}]/ready``.
* ``model_metadata(name)``: ``GET /v2/models/{name}`` → :class:`ModelMetadata` with typed
  :class:`TensorSpec` inputs and outputs.
* ``infer(name, {"INPUT0": np.ndarray, ...})``: ``POST /v2/models/{name}/infer``; numpy arrays go
  out as ``{"name", "datatype", "shape", "data"}`` (row-major, flattened) and come back as numpy
  arrays of the declared datatype, in :class:`InferResult`. The request ``id`` is echoed.

Datatypes follow the protocol: BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES
(numpy ``object`` of ``bytes``/``str``; sent as UTF-8 strings). BF16 has no numpy dtype and is
refused. OVMS needs no key; ``OVMS_API_KEY`` is sent as Bearer when set (a gateway in front).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from ipfs_accelerate.api import core
from ipfs_accelerate.api.providers import PROVIDERS

__all__ = [
    "DTYPE_TO_NUMPY",
    "InferResult",
    "ModelMetadata",
    "OVMSProvider",
    "TensorSpec",
    "decode_tensor",
    "encode_tensor",
]

DTYPE_TO_NUMPY: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
_NUMPY_TO_DTYPE = {np.dtype(v): k for k, v in DTYPE_TO_NUMPY.items() if k != "BYTES"}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class InferResult:
    model_name: str
    model_version: str | None
    id: str | None
    outputs: dict[str, np.ndarray]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.outputs[name]


def datatype_of(array: np.ndarray) -> str:
    if array.dtype == np.object_ or array.dtype.kind in ("S", "U"):
        return "BYTES"
    try:
        return _NUMPY_TO_DTYPE[array.dtype]
    except KeyError:
        raise ValueError(f"no KServe v2 datatype for numpy dtype {array.dtype}") from None


def encode_tensor(name: str, value: Any, datatype: str | None = None) -> dict[str, Any]:
    """A numpy array (or nested list) → a v2 JSON input tensor."""
    array = np.asarray(value)
    dt = datatype or datatype_of(array)
    if dt not in DTYPE_TO_NUMPY:
        raise ValueError(f"unsupported datatype {dt!r}")
    flat = array.reshape(-1)
    if dt == "BYTES":
        data: list[Any] = [
            v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in flat.tolist()
        ]
    else:
        data = flat.astype(DTYPE_TO_NUMPY[dt]).tolist()
    return {"name": name, "datatype": dt, "shape": list(array.shape), "data": data}


def decode_tensor(obj: Mapping[str, Any]) -> np.ndarray:
    """A v2 JSON output tensor → numpy array of its declared datatype and shape."""
    dt = obj["datatype"]
    if dt not in DTYPE_TO_NUMPY:
        raise ValueError(f"unsupported datatype {dt!r} in output {obj.get('name')!r}")
    shape = [int(s) for s in obj["shape"]]
    data = obj.get("data")
    if data is None:
        raise ValueError(f"output {obj.get('name')!r} has no JSON data (binary outputs unsupported)")
    flat = np.asarray(_flatten(data), dtype=DTYPE_TO_NUMPY[dt])
    if dt == "BYTES":
        flat = np.asarray([v.encode("utf-8") if isinstance(v, str) else v for v in flat.tolist()],
                          dtype=np.object_)
    return flat.reshape(shape)


def _flatten(data: Any) -> list[Any]:
    # The protocol allows nested (row-major) or flat data; both become flat.
    if isinstance(data, list) and data and isinstance(data[0], list):
        return [x for row in data for x in _flatten(row)]
    return list(data)


def _specs(items: Sequence[Mapping[str, Any]] | None) -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(str(t["name"]), str(t["datatype"]), tuple(int(s) for s in t.get("shape", ())))
        for t in items or ()
    )


class OVMSProvider(core.Provider):
    """KServe v2 REST client; see the module docstring."""

    name = "ovms"
    info = PROVIDERS["ovms"]
    request_id_headers = ("x-request-id",)

    def _model_path(self, name: str, version: str | None) -> str:
        path = f"/v2/models/{name}"
        return f"{path}/versions/{version}" if version else path

    def _ok(self, path: str, endpoint: str) -> core.Call[bool]:
        return core.Call(self._options("GET", path, endpoint=endpoint, max_retries=0), parse=lambda r: True)

    def _probe(self, call: core.Call[bool]) -> bool:
        try:
            return self._call(call)
        except core.APIError:
            return False

    async def _aprobe(self, call: core.Call[bool]) -> bool:
        try:
            return await self._acall(call)
        except core.APIError:
            return False

    # -- health and metadata --------------------------------------------------------------------

    def server_live(self) -> bool:
        return self._probe(self._ok("/v2/health/live", "/v2/health/live"))

    async def aserver_live(self) -> bool:
        return await self._aprobe(self._ok("/v2/health/live", "/v2/health/live"))

    def server_ready(self) -> bool:
        return self._probe(self._ok("/v2/health/ready", "/v2/health/ready"))

    async def aserver_ready(self) -> bool:
        return await self._aprobe(self._ok("/v2/health/ready", "/v2/health/ready"))

    def _server_metadata(self) -> core.Call[dict[str, Any]]:
        return core.Call(self._options("GET", "/v2"), parse=lambda r: dict(r.json()))

    def server_metadata(self) -> dict[str, Any]:
        """GET /v2: server name, version, extensions."""
        return self._call(self._server_metadata())

    async def aserver_metadata(self) -> dict[str, Any]:
        return await self._acall(self._server_metadata())

    def _model_ready(self, name: str, version: str | None) -> core.Call[bool]:
        return self._ok(self._model_path(name, version) + "/ready", "/v2/models/{name}/ready")

    def model_ready(self, name: str | None = None, version: str | None = None) -> bool:
        """True when the model answers 2xx on its ``/ready`` route."""
        return self._probe(self._model_ready(self._model(name), version))

    async def amodel_ready(self, name: str | None = None, version: str | None = None) -> bool:
        return await self._aprobe(self._model_ready(self._model(name), version))

    def _metadata(self, name: str, version: str | None) -> core.Call[ModelMetadata]:
        def parse(r: httpx.Response) -> ModelMetadata:
            d = r.json()
            return ModelMetadata(
                name=str(d["name"]),
                versions=tuple(str(v) for v in d.get("versions") or ()),
                platform=str(d.get("platform") or ""),
                inputs=_specs(d.get("inputs")),
                outputs=_specs(d.get("outputs")),
                raw=d,
            )

        return core.Call(
            self._options("GET", self._model_path(name, version), endpoint="/v2/models/{name}"),
            parse=parse,
        )

    def model_metadata(self, name: str | None = None, version: str | None = None) -> ModelMetadata:
        return self._call(self._metadata(self._model(name), version))

    async def amodel_metadata(
        self, name: str | None = None, version: str | None = None
    ) -> ModelMetadata:
        return await self._acall(self._metadata(self._model(name), version))

    # -- inference ----------------------------------------------------------------------------------

    def _infer(
        self,
        inputs: Mapping[str, Any],
        *,
        model: str | None = None,
        version: str | None = None,
        outputs: Sequence[str] | None = None,
        request_id: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> core.Plan[InferResult]:
        """POST /v2/models/{model}/infer with numpy inputs; numpy outputs by name."""
        name = self._model(model)
        if not inputs:
            raise ValueError("infer needs at least one input tensor")
        body: dict[str, Any] = {
            "id": request_id or uuid.uuid4().hex,
            "inputs": [encode_tensor(k, v) for k, v in inputs.items()],
        }
        if outputs:
            body["outputs"] = [{"name": o} for o in outputs]
        if parameters:
            body["parameters"] = dict(parameters)

        def parse(r: httpx.Response) -> InferResult:
            d = r.json()
            return InferResult(
                model_name=str(d.get("model_name") or name),
                model_version=d.get("model_version"),
                id=d.get("id"),
                outputs={o["name"]: decode_tensor(o) for o in d["outputs"]},
                raw=d,
            )

        return (yield core.Call(
            self._options(
                "POST", self._model_path(name, version) + "/infer", json=body,
                endpoint="/v2/models/{name}/infer",
            ),
            parse=parse,
        ))

    infer, ainfer = core.verb_pair(_infer)
