"""The skill of a task family that has no input recipe yet (e.g. keypoint matching, pointmaps).

Its cases still exist, so the type is accounted for: building the model runs for real, making
inputs raises, and the registry declares the gap, so the case is a strict xfail that turns into an
xpass the day a recipe lands.
"""

from __future__ import annotations

from typing import Any

from ..hardware.backends import Arrays
from ..registry import TaskSpec
from .base import Skill


class UnsupportedSkill(Skill):
    def inputs(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        raise NotImplementedError(f"no input recipe for task family {task.task!r} ({task.head}) yet")


SKILL = UnsupportedSkill()
