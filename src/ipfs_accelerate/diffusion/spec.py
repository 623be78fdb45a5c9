"""The diffusion case table (`pipelines.toml`) as typed records.

Data, not code: a new tiny pipeline is a TOML table. Loading validates every reference (component
ids, scheduler class, case kind) so a typo fails here with the name, not deep inside a build.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

KINDS = ("pipeline", "unet", "vae")
STYLES = ("sd", "sdxl")
CATEGORY = "multimodal"  # text in, image out; the registry's fixed category set has no "diffusion"
TASKS = {"pipeline": "text-to-image", "unet": "noise-prediction", "vae": "image-reconstruction"}


class DiffusionSpecError(ValueError):
    """The case table is inconsistent; the message names the case and the field."""


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    min_cosine: float
    reason: str = ""


@dataclass(frozen=True)
class DiffusionSpec:
    name: str
    kind: str
    description: str
    seed: int
    latent_size: int
    style: str = ""
    unet: str = ""
    vae: str = ""
    text_encoders: tuple[str, ...] = ()
    scheduler: str = ""
    scheduler_config: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    guidance_scale: float = 1.0
    prompt: str = ""
    negative_prompt: str = ""
    tolerance: dict[str, Tolerance] = field(default_factory=dict)  # backend -> parity tolerance

    @property
    def task(self) -> str:
        return TASKS[self.kind]

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(c for c in (*self.text_encoders, self.unet, self.vae) if c)


@dataclass(frozen=True)
class Table:
    tokenizer: dict[str, Any]
    components: dict[str, dict[str, Any]]
    cases: dict[str, DiffusionSpec]


def _case(name: str, raw: dict[str, Any], components: dict[str, dict[str, Any]]) -> DiffusionSpec:
    raw = dict(raw)
    tol = {k: Tolerance(**v) for k, v in raw.pop("tolerance", {}).items()}
    raw["text_encoders"] = tuple(raw.get("text_encoders", ()))
    try:
        spec = DiffusionSpec(name=name, tolerance=tol, **raw)
    except TypeError as exc:
        raise DiffusionSpecError(f"diffusion case {name!r}: {exc}") from exc
    if spec.kind not in KINDS:
        raise DiffusionSpecError(f"diffusion case {name!r}: kind {spec.kind!r} not in {KINDS}")
    if spec.kind == "pipeline" and spec.style not in STYLES:
        raise DiffusionSpecError(f"diffusion case {name!r}: style {spec.style!r} not in {STYLES}")
    need = {"pipeline": ("unet", "vae"), "unet": ("unet",), "vae": ("vae",)}[spec.kind]
    for key in need:
        if not getattr(spec, key):
            raise DiffusionSpecError(f"diffusion case {name!r}: needs {key!r}")
    if spec.kind == "pipeline" and len(spec.text_encoders) != (1 if spec.style == "sd" else 2):
        raise DiffusionSpecError(f"diffusion case {name!r}: style {spec.style} needs {1 if spec.style == 'sd' else 2} text encoders")
    for comp in spec.components:
        if comp not in components:
            raise DiffusionSpecError(f"diffusion case {name!r}: unknown component {comp!r} (known: {', '.join(sorted(components))})")
    return spec


def parse(text: str) -> Table:
    data = tomllib.loads(text)
    components = data.get("components", {})
    for cid, cfg in components.items():
        if "class" not in cfg:
            raise DiffusionSpecError(f"component {cid!r} has no 'class'")
    cases = {name: _case(name, raw, components) for name, raw in data.get("cases", {}).items()}
    return Table(tokenizer=data["tokenizer"], components=components, cases=cases)


@lru_cache(maxsize=1)
def table() -> Table:
    return parse(resources.files(__package__).joinpath("pipelines.toml").read_text(encoding="utf-8"))


def get(name: str) -> DiffusionSpec:
    cases = table().cases
    if name not in cases:
        from ..registry.errors import UnknownNameError

        raise UnknownNameError("diffusion case", name, list(cases))
    return cases[name]


def names() -> list[str]:
    return list(table().cases)
