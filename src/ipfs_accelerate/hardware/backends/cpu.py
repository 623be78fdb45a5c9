"""PyTorch eager on the CPU: the reference every other backend is compared with."""

from __future__ import annotations

from .base import Availability
from .torch_eager import TorchBackend


class CPUBackend(TorchBackend):
    name = "cpu"
    precisions = ("fp32", "bf16")
    device_type = "cpu"

    def availability(self) -> Availability:
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"torch not installed: {exc}")
        return Availability(True, device="cpu")
