"""Monocular depth estimation (DPT, GLPN, Depth Anything, ZoeDepth): image -> per-pixel depth.

Pixel values come from the model family's real image processor (the PIL-backed variant, so no
torchvision), built locally at a tiny size (`inputs.image_size`, `inputs.processor`) and applied
to `assets.image` (row i of a batch is image i). One forward; `predicted_depth` is
(batch, H, W). Depth heads end in ReLU/softplus and random weights can make the map nearly
constant, which the harness flags — registry entries pick an init that gives a real spread.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..hardware.backends import Arrays
from ..harness import assets
from ..registry import TaskSpec
from .base import Skill, accepted


@lru_cache(maxsize=8)
def processor(name: str, size: int):
    import transformers

    cls = getattr(transformers, name)
    if name.startswith("GLPN"):
        return cls(size_divisor=32)  # GLPN keeps the image size, rounded down to a multiple of 32
    return cls(size={"height": size, "width": size})


class DepthSkill(Skill):
    def inputs(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        size = int(task.inputs.get("image_size", 32))
        name = task.inputs.get("processor", "DPTImageProcessorPil")
        images = [assets.image(size + 8, i) for i in range(batch)]
        pixels = processor(name, size)(images, return_tensors="np")["pixel_values"]
        return accepted(built.model, {"pixel_values": np.ascontiguousarray(pixels, dtype=np.float32)})

    def expected(self, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> dict[str, tuple]:
        return {"predicted_depth": (batch, None, None)}

    def check(self, outputs: Any, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> None:
        super().check(outputs, built, task, batch, inputs)
        depth = outputs.arrays["predicted_depth"]
        assert (depth >= 0).all(), f"depth must be non-negative, min {depth.min():.3g}"


SKILL = DepthSkill()
