"""PyTorch eager execution shared by the `cpu` and `cuda` backends (they differ only in device
and dtype)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Arrays, Backend, Prepared, flatten_outputs

TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class TorchBackend(Backend):
    device_type = "cpu"

    def device(self) -> str:
        return self.device_type

    def _prepare(self, model: Any, example: Arrays, output_names: list[str]) -> Prepared:
        import torch

        device = self.device()
        dtype = getattr(torch, TORCH_DTYPES[self.precision])
        model = model.to(device=device, dtype=dtype) if self.precision != "fp32" else model.to(device)

        def run(inputs: Arrays) -> Arrays:
            feed = {}
            for key, value in inputs.items():
                t = torch.from_numpy(np.ascontiguousarray(value)).to(device)
                if t.is_floating_point():
                    t = t.to(dtype)
                feed[key] = t
            with torch.inference_mode():
                out = model(**feed)
            if device.startswith("cuda"):
                torch.cuda.synchronize(device)
            return {
                k: (v.float() if v.is_floating_point() else v).cpu().numpy()
                for k, v in flatten_outputs(out).items()
            }

        return Prepared(self.name, device, self.precision, run, path="eager")
