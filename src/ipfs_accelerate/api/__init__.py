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

from .providers import (
    PROVIDER_NAMES,
    PROVIDERS,
    ProviderInfo,
    available_providers,
    get_provider_class,
)

_FROM_CORE = (
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "Provider",
    "QueueFullError",
    "RateLimitError",
    "ResponseDecodeError",
    "Secret",
    "ServerError",
    "StreamError",
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ConflictError",
    "NotFoundError",
    "PROVIDERS",
    "PROVIDER_NAMES",
    "PermissionDeniedError",
    "Provider",
    "ProviderInfo",
    "QueueFullError",
    "RateLimitError",
    "ResponseDecodeError",
    "Secret",
    "ServerError",
    "StreamError",
    "available_providers",
    "get_provider_class",
]


def __getattr__(name: str) -> Any:
    if name in _FROM_CORE:
        return getattr(importlib.import_module(f"{__name__}.core"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
