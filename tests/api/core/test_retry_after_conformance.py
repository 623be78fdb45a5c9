"""The Retry-After conformance table, applied to every provider in the registry.

Each row is one 429 answer; the provider must either wait exactly the expected time before its
single retry (never sending early), or give up at once with RateLimitError. "backoff" means the
provider's own first backoff delay (0.5 s for the OpenAI family, 1 s for Gemini). Caps: 120 s
for the OpenAI family (as openai-python), 60 s for Claude (anthropic SDK) and Gemini.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ipfs_accelerate.api.core import APIStatusError, FakeClock, RateLimitError
from ipfs_accelerate.api.providers import get_provider_class
from ipfs_accelerate.api.testing.kit._tables import BACKOFF, GIVE_UP, RETRY_AFTER_TABLE, START_WALL

from ._providers import build, provider_params
from .conftest import Script, ok

# One table for the whole project: the kit applies the same rows over real HTTP.
TABLE = RETRY_AFTER_TABLE


def _expected(name: str, row_expected):
    policy = get_provider_class(name).retry_policy
    if callable(row_expected):
        row_expected = row_expected(policy.retry_after_cap)
    if row_expected == BACKOFF:
        return policy.backoff(0, 0.0)
    return row_expected


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("label", "headers", "row_expected"), TABLE, ids=[r[0] for r in TABLE])
@pytest.mark.parametrize("name", provider_params())
def test_retry_after_table(
    name: str, label: str, headers: dict[str, str], row_expected, mode: str
) -> None:
    clock = FakeClock(wall=START_WALL)
    script = Script(
        clock,
        [httpx.Response(429, headers=headers, json={"error": {"message": "slow down"}}), ok({})],
    )
    provider = build(name, clock, script)
    expected = _expected(name, row_expected)

    def call() -> None:
        if mode == "sync":
            provider.request("POST", "/probe", json={})
        else:

            async def main() -> None:
                try:
                    await provider.arequest("POST", "/probe", json={})
                finally:
                    await provider.aclose()

            asyncio.run(main())

    if expected == GIVE_UP:
        with pytest.raises(RateLimitError) as info:
            call()
        assert len(script.seen) == 1 and clock.sleeps == []
        assert info.value.status == 429
    else:
        call()
        assert len(script.seen) == 2
        assert script.gaps == [pytest.approx(expected)]
        assert clock.sleeps == [pytest.approx(expected)]
        # same idempotency key on the retry, retry count advanced
        first, second = script.seen
        assert first.headers.get("idempotency-key") == second.headers.get("idempotency-key")
        assert (first.headers["x-retry-count"], second.headers["x-retry-count"]) == ("0", "1")


def test_documented_caps_and_schedules() -> None:
    caps = {
        n: get_provider_class(n).retry_policy
        for n in ("openai_api", "groq", "vllm", "llvm", "claude", "gemini")
    }
    assert {n: p.retry_after_cap for n, p in caps.items()} == {
        "openai_api": 120.0,
        "groq": 120.0,
        "vllm": 120.0,
        "llvm": 120.0,
        "claude": 60.0,
        "gemini": 60.0,
    }
    assert (
        caps["openai_api"].initial_delay,
        caps["openai_api"].max_delay,
        caps["openai_api"].max_retries,
    ) == (0.5, 8.0, 2)
    assert (caps["gemini"].initial_delay, caps["gemini"].max_delay, caps["gemini"].max_retries) == (
        1.0,
        60.0,
        4,
    )


@pytest.mark.parametrize("name", provider_params())
def test_client_errors_not_retried_by_any_provider(name: str) -> None:
    clock = FakeClock()
    script = Script(clock, [httpx.Response(400, json={"error": {"message": "bad"}}), ok({})])
    provider = build(name, clock, script)
    with pytest.raises(APIStatusError) as info:
        provider.request("POST", "/probe", json={})
    assert getattr(info.value, "status", None) == 400 and len(script.seen) == 1
