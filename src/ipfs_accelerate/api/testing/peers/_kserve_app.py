"""Standalone KServe v2 model server for the ``ovms`` peer tests (run by kserve's own python).

This file imports only kserve and numpy, never ``ipfs_accelerate``: kserve lives in its own venv
(it pins psutil<6) and is started as ``<kserve-python> _kserve_app.py --port N``.

Models served (KServe v2 / Open Inference Protocol, the REST protocol OVMS speaks):
  * ``tiny``: INPUT0 FP32 [-1, 4] -> OUTPUT0 FP32 [-1, 3] = INPUT0 @ W + B and
    OUTPUT1 INT64 [-1] = argmax(OUTPUT0, axis=1). W and B are below so tests can recompute.
  * ``echo``: returns every input tensor unchanged (same name, datatype, shape): a typed
    round-trip check for INT8..FP64, BOOL and BYTES.
"""

from __future__ import annotations

import argparse
import sys
import uuid

import numpy as np

W = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32)
B = np.array([0.5, -0.5, 0.0], dtype=np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    opts = ap.parse_args()
    sys.argv = sys.argv[:1]  # kserve parses sys.argv at import; give it nothing of ours

    import kserve
    from kserve import model_server as ms
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    class _LoopbackRESTServer(ms.RESTServer):
        """kserve hard-codes host 0.0.0.0; tests must not listen on external interfaces."""

        def __init__(self, *a, **kw):  # type: ignore[no-untyped-def]
            super().__init__(*a, **kw)
            self.config.host = opts.host

    ms.RESTServer = _LoopbackRESTServer

    def _respond(model: kserve.Model, req: InferRequest, outs: list[InferOutput]) -> InferResponse:
        # kserve rejects a response whose id is None: echo the request id or make one.
        return InferResponse(
            response_id=req.id or str(uuid.uuid4()), model_name=model.name, infer_outputs=outs
        )

    class Tiny(kserve.Model):
        def __init__(self) -> None:
            super().__init__("tiny")
            self.ready = True

        def get_input_types(self) -> list[dict]:
            return [{"name": "INPUT0", "datatype": "FP32", "shape": [-1, 4]}]

        def get_output_types(self) -> list[dict]:
            return [
                {"name": "OUTPUT0", "datatype": "FP32", "shape": [-1, 3]},
                {"name": "OUTPUT1", "datatype": "INT64", "shape": [-1]},
            ]

        async def predict(self, payload: InferRequest, headers=None, response_headers=None):  # type: ignore[no-untyped-def]
            inp = payload.get_input_by_name("INPUT0")
            if inp is None:
                raise kserve.errors.InvalidInput("missing input INPUT0")
            x = inp.as_numpy().astype(np.float32).reshape(-1, 4)
            y = x @ W + B
            o0 = InferOutput("OUTPUT0", list(y.shape), "FP32")
            o0.set_data_from_numpy(y, binary_data=False)
            idx = np.argmax(y, axis=1).astype(np.int64)
            o1 = InferOutput("OUTPUT1", list(idx.shape), "INT64")
            o1.set_data_from_numpy(idx, binary_data=False)
            return _respond(self, payload, [o0, o1])

    class Echo(kserve.Model):
        def __init__(self) -> None:
            super().__init__("echo")
            self.ready = True

        async def predict(self, payload: InferRequest, headers=None, response_headers=None):  # type: ignore[no-untyped-def]
            outs = []
            for inp in payload.inputs:
                arr = inp.as_numpy()
                out = InferOutput(inp.name, list(arr.shape), inp.datatype)
                out.set_data_from_numpy(arr, binary_data=False)
                outs.append(out)
            return _respond(self, payload, outs)

    server = kserve.ModelServer(
        http_port=opts.port, enable_grpc=False, workers=1, enable_latency_logging=False
    )
    server.start([Tiny(), Echo()])


if __name__ == "__main__":
    main()
