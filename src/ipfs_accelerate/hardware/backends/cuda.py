"""PyTorch on an NVIDIA (or ROCm, which torch exposes as cuda) GPU.

fp32 runs with TF32 disabled so parity against CPU is meaningful; fp16/bf16 are opt-in
precisions with their own tolerances.
"""

from __future__ import annotations

import os

from .base import Availability
from .torch_eager import TorchBackend


def select_device(torch_mod=None, env: dict[str, str] | None = None) -> Availability:
    """Pick the CUDA device to use: ``IPFS_ACCEL_CUDA_DEVICE`` (index) or 0, if any is usable.

    Takes the torch module and environment as arguments so tests can answer each question
    (no torch, no CUDA build, no device, bad index) without a GPU.
    """
    env = os.environ if env is None else env
    if torch_mod is None:
        try:
            import torch as torch_mod
        except ImportError as exc:
            return Availability(False, f"torch not installed: {exc}")
    if not torch_mod.cuda.is_available():
        build = "CPU-only torch build" if torch_mod.version.cuda is None and not getattr(torch_mod.version, "hip", None) else "no CUDA device visible"
        return Availability(False, f"CUDA unavailable: {build}")
    count = torch_mod.cuda.device_count()
    raw = env.get("IPFS_ACCEL_CUDA_DEVICE", "0")
    try:
        index = int(raw)
    except ValueError:
        return Availability(False, f"IPFS_ACCEL_CUDA_DEVICE={raw!r} is not an integer")
    if not 0 <= index < count:
        return Availability(False, f"CUDA device {index} requested but only {count} visible")
    return Availability(True, device=f"cuda:{index}")


class CUDABackend(TorchBackend):
    name = "cuda"
    precisions = ("fp32", "fp16", "bf16")

    def availability(self) -> Availability:
        return select_device()

    def device(self) -> str:
        import torch

        avail = self.availability()
        if not avail.ok:
            raise RuntimeError(avail.reason)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return avail.device
