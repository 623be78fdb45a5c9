"""The official openai and groq SDKs judge the OpenAI-compatible fake (also vLLM/llama.cpp/OPEA's).

If the SDK cannot parse a response, the server is wrong. The retry tests count attempts
server-side and measure the SDK's waits from the server's own timestamps.
"""

from __future__ import annotations

import asyncio

import pytest

from ipfs_accelerate.api.testing import (
    FakeOpenAIServer,
    Fault,
    count_tokens,
    embedding,
    messages_text,
    reply_text,
)

from .conftest import FAKE_KEY, LazySDK, sdk_http

openai = LazySDK("openai")
groq = LazySDK("groq")

pytestmark = pytest.mark.timeout(30)
MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is IPFS?"}]
PROMPT = messages_text(MSGS)
CHAT = "/v1/chat/completions"


def _client(srv: FakeOpenAIServer, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=srv.base_url, api_key=FAKE_KEY, http_client=sdk_http(openai), **kw
    )  # type: ignore[arg-type]


def test_models_list_and_retrieve(openai_server: FakeOpenAIServer) -> None:
    c = _client(openai_server)
    assert [m.id for m in c.models.list()] == ["fake-model", "fake-embed"]
    assert c.models.retrieve("fake-model").owned_by == "ipfs-accelerate"
    with pytest.raises(openai.NotFoundError) as exc:
        c.models.retrieve("nope")
    assert exc.value.code == "model_not_found"
    assert exc.value.request_id and exc.value.request_id.startswith("req_")


def test_chat_completion(openai_server: FakeOpenAIServer) -> None:
    r = _client(openai_server).chat.completions.create(model="fake-model", messages=MSGS)  # type: ignore[arg-type]
    assert r.object == "chat.completion" and r.model == "fake-model"
    assert r.choices[0].message.content == reply_text(PROMPT)
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (count_tokens(PROMPT), 12)
    rec = openai_server.requests[-1]
    assert rec.auth == f"Bearer {FAKE_KEY}" and rec.headers["x-stainless-retry-count"] == "0"


def test_chat_max_tokens_n_and_json_mode(openai_server: FakeOpenAIServer) -> None:
    c = _client(openai_server)
    r = c.chat.completions.create(model="fake-model", messages=MSGS, max_tokens=3, n=2)  # type: ignore[arg-type]
    assert [ch.finish_reason for ch in r.choices] == ["length", "length"]
    assert r.choices[0].message.content == reply_text(PROMPT, 3)
    assert r.choices[1].message.content == reply_text(PROMPT + "#1", 3)
    assert r.usage is not None and r.usage.completion_tokens == 6
    j = c.chat.completions.create(
        model="fake-model", messages=MSGS, response_format={"type": "json_object"}
    )  # type: ignore[arg-type]
    import json

    assert json.loads(j.choices[0].message.content or "") == {"reply": reply_text(PROMPT)}


def test_chat_tool_call(openai_server: FakeOpenAIServer) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    r = _client(openai_server).chat.completions.create(
        model="fake-model",
        messages=MSGS,  # type: ignore[arg-type]
        tools=tools,  # type: ignore[arg-type]
        tool_choice="required",
    )
    call = r.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "lookup"  # type: ignore[union-attr]


def test_chat_stream_with_usage(openai_server: FakeOpenAIServer) -> None:
    stream = _client(openai_server).chat.completions.create(
        model="fake-model",
        messages=MSGS,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text == reply_text(PROMPT) and finish == "stop"
    assert usage is not None and usage.total_tokens == count_tokens(PROMPT) + 12


def test_stream_options_without_stream_is_rejected(openai_server: FakeOpenAIServer) -> None:
    with pytest.raises(openai.BadRequestError, match="stream_options"):
        _client(openai_server).chat.completions.create(
            model="fake-model",
            messages=MSGS,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
        )
    assert len(openai_server.requests) == 1  # 400 is never retried


def test_chat_stream_helper_accumulates(openai_server: FakeOpenAIServer) -> None:
    with _client(openai_server).chat.completions.stream(model="fake-model", messages=MSGS) as s:  # type: ignore[arg-type]
        final = s.get_final_completion()
    assert final.choices[0].message.content == reply_text(PROMPT)


def test_legacy_completions_sync_and_stream(openai_server: FakeOpenAIServer) -> None:
    c = _client(openai_server)
    r = c.completions.create(model="fake-model", prompt=["one", "two"], max_tokens=5)
    assert [ch.text for ch in r.choices] == [reply_text("one", 5), reply_text("two", 5)]
    assert r.usage is not None and r.usage.prompt_tokens == 2 and r.usage.completion_tokens == 10
    text = "".join(
        ch.choices[0].text
        for ch in c.completions.create(model="fake-model", prompt="one", stream=True)
    )
    assert text == reply_text("one")


def test_embeddings_float_and_base64(openai_server: FakeOpenAIServer) -> None:
    c = _client(openai_server)
    r = c.embeddings.create(
        model="fake-embed", input=["alpha beta", "gamma"], encoding_format="float"
    )
    assert [d.embedding for d in r.data] == [embedding("alpha beta"), embedding("gamma")]
    assert r.usage.prompt_tokens == 3
    b = c.embeddings.create(
        model="fake-embed", input="alpha beta", dimensions=32
    )  # SDK asks for base64
    assert b.data[0].embedding == embedding("alpha beta", 32)
    assert openai_server.requests[-1].json()["encoding_format"] == "base64"


def test_async_client_chat_and_stream(openai_server: FakeOpenAIServer) -> None:
    async def go() -> tuple[str, str]:
        async with openai.AsyncOpenAI(
            base_url=openai_server.base_url,
            api_key=FAKE_KEY,
            http_client=sdk_http(openai, asynchronous=True),
        ) as c:
            r = await c.chat.completions.create(model="fake-model", messages=MSGS)  # type: ignore[arg-type]
            stream = await c.chat.completions.create(model="fake-model", messages=MSGS, stream=True)  # type: ignore[arg-type]
            text = "".join([ch.choices[0].delta.content or "" async for ch in stream])
            return r.choices[0].message.content or "", text

    a, b = asyncio.run(go())
    assert a == b == reply_text(PROMPT)


def test_groq_sdk_uses_openai_prefix(openai_server: FakeOpenAIServer) -> None:
    c = groq.Groq(base_url=openai_server.url, api_key=FAKE_KEY, http_client=sdk_http(groq))
    r = c.chat.completions.create(model="llama-3.1-8b-instant", messages=MSGS)  # type: ignore[arg-type]
    assert r.choices[0].message.content == reply_text(PROMPT)
    text = "".join(
        ch.choices[0].delta.content or ""
        for ch in c.chat.completions.create(model="m", messages=MSGS, stream=True)
    )  # type: ignore[arg-type]
    assert text == reply_text(PROMPT)
    assert {r.path for r in openai_server.requests} == {"/openai/v1/chat/completions"}
    e = c.embeddings.create(model="e", input="x")
    assert e.data[0].embedding == embedding("x")


def test_groq_sdk_reads_error_body(openai_server: FakeOpenAIServer) -> None:
    openai_server.inject(Fault.http(400, message="bad model"))
    with pytest.raises(groq.BadRequestError, match="bad model"):
        groq.Groq(
            base_url=openai_server.url, api_key=FAKE_KEY, http_client=sdk_http(groq)
        ).chat.completions.create(model="m", messages=MSGS)  # type: ignore[arg-type]


# -- the SDK's own retry logic against our faults -----------------------------------------------
def _gaps(srv: FakeOpenAIServer) -> list[float]:
    starts = [r.started for r in srv.requests]
    return [b - a for a, b in zip(starts, starts[1:], strict=False)]


@pytest.mark.parametrize(
    ("fault", "min_gap"),
    [
        (Fault.rate_limit(retry_after="0.1"), 0.09),  # float seconds honoured
        (
            Fault.rate_limit(retry_after="9", retry_after_ms="100"),
            0.09,
        ),  # retry-after-ms wins over retry-after
        (Fault.http(503, retry_after_ms="10"), 0.0),
        (Fault.http(529, retry_after_ms="10"), 0.0),
        (Fault.http(408, retry_after_ms="10"), 0.0),
        (Fault.http(409, retry_after_ms="10"), 0.0),
        (Fault.http(400, should_retry=True, retry_after_ms="10"), 0.0),  # x-should-retry wins
    ],
)
def test_sdk_retries_then_succeeds(
    openai_server: FakeOpenAIServer, fault: Fault, min_gap: float
) -> None:
    openai_server.inject(fault, times=2)
    r = _client(openai_server, max_retries=2).chat.completions.create(
        model="fake-model", messages=MSGS
    )  # type: ignore[arg-type]
    assert r.choices[0].message.content == reply_text(PROMPT)
    reqs = openai_server.requests
    assert [q.status for q in reqs] == [fault.status, fault.status, 200]
    assert [q.headers["x-stainless-retry-count"] for q in reqs] == ["0", "1", "2"]
    assert all(min_gap <= g < 2 for g in _gaps(openai_server))


@pytest.mark.parametrize(
    "fault",
    [
        Fault.http(503, should_retry=False),  # server says don't
        Fault.rate_limit(retry_after="121"),  # above the SDK's 120 s cap: gives up at once
        Fault.http(400),
        Fault.http(401),
        Fault.http(403),
        Fault.http(404),
    ],
)
def test_sdk_does_not_retry(openai_server: FakeOpenAIServer, fault: Fault) -> None:
    openai_server.inject(fault, times=3)
    with pytest.raises(openai.APIStatusError) as exc:
        _client(openai_server, max_retries=2).chat.completions.create(
            model="fake-model", messages=MSGS
        )  # type: ignore[arg-type]
    assert exc.value.status_code == fault.status
    assert len(openai_server.requests) == 1
    assert FAKE_KEY not in str(exc.value)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.http(429), "RateLimitError"),
        (Fault.http(500), "InternalServerError"),
        (Fault.http(529), "InternalServerError"),
        (Fault.html(502), "InternalServerError"),
    ],
)
def test_sdk_exhausts_retries_with_typed_error(
    openai_server: FakeOpenAIServer, fault: Fault, error: str
) -> None:
    openai_server.inject(
        fault.with_(retry_after_ms="5") if fault.kind == "status" else fault, times=None
    )
    with pytest.raises(getattr(openai, error)):
        _client(openai_server, max_retries=1).chat.completions.create(
            model="fake-model", messages=MSGS
        )  # type: ignore[arg-type]
    assert len(openai_server.requests) == 2


@pytest.mark.parametrize("fault", [Fault.reset(), Fault.truncate()])  # SDK backs off 0.5 s each
def test_sdk_retries_connection_failures(openai_server: FakeOpenAIServer, fault: Fault) -> None:
    openai_server.inject(fault)
    r = _client(openai_server, max_retries=1).chat.completions.create(
        model="fake-model", messages=MSGS
    )  # type: ignore[arg-type]
    assert r.choices[0].message.content == reply_text(PROMPT)
    assert [q.delivered for q in openai_server.requests] == [False, True]


def test_sdk_read_timeout_on_hang_then_retry(openai_server: FakeOpenAIServer) -> None:
    openai_server.inject(Fault.hang(25))
    # 2 s, not 0.3: the retry's normal answer must come within it on a loaded machine as well
    r = _client(openai_server, max_retries=1, timeout=2.0).chat.completions.create(
        model="fake-model", messages=MSGS
    )  # type: ignore[arg-type]
    assert r.choices[0].message.content == reply_text(PROMPT)
    openai_server.inject(Fault.slow_first_byte(5))
    with pytest.raises(openai.APITimeoutError):
        _client(openai_server, max_retries=0, timeout=0.2).chat.completions.create(
            model="fake-model", messages=MSGS
        )  # type: ignore[arg-type]


def test_sdk_malformed_json_body(openai_server: FakeOpenAIServer) -> None:
    openai_server.inject(Fault.malformed_json())
    with pytest.raises(ValueError):  # the SDK surfaces the json.JSONDecodeError itself
        _client(openai_server, max_retries=0).chat.completions.create(
            model="fake-model", messages=MSGS
        )  # type: ignore[arg-type]


def test_sdk_stream_faults(openai_server: FakeOpenAIServer) -> None:
    c = _client(openai_server, max_retries=0)

    def consume() -> str:
        s = c.chat.completions.create(model="fake-model", messages=MSGS, stream=True)  # type: ignore[arg-type]
        return "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)

    openai_server.inject(Fault.cut(after=4))
    with pytest.raises(openai.APIConnectionError):
        consume()
    openai_server.inject(
        Fault.truncate(after=4)
    )  # clean end without [DONE]: the SDK does not notice
    assert reply_text(PROMPT).startswith(consume())
    openai_server.inject(Fault.malformed_sse(after=2))
    with pytest.raises(ValueError):
        consume()
    openai_server.inject(Fault.stream_error(500, after=2, message="boom"))
    with pytest.raises(openai.APIError, match="boom"):
        consume()
    assert consume() == reply_text(PROMPT)
