"""Model registry: data in ``models/<category>.toml``, a small query API here (timm-style).

    >>> from ipfs_accelerate import registry
    >>> registry.get("bert").task
    'fill-mask'
    >>> [m.name for m in registry.list_models(category="audio")][:2]

Importing this module never imports torch or transformers.
"""

from __future__ import annotations

import fnmatch
import tomllib
from functools import lru_cache
from importlib import resources
from typing import Any

from .errors import UnknownNameError
from .spec import CATEGORIES, HARDWARE, TASK_SKILLS, ModelSpec, TaskSpec, Tolerance

__all__ = [
    "CATEGORIES",
    "HARDWARE",
    "TASK_SKILLS",
    "ModelSpec",
    "TaskSpec",
    "Tolerance",
    "UnknownNameError",
    "all_tasks",
    "get",
    "list_models",
    "load",
]

# (category, task) pairs whose skill differs from the task's default family.
_CATEGORY_SKILL = {
    ("audio", "feature-extraction"): "audio",
    ("vision", "feature-extraction"): "vision",
    ("multimodal", "feature-extraction"): "multimodal",
    ("specialized", "feature-extraction"): "timeseries",
}

_MODEL_KEYS = {
    "category", "task", "tasks", "description", "config", "config_class", "shrink", "init_std",
    "requires", "known_incompatible", "tolerances", "pretrained", "inputs", "patches",
}


def _task_spec(model: str, category: str, task: str, value: Any, inputs: dict) -> TaskSpec:
    if isinstance(value, str):
        value = {"head": value}
    if task not in TASK_SKILLS and "skill" not in value:
        raise ValueError(f"registry: model {model!r} task {task!r} is not a known task")
    skill = value.get("skill") or _CATEGORY_SKILL.get((category, task)) or TASK_SKILLS[task]
    return TaskSpec(
        task=task,
        head=value["head"],
        skill=skill,
        inputs={**inputs, **value.get("inputs", {})},
        config=value.get("config", {}),
    )


def _parse(name: str, raw: dict[str, Any]) -> ModelSpec:
    unknown = set(raw) - _MODEL_KEYS
    if unknown:
        raise ValueError(f"registry: model {name!r} has unknown keys {sorted(unknown)}")
    category = raw["category"]
    if category not in CATEGORIES:
        raise ValueError(f"registry: model {name!r} has unknown category {category!r}")
    inputs = raw.get("inputs", {})
    tasks = {t: _task_spec(name, category, t, v, inputs) for t, v in raw["tasks"].items()}
    if raw["task"] not in tasks:
        raise ValueError(f"registry: model {name!r} default task {raw['task']!r} not in its tasks")
    for hw in raw.get("known_incompatible", {}):
        if hw not in HARDWARE:
            raise ValueError(f"registry: model {name!r} known_incompatible names unknown hardware {hw!r}")
    return ModelSpec(
        name=name,
        category=category,
        task=raw["task"],
        tasks=tasks,
        description=raw.get("description", ""),
        config=raw.get("config", {}),
        config_class=raw.get("config_class"),
        shrink=raw.get("shrink", True),
        init_std=raw.get("init_std"),
        requires=tuple(raw.get("requires", ())),
        known_incompatible=dict(raw.get("known_incompatible", {})),
        tolerances={k: Tolerance(**v) for k, v in raw.get("tolerances", {}).items()},
        pretrained=raw.get("pretrained"),
        patches=tuple(raw.get("patches", ())),
    )


@lru_cache(maxsize=1)
def load() -> dict[str, ModelSpec]:
    """Parse ``models/<category>.toml`` once; entries keep category then file order."""
    out: dict[str, ModelSpec] = {}
    folder = resources.files(__package__).joinpath("models")
    for category in CATEGORIES:
        text = folder.joinpath(f"{category}.toml").read_text(encoding="utf-8")
        for name, raw in tomllib.loads(text).items():
            if name in out:
                raise ValueError(f"registry: model {name!r} is defined twice")
            spec = _parse(name, raw)
            if spec.category != category:
                raise ValueError(f"registry: model {name!r} is in {category}.toml but has category {spec.category!r}")
            out[name] = spec
    return out


def get(name: str) -> ModelSpec:
    """Return one model's spec, or raise UnknownNameError with suggestions."""
    models = load()
    if name not in models:
        alias = name.replace("-", "_").lower()
        if alias in models:
            return models[alias]
        raise UnknownNameError("model", name, list(models))
    return models[name]


def list_models(
    pattern: str | None = None,
    *,
    category: str | None = None,
    task: str | None = None,
    names: list[str] | None = None,
) -> list[ModelSpec]:
    """Select registry entries by wildcard, category, supported task, or explicit names."""
    if category not in (None, "all") and category not in CATEGORIES:
        raise UnknownNameError("category", category, [*CATEGORIES, "all"])
    if task is not None and task not in all_tasks():
        raise UnknownNameError("task", task, all_tasks())
    selected = [get(n) for n in names] if names else list(load().values())
    out = []
    for spec in selected:
        if pattern and not fnmatch.fnmatch(spec.name, pattern):
            continue
        if category not in (None, "all") and spec.category != category:
            continue
        if task is not None and task not in spec.tasks:
            continue
        out.append(spec)
    return out


def all_tasks() -> list[str]:
    return sorted({t for spec in load().values() for t in spec.tasks})
