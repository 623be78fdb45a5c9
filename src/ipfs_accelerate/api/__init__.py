"""Inference-API clients: one resilient core (``api.core``) and thin providers.

Importing this package is cheap and has no side effects (httpx loads only when a core name is
first used); providers load on demand::

    from ipfs_accelerate.api import get_provider_class
    OpenAI = get_provider_class("openai_api")
    with OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="sk-test") as client:
        print(client.chat("hello", model="tiny").text)

The error classes are re-exported here so callers catch ``ipfs_accelerate.api.RateLimitError``.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import providers as _providers

#: the registry's names (light: no httpx); the rest of the public surface comes from the core on
#: first use: the error classes (``core._errors.__all__``, the one list of them), Provider, Secret
_OWN = ("PROVIDERS", "PROVIDER_NAMES", "ProviderInfo", "available_providers", "get_provider_class")
_CORE_EXTRAS = ("Provider", "Secret")


def _from_core() -> tuple[str, ...]:
    from .core import _errors

    return (*(n for n in _errors.__all__ if n[:1].isupper()), *_CORE_EXTRAS)


def __getattr__(name: str) -> Any:
    # ``__all__`` is computed here too, so importing this package still loads no core (httpx)
    if name == "__all__":
        return sorted((*_OWN, *_from_core()))
    if name in _OWN:
        return getattr(_providers, name)
    if not name.startswith("_") and name in _from_core():
        return getattr(importlib.import_module(f"{__name__}.core"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
