"""The provider registry: every API backend's name, class, protocol family and environment.

This module reads pure data (``providers.toml``; no httpx, no SDKs, no side effects), so the test generator and the
CLI can read it cheaply. Classes are imported only by :func:`get_provider_class`.

Conventions every provider module follows:

* module ``ipfs_accelerate.api.providers.<name>``, class ``<info.class_name>``, a subclass of
  :class:`ipfs_accelerate.api.core.Provider` whose ``name`` equals the registry name
  (``s3_kit`` is the exception: it is built on boto3, not on the httpx core);
* ``key_env``: environment variables tried in order for the API key (comma-separated values
  give several keys, rotated); ``url_env``: the same for the base URL;
* ``family``: the wire protocol, which names the local fake server that speaks it
  (``ipfs_accelerate.api.testing``);
* ``real_mode_env``: the variables whose presence switches the API tests to the real service.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PROVIDERS",
    "PROVIDER_NAMES",
    "ProviderInfo",
    "available_providers",
    "get_provider_class",
]


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    name: str
    class_name: str
    family: str
    default_base_url: str
    key_env: tuple[str, ...] = ()
    url_env: tuple[str, ...] = ()
    key_required: bool = False
    streaming: str | None = "sse"  # "sse", "ndjson" or None
    description: str = ""

    @property
    def module(self) -> str:
        return f"{__name__}.{self.name}"

    @property
    def real_mode_env(self) -> tuple[str, ...]:
        """Variables that, when set, point the API tests at a real service."""
        return self.key_env if self.key_required else self.url_env


def _read_table() -> list[ProviderInfo]:
    """The registry rows from ``providers.toml`` (data, not code: one table per backend)."""
    import tomllib
    from importlib.resources import files

    table = tomllib.loads(files(__name__).joinpath("providers.toml").read_text(encoding="utf-8"))
    rows = []
    for name, row in table.items():
        streaming = row.pop("streaming", "sse")
        rows.append(ProviderInfo(name, **{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()},
                                 streaming=None if streaming == "none" else streaming))
    return rows


_ALL = _read_table()

PROVIDERS: dict[str, ProviderInfo] = {p.name: p for p in _ALL}
PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)


def get_provider_class(name: str) -> Any:
    """Import and return the provider class registered under ``name``."""
    info = PROVIDERS[name]
    module = importlib.import_module(info.module)
    return getattr(module, info.class_name)


def available_providers() -> dict[str, Any]:
    """Name → class for every provider whose module exists (not yet written ones are left out)."""
    found: dict[str, Any] = {}
    for name in PROVIDER_NAMES:
        try:
            found[name] = get_provider_class(name)
        except ModuleNotFoundError as exc:
            if exc.name != PROVIDERS[name].module:
                raise  # the module exists but is broken: say so
    return found
