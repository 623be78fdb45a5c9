"""Helpers shared by the per-category model tests. (No tests here.)"""

from __future__ import annotations

import dataclasses
from typing import Any

from ipfs_accelerate import registry
from ipfs_accelerate.harness import build


def tiny_build(model: str, task: str | None = None, patches: tuple[str, ...] | None = None) -> tuple[Any, Any, Any]:
    """(spec, task spec, tiny build) for a registry model; `patches` replaces the registry's list
    (e.g. `()` to prove a patch is needed)."""
    spec = registry.get(model)
    if patches is not None:
        spec = dataclasses.replace(spec, patches=patches)
    task_spec = spec.task_spec(task)
    return spec, task_spec, build.build_tiny(spec, task_spec)
