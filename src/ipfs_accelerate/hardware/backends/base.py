"""One backend interface: turn a built PyTorch model into a callable on named numpy arrays.

A backend answers three questions: is it available here (and why not), how to prepare a model
for it (move / convert / compile, timed), and how to run prepared inputs. Everything else —
inputs, generation loops, parity, metrics — is shared and lives in skills/ and harness/.
Adding a platform is one module with one `Backend` subclass registered in `BACKENDS`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""
    device: str = ""


@dataclass
class Prepared:
    """A model ready to run on one backend. ``run`` maps named inputs to flat named outputs."""

    backend: str
    device: str
    precision: str
    run_fn: Any
    prepare_s: float = 0.0
    path: str = ""  # how it was obtained, e.g. "eager", "convert_model", "flat-wrapper", "torch.export"
    notes: list[str] = field(default_factory=list)
    # other precisions of the same prepared artifact, built on demand (e.g. OpenVINO's default
    # bf16 from the already-converted graph), reported beside the parity mode
    variants: dict[str, Any] = field(default_factory=dict)

    def __call__(self, inputs: Arrays) -> Arrays:
        return self.run_fn(inputs)


class UnsupportedModel(RuntimeError):
    """The backend cannot run this model; the message says which attempts failed and why."""


class Backend(ABC):
    name: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)

    def __init__(self, precision: str = "fp32", threads: int = 1) -> None:
        if precision not in self.precisions:
            raise ValueError(f"{self.name} supports precisions {self.precisions}, not {precision!r}")
        self.precision = precision
        self.threads = threads

    @abstractmethod
    def availability(self) -> Availability: ...

    @abstractmethod
    def _prepare(self, model: Any, example: Arrays, output_names: list[str]) -> Prepared: ...

    def prepare(self, model: Any, example: Arrays, output_names: list[str]) -> Prepared:
        start = time.perf_counter()
        prepared = self._prepare(model, example, output_names)
        prepared.prepare_s = time.perf_counter() - start
        return prepared


def flatten_outputs(out: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a ModelOutput / tuple / tensor into ``{dotted_name: tensor}`` in to_tuple() order.

    The order matches what TorchScript tracing emits for the same output, so converted graphs'
    outputs can be mapped back by position.
    """
    import torch

    flat: dict[str, Any] = {}
    if isinstance(out, torch.Tensor):
        flat[prefix or "output"] = out
    elif hasattr(out, "keys") and hasattr(out, "to_tuple"):
        for key in out.keys():
            value = out[key]
            if value is not None:
                flat.update(flatten_outputs(value, f"{prefix}.{key}" if prefix else key))
    elif isinstance(out, dict):
        for key, value in out.items():
            if value is not None:
                flat.update(flatten_outputs(value, f"{prefix}.{key}" if prefix else key))
    elif isinstance(out, (tuple, list)):
        for i, value in enumerate(out):
            if value is not None:
                flat.update(flatten_outputs(value, f"{prefix}.{i}" if prefix else str(i)))
    return flat


def forward_order(model: Any, names: list[str]) -> list[str]:
    """Input names in the order of ``model.forward``'s signature (converters bind positionally)."""
    import inspect

    params = list(inspect.signature(model.forward).parameters)
    ordered = [p for p in params if p in names]
    return ordered + [n for n in names if n not in ordered]
