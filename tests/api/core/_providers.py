"""Helpers to build every registered httpx-based provider against a scripted transport."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ipfs_accelerate.api.core import FakeClock, Provider
from ipfs_accelerate.api.providers import PROVIDER_NAMES, PROVIDERS, get_provider_class

from .conftest import NoJitter, Script


def provider_params() -> list[Any]:
    """One pytest param per registry name; skipped (with the reason) when not available."""
    params = []
    for name in PROVIDER_NAMES:
        marks: list[Any] = []
        try:
            cls = get_provider_class(name)
        except ModuleNotFoundError as exc:
            if exc.name != PROVIDERS[name].module:
                raise
            marks.append(pytest.mark.skip(reason=f"{name}: provider module not written yet"))
        else:
            if not (isinstance(cls, type) and issubclass(cls, Provider)):
                marks.append(
                    pytest.mark.skip(reason=f"{name}: botocore, not httpx: no scripted transport (same retry loop; the kit runs it over HTTP)")
                )
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def build(name: str, clock: FakeClock, script: Script, **kw: Any) -> Provider:
    cls = get_provider_class(name)
    kw.setdefault("api_key", "sk-test-0000")
    kw.setdefault("breaker", None)
    return cls(
        base_url="http://api.test",
        clock=clock,
        rng=NoJitter(),
        transport=httpx.MockTransport(script),
        env={},
        **kw,
    )
