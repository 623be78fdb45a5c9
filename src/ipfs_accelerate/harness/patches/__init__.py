"""Named model patches a registry entry can ask for with ``patches = ["name"]``.

A patch is ``fn(model, config) -> model`` applied right after the tiny/pretrained build, for the
few architectures whose stock code a backend cannot convert (e.g. mixtral's grouped_mm experts,
PatchTSMixer's negative-dim ``unfold``). Each patch must keep CPU outputs identical (a test
checks this) and its docstring says what it works around. One module per category.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import audio, language, multimodal, specialized, vision

Patch = Callable[[Any, Any], Any]

PATCHES: dict[str, Patch] = {}
for _mod in (language, vision, audio, multimodal, specialized):
    for _name, _fn in _mod.PATCHES.items():
        if _name in PATCHES:
            raise ValueError(f"patch {_name!r} defined twice")
        PATCHES[_name] = _fn


def apply(names: tuple[str, ...], model: Any, config: Any) -> Any:
    for name in names:
        if name not in PATCHES:
            raise KeyError(f"unknown patch {name!r}; known: {sorted(PATCHES)}")
        model = PATCHES[name](model, config) or model
    return model
