"""The core is a layer under the providers: no module of ``api/core`` imports ``api/providers``,
not even lazily inside a function (each provider hands the core its registry entry instead)."""

from __future__ import annotations

import ast
from pathlib import Path

import ipfs_accelerate.api.core as core
from ipfs_accelerate.api.providers import PROVIDER_NAMES, PROVIDERS, get_provider_class


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ("." * node.level) + (node.module or "")
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def test_no_core_module_imports_the_providers() -> None:
    files = sorted(Path(core.__file__).parent.glob("*.py"))
    assert len(files) > 10
    offending = {
        f.name: sorted(n for n in _imports(f) if "providers" in n.split(".")) for f in files
    }
    assert {k: v for k, v in offending.items() if v} == {}


def test_every_httpx_provider_carries_its_registry_entry() -> None:
    for name in PROVIDER_NAMES:
        cls = get_provider_class(name)
        if issubclass(cls, core.Provider):
            assert cls.info is PROVIDERS[name], name
