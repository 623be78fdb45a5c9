"""Task skills: one per task family. A skill builds deterministic inputs, runs a prepared model
(one forward, or a greedy loop of forwards for generation), and checks that outputs have the
shapes the task implies. Backends never see tasks; skills never see devices.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..hardware.backends import Arrays, Prepared
from ..registry import TaskSpec


@dataclass
class Outputs:
    """What one run produced: flat named arrays, and greedy token ids for generation tasks."""

    arrays: Arrays
    tokens: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Skill:
    """Base skill: single forward; subclasses override `inputs`, `expected` and maybe `run`."""

    def inputs(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        raise NotImplementedError

    def example(self, built: Any, task: TaskSpec) -> Arrays:
        """Inputs used to trace/convert for graph backends: batch 2, so no dim is traced as 1."""
        return self.inputs(built, task, 2)

    def run(self, prepared: Prepared, inputs: Arrays, built: Any, task: TaskSpec) -> Outputs:
        return Outputs(arrays=prepared(inputs))

    def expected(self, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> dict[str, tuple]:
        """Output name -> expected shape (None in a dim means any) for this task."""
        return {}

    def check_unnamed_states(self, outputs: Outputs, task: TaskSpec, batch: int) -> bool:
        """Feature extraction from a model that names no ``last_hidden_state`` (DPR's pooled
        embedding, LXMERT's two streams, a vocoder's waveform): every output must be one finite
        row per input. True when this rule applied (the named-shape check has nothing to read)."""
        if task.task != "feature-extraction" or "last_hidden_state" in outputs.arrays or not outputs.arrays:
            return False
        for name, value in outputs.arrays.items():
            assert value.shape[:1] == (batch,), f"{task.task}: output {name!r} has shape {value.shape}, batch {batch}"
            if value.dtype.kind == "f":
                assert np.isfinite(value).all(), f"{task.task}: output {name!r} has NaN/inf"
        return True

    def check(self, outputs: Outputs, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> None:
        """Raise AssertionError if a named output is missing or has the wrong shape."""
        for name, shape in self.expected(built, task, batch, inputs).items():
            if name == "tokens":
                actual = None if outputs.tokens is None else outputs.tokens.shape
            else:
                actual = outputs.arrays[name].shape if name in outputs.arrays else None
            assert actual is not None, f"{task.task}: output {name!r} missing (have {sorted(outputs.arrays)})"
            ok = len(actual) == len(shape) and all(e is None or e == a for e, a in zip(shape, actual, strict=True))
            assert ok, f"{task.task}: output {name!r} has shape {tuple(actual)}, expected {shape}"
        for name, value in outputs.arrays.items():
            if value.dtype.kind == "f":
                assert np.isfinite(value).all(), f"{task.task}: output {name!r} has NaN/inf"


def accepted(model: Any, candidates: Arrays) -> Arrays:
    """Keep only the inputs the model's forward() accepts."""
    params = inspect.signature(model.forward).parameters
    return {k: v for k, v in candidates.items() if k in params}


def get_skill(name: str) -> Skill:
    module = importlib.import_module(f"ipfs_accelerate.skills.{name}")
    return module.SKILL
