"""Backends by name. Adding a platform: one module with a `Backend` subclass, one line here."""

from __future__ import annotations

import importlib

from .base import Arrays, Availability, Backend, Prepared, UnsupportedModel, flatten_outputs

_BACKENDS = {
    "cpu": "ipfs_accelerate.hardware.backends.cpu:CPUBackend",
    "cuda": "ipfs_accelerate.hardware.backends.cuda:CUDABackend",
    "openvino": "ipfs_accelerate.hardware.backends.openvino:OpenVINOBackend",
}

__all__ = ["Arrays", "Availability", "Backend", "Prepared", "UnsupportedModel", "flatten_outputs", "get_backend", "names"]


def names() -> list[str]:
    return list(_BACKENDS)


def get_backend(name: str, precision: str = "fp32", threads: int = 1) -> Backend:
    if name not in _BACKENDS:
        from ...registry.errors import UnknownNameError

        raise UnknownNameError("hardware", name, list(_BACKENDS))
    module, cls = _BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(precision=precision, threads=threads)
