"""API keys never appear in logs, exception text, reprs, stats or reports.

A recognisable key is configured, every failure path is driven (the server even echoes the key
back in its error bodies), and every log record, exception string/repr/traceback, pickled error,
stats dump and repr is grepped for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import traceback
from typing import Any

import httpx
import pytest

from ipfs_accelerate.api.core import (
    APIError,
    FakeClock,
    KeyPool,
    Redactor,
    RequestOptions,
    Secret,
    redact_headers,
    redact_url,
)

from ._providers import build, provider_params
from .conftest import LEAKY_KEY, Script

SECOND_KEY = "sk-LEAK-CANARY-second-55aa"


def test_secret_masks_everywhere() -> None:
    s = Secret(LEAKY_KEY)
    for text in (repr(s), str(s), f"{s}", f"{s!r}", "%s" % s, repr([s]), repr({"k": s})):  # noqa: UP031
        assert LEAKY_KEY not in text
    assert s.reveal() == LEAKY_KEY and Secret(s) == s and bool(s)
    with pytest.raises(TypeError):
        pickle.dumps(s)
    pool = KeyPool([LEAKY_KEY, SECOND_KEY])
    assert LEAKY_KEY not in repr(pool) and len(pool) == 2


def test_redaction_helpers() -> None:
    h = redact_headers(
        {
            "Authorization": f"Bearer {LEAKY_KEY}",
            "x-api-key": LEAKY_KEY,
            "x-goog-api-key": LEAKY_KEY,
            "accept": "a",
        }
    )
    assert LEAKY_KEY not in repr(h) and h["accept"] == "a"
    u = redact_url(f"https://user:{LEAKY_KEY}@h.test/v1/m:gen?alt=sse&key={LEAKY_KEY}")
    assert LEAKY_KEY not in u and "alt=sse" in u
    r = Redactor([Secret(LEAKY_KEY)])
    assert r(f"Incorrect API key provided: {LEAKY_KEY}.") == "Incorrect API key provided: ***."


def _echoing_failures(request: httpx.Request) -> list[Any]:
    echo = {"error": {"message": f"Incorrect API key provided: {LEAKY_KEY}", "key": LEAKY_KEY}}
    return [
        httpx.Response(429, json=echo, headers={"retry-after": "1", "x-request-id": "r1"}),
        httpx.Response(500, json=echo),
        httpx.Response(401, json=echo),
    ]


def _grep_all(texts: list[str]) -> list[str]:
    return [t for t in texts if LEAKY_KEY in t or SECOND_KEY in t]


def _exception_texts(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts.append(repr(vars(exc)) if hasattr(exc, "__dict__") else "")
    if isinstance(exc, APIError):
        texts.append(repr(pickle.loads(pickle.dumps(exc)).__dict__))
        texts.append(json.dumps({k: v for k, v in vars(exc).items()}, default=str))
    return texts


@pytest.mark.parametrize("name", provider_params())
def test_no_key_in_logs_errors_stats_or_reprs(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx's included
    clock = FakeClock()
    echo = {"error": {"message": f"Incorrect API key provided: {LEAKY_KEY}", "detail": LEAKY_KEY}}
    steps: list[Any] = [
        httpx.Response(429, json=echo, headers={"retry-after": "1"}),
        httpx.Response(500, json=echo),
        httpx.Response(401, json=echo),  # key 1 set aside; retried with key 2
        httpx.Response(403, json=echo),
        httpx.ConnectError(f"could not connect using {LEAKY_KEY}"),
        httpx.ReadTimeout(f"timed out {LEAKY_KEY}"),
        httpx.ConnectError("refused"),
        httpx.Response(
            200, content=f"<html>{LEAKY_KEY}</html>".encode(), headers={"content-type": "text/html"}
        ),
        httpx.Response(503, text=f"upstream said {LEAKY_KEY}"),
        httpx.Response(503, text=f"upstream said {LEAKY_KEY}"),
        httpx.Response(503, text=f"upstream said {LEAKY_KEY}"),
    ]
    script = Script(clock, steps)
    provider = build(name, clock, script, api_key=[LEAKY_KEY, SECOND_KEY], max_retries=2)
    texts: list[str] = [repr(provider), repr(provider.client), str(provider.__dict__)]
    errors: list[BaseException] = []
    for _ in range(5):
        try:  # the client's default JSON parse, so the HTML 200 becomes ResponseDecodeError
            provider.client.request(RequestOptions("POST", "/probe", json={"q": 1}))
        except Exception as exc:  # noqa: BLE001 — every error is grepped below
            errors.append(exc)

    async def async_round() -> None:
        script.steps = [httpx.Response(401, json=echo)]
        try:
            await provider.arequest("POST", "/probe", json={})
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        await provider.aclose()

    asyncio.run(async_round())
    assert [type(e).__name__ for e in errors] == [
        "AuthenticationError",
        "PermissionDeniedError",
        "APIConnectionError",
        "ResponseDecodeError",
        "ServerError",
        "AuthenticationError",
    ]
    # the keys really were in play: the server received them
    sent = {
        s.headers.get("authorization", "")
        + s.headers.get("x-api-key", "")
        + s.headers.get("x-goog-api-key", "")
        for s in script.seen
    }
    assert any(LEAKY_KEY in v for v in sent) and any(SECOND_KEY in v for v in sent)
    for exc in errors:
        texts.extend(_exception_texts(exc))
    texts.extend(caplog.messages)
    texts.extend(
        r.getMessage()
        + repr(r.args)
        + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in caplog.records
    )
    stats = provider.stats()
    texts.append(repr(stats))
    texts.append(json.dumps({k: v.to_dict() for k, v in stats.items()}))
    assert any("retry" in m for m in caplog.messages)  # logging did happen
    assert _grep_all(texts) == []
