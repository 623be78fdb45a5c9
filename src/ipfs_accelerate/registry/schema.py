"""Pydantic models of the registry's TOML tables: types checked, unknown keys refused.

A bad entry fails with one line per problem naming the file, the table and the field
(``registry: language.toml [bert] tasks.fill-mask.head: Input should be a valid string``), so a
typo in a hand-edited table never turns into a silently ignored setting.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .spec import CATEGORIES, HARDWARE

Category = Literal["language", "vision", "audio", "multimodal", "specialized"]
assert set(CATEGORIES) == set(Category.__args__)  # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToleranceEntry(_Strict):
    atol: float = Field(ge=0)
    rtol: float = Field(ge=0)
    reason: str = Field(min_length=1)
    min_cosine: float | None = None


class TaskEntry(_Strict):
    head: str = Field(min_length=1)
    skill: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    known_incompatible: dict[str, str] = Field(default_factory=dict)


class TaskOverride(_Strict):
    """Per-head settings of a derived type; the head class itself comes from transformers."""

    head: str | None = None
    skill: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    known_incompatible: dict[str, str] = Field(default_factory=dict)


def _hardware_keys(value: dict[str, Any]) -> dict[str, Any]:
    for hw in value:
        if hw.split(":")[0] not in HARDWARE:
            raise ValueError(f"unknown hardware {hw!r}; known: {', '.join(HARDWARE)}")
    return value


class ModelEntry(_Strict):
    """One hand-written table in ``models/<category>.toml``."""

    category: Category
    task: str
    tasks: dict[str, str | TaskEntry] = Field(min_length=1)
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    config_class: str | None = None
    shrink: bool = True
    init_std: float | None = Field(default=None, gt=0)
    requires: list[str] = Field(default_factory=list)
    known_incompatible: dict[str, str] = Field(default_factory=dict)
    tolerances: dict[str, ToleranceEntry] = Field(default_factory=dict)
    pretrained: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    patches: list[str] = Field(default_factory=list)

    _hw = field_validator("known_incompatible", "tolerances")(_hardware_keys)


class OverrideEntry(_Strict):
    """One table in ``models/overrides.toml``: what a *derived* type needs beyond the generic
    shrink and its task skills. Everything is optional; tasks name existing heads' tasks."""

    task: str | None = None
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    config_class: str | None = None
    init_std: float | None = Field(default=None, gt=0)
    requires: list[str] = Field(default_factory=list)
    known_incompatible: dict[str, str] = Field(default_factory=dict)
    tolerances: dict[str, ToleranceEntry] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)
    patches: list[str] = Field(default_factory=list)
    tasks: dict[str, TaskOverride] = Field(default_factory=dict)

    _hw = field_validator("known_incompatible", "tolerances")(_hardware_keys)


class RegistryError(ValueError):
    """A registry table that does not validate; the message names file, table and field."""


def validate(model: type[_Strict], raw: dict[str, Any], file: str, table: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(table)"
            lines.append(f"registry: {file} [{table}] {loc}: {err['msg']}")
        raise RegistryError("\n".join(lines)) from None
