"""KServe v2 / Open Inference Protocol fake (what OpenVINO Model Server speaks over REST):
``/v2``, ``/v2/health/{live,ready}``, ``/v2/models/{m}[/versions/{v}]`` (metadata),
``.../ready`` and ``.../infer`` with typed tensors (BOOL, (U)INT8-64, FP16/32/64, BYTES), JSON data
or the binary tensor extension (``Inference-Header-Content-Length``) that tritonclient uses by
default. Requests without a Content-Type are accepted, as tritonclient sends them.

Built-in deterministic models (`default_models`):
``add_sub`` (INPUT0, INPUT1: FP32 [-1, 4] -> OUTPUT0 = sum, OUTPUT1 = difference),
``scale_int64`` (INPUT: INT64 [-1] -> OUTPUT = 2 * INPUT),
``embed`` (TEXT: BYTES [-1] -> EMBEDDINGS: FP32 [-1, dim] = `embedding(text, dim)`),
``echo_bytes`` (INPUT: BYTES [-1] -> OUTPUT: the same strings).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._content import embedding
from ._server import FakeServer, HTTPError, Request, Response

DTYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]

    def meta(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass
class KServeModel:
    """A model the fake serves: its signature and a pure function over numpy arrays."""

    name: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    fn: Callable[[dict[str, Any]], dict[str, Any]]
    versions: tuple[str, ...] = ("1",)
    platform: str = "OpenVINO"
    extra: dict[str, Any] = field(default_factory=dict)


def default_models(dim: int = 16) -> dict[str, KServeModel]:
    import numpy as np

    def add_sub(x: dict[str, Any]) -> dict[str, Any]:
        return {"OUTPUT0": x["INPUT0"] + x["INPUT1"], "OUTPUT1": x["INPUT0"] - x["INPUT1"]}

    def embed(x: dict[str, Any]) -> dict[str, Any]:
        texts = [t.decode() if isinstance(t, bytes) else str(t) for t in x["TEXT"].reshape(-1)]
        return {
            "EMBEDDINGS": np.array([embedding(t, dim) for t in texts], dtype=np.float32).reshape(
                len(texts), dim
            )
        }

    fp = (-1, 4)
    return {
        "add_sub": KServeModel(
            "add_sub",
            [TensorSpec("INPUT0", "FP32", fp), TensorSpec("INPUT1", "FP32", fp)],
            [TensorSpec("OUTPUT0", "FP32", fp), TensorSpec("OUTPUT1", "FP32", fp)],
            add_sub,
        ),
        "scale_int64": KServeModel(
            "scale_int64",
            [TensorSpec("INPUT", "INT64", (-1,))],
            [TensorSpec("OUTPUT", "INT64", (-1,))],
            lambda x: {"OUTPUT": x["INPUT"] * 2},
        ),
        "embed": KServeModel(
            "embed",
            [TensorSpec("TEXT", "BYTES", (-1,))],
            [TensorSpec("EMBEDDINGS", "FP32", (-1, dim))],
            embed,
        ),
        "echo_bytes": KServeModel(
            "echo_bytes",
            [TensorSpec("INPUT", "BYTES", (-1,))],
            [TensorSpec("OUTPUT", "BYTES", (-1,))],
            lambda x: {"OUTPUT": x["INPUT"]},
        ),
    }


def _deserialize_bytes(raw: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise HTTPError(400, "malformed BYTES tensor: truncated length prefix")
        (n,) = struct.unpack_from("<I", raw, i)
        i += 4
        out.append(raw[i : i + n])
        i += n
    return out


def _serialize_bytes(values: list[Any]) -> bytes:
    out = bytearray()
    for v in values:
        b = v if isinstance(v, bytes) else str(v).encode()
        out += struct.pack("<I", len(b)) + b
    return bytes(out)


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [y for x in data for y in _flatten(x)]
    return [data]


class FakeKServeServer(FakeServer):
    family = "kserve"
    request_id_header = "x-request-id"
    _MP = r"/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?"
    ROUTES = [
        ("GET", r"/v2", "server_meta"),
        ("GET", r"/v2/health/live", "live"),
        ("GET", r"/v2/health/ready", "live"),
        ("GET", _MP, "model_meta"),
        ("GET", _MP + r"/ready", "model_ready"),
        ("POST", _MP + r"/infer", "infer"),
    ]

    def __init__(self, *args: Any, models: dict[str, KServeModel] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.models = default_models(self.embedding_dim) if models is None else models

    def error_body(self, status: int, message: str, code: str | None = None) -> Any:
        return {"error": message}

    def not_found(self, req: Request) -> HTTPError:
        return HTTPError(404, "Not Found")

    def server_meta(self, req: Request) -> Response:
        return Response(
            {
                "name": "OpenVINO Model Server (ipfs-accelerate fake)",
                "version": "2025.0",
                "extensions": ["binary_tensor_data"],
            }
        )

    def live(self, req: Request) -> Response:
        return Response(b"", content_type="text/plain")

    def _model(self, req: Request) -> KServeModel:
        model = self.models.get(req.params["model"])
        if model is None:
            raise HTTPError(404, "Model with requested name is not found")
        version = req.params.get("version")
        if version is not None and version not in model.versions:
            raise HTTPError(404, "Model with requested version is not found")
        return model

    def model_meta(self, req: Request) -> Response:
        m = self._model(req)
        return Response(
            {
                "name": m.name,
                "versions": list(m.versions),
                "platform": m.platform,
                "inputs": [t.meta() for t in m.inputs],
                "outputs": [t.meta() for t in m.outputs],
                **m.extra,
            }
        )

    def model_ready(self, req: Request) -> Response:
        self._model(req)
        return Response(b"", content_type="text/plain")

    # -- inference ---------------------------------------------------------------------------
    def _decode_inputs(
        self, req: Request, model: KServeModel
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        import numpy as np

        header_len = req.headers.get("inference-header-content-length")
        if header_len is not None:
            n = int(header_len)
            head_raw, binary = req.body[:n], req.body[n:]
        else:
            head_raw, binary = req.body, b""
        try:
            head = json.loads(head_raw)
        except ValueError as exc:
            raise HTTPError(400, f"Invalid JSON in request body: {exc}") from exc
        if not isinstance(head, dict) or not isinstance(head.get("inputs"), list):
            raise HTTPError(400, "Invalid request: 'inputs' is required")
        specs = {t.name: t for t in model.inputs}
        arrays: dict[str, Any] = {}
        offset = 0
        for item in head["inputs"]:
            name, dtype, shape = item.get("name"), item.get("datatype"), item.get("shape")
            if name not in specs:
                raise HTTPError(400, f"Unexpected input name: {name}")
            spec = specs[name]
            if dtype != spec.datatype:
                raise HTTPError(
                    400, f"Invalid input precision - Expected: {spec.datatype}; Actual: {dtype}"
                )
            if (
                not isinstance(shape, list)
                or len(shape) != len(spec.shape)
                or any(s != -1 and s != d for s, d in zip(spec.shape, shape, strict=False))
            ):
                raise HTTPError(
                    400, f"Invalid input shape - Expected: {list(spec.shape)}; Actual: {shape}"
                )
            count = 1
            for d in shape:
                count *= int(d)
            size = (item.get("parameters") or {}).get("binary_data_size")
            if size is not None:
                chunk = binary[offset : offset + int(size)]
                offset += int(size)
                if len(chunk) != int(size):
                    raise HTTPError(400, f"Invalid binary data size for input {name}")
                if dtype == "BYTES":
                    values = np.array(_deserialize_bytes(chunk), dtype=object)
                else:
                    values = np.frombuffer(chunk, dtype=DTYPES[dtype])
            else:
                flat = _flatten(item.get("data"))
                if dtype == "BYTES":
                    values = np.array(
                        [v.encode() if isinstance(v, str) else v for v in flat], dtype=object
                    )
                else:
                    try:
                        values = np.array(flat, dtype=DTYPES[dtype])
                    except (TypeError, ValueError) as exc:
                        raise HTTPError(400, f"Invalid data for input {name}: {exc}") from exc
            if values.size != count:
                raise HTTPError(
                    400,
                    f"Invalid number of elements in input {name}: expected {count}, got {values.size}",
                )
            arrays[name] = values.reshape(shape)
        missing = set(specs) - set(arrays)
        if missing:
            raise HTTPError(400, f"Missing required input(s): {', '.join(sorted(missing))}")
        return head, arrays

    def infer(self, req: Request) -> Response:
        import numpy as np

        model = self._model(req)
        head, arrays = self._decode_inputs(req, model)
        results = model.fn(arrays)
        out_specs = {t.name: t for t in model.outputs}
        requested = head.get("outputs")
        binary_default = bool((head.get("parameters") or {}).get("binary_data_output"))
        if requested:
            wanted = []
            for o in requested:
                if o.get("name") not in out_specs:
                    raise HTTPError(400, f"Unexpected output name: {o.get('name')}")
                wanted.append(
                    (
                        o["name"],
                        bool((o.get("parameters") or {}).get("binary_data", binary_default)),
                    )
                )
        else:
            wanted = [(name, binary_default) for name in out_specs]
        outputs, blobs = [], []
        for name, as_binary in wanted:
            spec = out_specs[name]
            arr = np.asarray(results[name])
            entry: dict[str, Any] = {
                "name": name,
                "datatype": spec.datatype,
                "shape": list(arr.shape),
            }
            flat = arr.reshape(-1)
            if as_binary:
                blob = (
                    _serialize_bytes(list(flat))
                    if spec.datatype == "BYTES"
                    else flat.astype(DTYPES[spec.datatype]).tobytes()
                )
                entry["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            elif spec.datatype == "BYTES":
                entry["data"] = [v.decode() if isinstance(v, bytes) else str(v) for v in flat]
            else:
                entry["data"] = flat.tolist()
            outputs.append(entry)
        body: dict[str, Any] = {
            "model_name": model.name,
            "model_version": req.params.get("version", model.versions[-1]),
            "outputs": outputs,
        }
        if "id" in head:
            body["id"] = head["id"]
        if not blobs:
            return Response(body)
        header = json.dumps(body, separators=(",", ":")).encode()
        return Response(
            header + b"".join(blobs),
            content_type="application/octet-stream",
            headers={"inference-header-content-length": str(len(header))},
        )
