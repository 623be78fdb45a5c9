"""What the kit knows about each provider: how to reach it, what to call, what must come back.

A :class:`Profile` is data: how to point the provider at its local fake server (or the real
service), one *request* operation (the call the fault matrix, retry, queue and secrets tests
repeat), a *connection* probe, the *stream* operation where the API streams, and the
API-specific operations. Each :class:`Op` has a sync and an async form and a ``check`` that is
exact against the fake (its content is deterministic: ``reply_text`` of the prompt, unit-norm
``embedding`` vectors...) and structural against a real service.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ipfs_accelerate.api.testing import count_tokens, embedding, reply_text

PROMPT = "Say hi"
Check = Callable[[Any, bool], None]  # (result, strict) -> None; strict = against the fake


def _noop(result: Any, strict: bool) -> None:
    return None


@dataclass(frozen=True)
class Op:
    """One operation: ``call(provider)`` / ``acall(provider)`` and how to check the result.

    ``path`` is the server path it hits (exact, a ``/``-ended prefix or a glob), used to inject
    faults into exactly this operation and to count its requests server-side. A streaming op's
    call consumes the stream and returns ``(chunks, stream)``.
    """

    name: str
    path: str
    call: Callable[[Any], Any]
    acall: Callable[[Any], Awaitable[Any]]
    check: Check = _noop
    stream: bool = False
    method: str = "POST"
    real: bool = True  # safe and meaningful against the real service


@dataclass(frozen=True)
class Profile:
    name: str
    fake: str  # fake-server family for ``start_server`` ("s3" = the kit's S3 proxy over moto)
    model: str | None
    request: Op
    connect: Op
    stream: Op | None = None
    specific: tuple[Op, ...] = ()
    #: how the provider's base URL is derived from the fake server
    base_url: Callable[[Any], str] = lambda srv: srv.url
    #: whether the fake enforces the kit's key (401 on a wrong one)
    auth_enforced: bool = True
    #: expected outcome per fault where it differs from the family default (see _matrix.py)
    fault_overrides: dict[str, str] = field(default_factory=dict)
    #: HTTP method a fault targets when it differs from the op's (e.g. body faults on a GET)
    fault_methods: dict[str, str] = field(default_factory=dict)
    #: the typed error and status a wrong key gets (Gemini answers 400 API_KEY_INVALID)
    auth_error: tuple[str, int] = ("AuthenticationError", 401)
    #: whether the key travels to the server (SigV4's secret never does: nothing can echo it)
    secret_travels: bool = True
    #: real-mode model (the fake accepts anything; a real service needs a real name)
    real_model: str | None = None
    #: extra constructor arguments in both modes
    extra: dict[str, Any] = field(default_factory=dict)
    #: whether ``request`` is one logical call; if not (s3_kit: put, get, delete), the deadline
    #: test bounds the failing call's own duration (``APITimeoutError.elapsed``), not the op's
    request_is_one_call: bool = True


# -- shared checks ----------------------------------------------------------------------------


def check_reply(result: Any, strict: bool, prompt: str = PROMPT) -> None:
    text = result.text
    assert isinstance(text, str)
    if strict:
        assert text == reply_text(prompt), (text, reply_text(prompt))
        assert result.usage is not None
        assert result.usage.output_tokens == len(reply_text(prompt).split())
    else:
        assert text.strip(), "empty reply"


def check_reply_no_usage(result: Any, strict: bool) -> None:
    assert isinstance(result.text, str)
    if strict:
        assert result.text == reply_text(PROMPT)
    else:
        assert result.text.strip()


def check_stream(result: Any, strict: bool, prompt: str = PROMPT, usage: bool = True) -> None:
    chunks, stream = result
    assert stream.done, "stream did not reach its terminal event"
    assert chunks, "no chunks"
    if strict:
        assert stream.text == reply_text(prompt), (stream.text, reply_text(prompt))
        if usage:
            assert stream.usage is not None
            assert stream.usage.output_tokens == len(reply_text(prompt).split())
    else:
        assert stream.text.strip()


def check_stream_no_usage(result: Any, strict: bool) -> None:
    check_stream(result, strict, usage=False)


def check_embeddings(result: Any, strict: bool, texts: Sequence[str] = ("alpha", "beta gamma")) -> None:
    vectors = result.embeddings if hasattr(result, "embeddings") else result
    assert len(vectors) == len(texts)
    assert all(math.isfinite(x) for v in vectors for x in v)
    dims = {len(v) for v in vectors}
    assert len(dims) == 1 and dims.pop() > 0
    if strict:
        for v, t in zip(vectors, texts, strict=True):
            assert np.allclose(v, embedding(t, len(v)), atol=1e-6)


def check_models(result: Any, strict: bool) -> None:
    assert isinstance(result, list) and result, "no models"
    assert all(isinstance(m.id, str) and m.id for m in result)


TOKENIZE_TEXT = "bravo, alpha zebra!"


def _tgi_tokenize_check(result: Any, strict: bool) -> None:
    """Token ids; the fake's are exact: one per word and punctuation mark, a known word's id is
    its index in WORDS + 10 and anything else is 3."""
    _assert(isinstance(result, list) and result and all(isinstance(t, int) for t in result))
    if strict:
        assert result == [11, 3, 10, 3, 3], result


def check_true(result: Any, strict: bool) -> None:
    assert result is True


# -- op builders for the OpenAI-shaped providers ------------------------------------------------


def _consume(stream: Any) -> tuple[list[Any], Any]:
    with stream:
        chunks = list(stream)
    return chunks, stream


async def _aconsume(stream: Any) -> tuple[list[Any], Any]:
    async with stream:
        chunks = [c async for c in stream]
    return chunks, stream


def chat_op(path: str, check: Check = check_reply, **params: Any) -> Op:
    return Op("chat", path, lambda p: p.chat(PROMPT, **params), lambda p: p.achat(PROMPT, **params), check)


def chat_stream_op(path: str, check: Check = check_stream, **params: Any) -> Op:
    async def acall(p: Any) -> Any:
        return await _aconsume(await p.achat_stream(PROMPT, **params))

    return Op("chat_stream", path, lambda p: _consume(p.chat_stream(PROMPT, **params)), acall, check,
              stream=True)


# A bound on every generation the kit asks a real server for (the fake's replies are 12 words,
# under it, so exact checks are unaffected); a local llama.cpp server would otherwise generate
# until its context is full.
MAX_TOKENS = 16


def models_op(path: str) -> Op:
    return Op("models", path, lambda p: p.models(), lambda p: p.amodels(), check_models, method="GET")


def embed_op(path: str, check: Check = check_embeddings, *, real: bool = False, **kw: Any) -> Op:
    """Embeddings; off in real mode by default (a real service serves a chat model under the
    profile's model name, and its embedding model has another name)."""
    texts = ["alpha", "beta gamma"]
    return Op("embed", path, lambda p: p.embed(texts, **kw), lambda p: p.aembed(texts, **kw), check,
              real=real)


def _openai_profile(name: str, prefix: str, model: str, *, base: Callable[[Any], str],
                    real_model: str | None = None, embed: bool = True) -> Profile:
    specific: list[Op] = [
        Op(
            "complete", f"{prefix}/completions",
            lambda p: p.complete(PROMPT, max_tokens=MAX_TOKENS),
            lambda p: p.acomplete(PROMPT, max_tokens=MAX_TOKENS), check_reply, real=False,
        ),
    ]
    if embed:
        specific.append(embed_op(f"{prefix}/embeddings"))
    return Profile(
        name=name, fake="openai", model=model,
        request=chat_op(f"{prefix}/chat/completions", max_tokens=MAX_TOKENS),
        connect=models_op(f"{prefix}/models"),
        stream=chat_stream_op(f"{prefix}/chat/completions", max_tokens=MAX_TOKENS),
        specific=tuple(specific), base_url=base, real_model=real_model,
    )


# -- per-provider ops ----------------------------------------------------------------------------


def _claude_count_check(result: Any, strict: bool) -> None:
    assert result.input_tokens > 0
    if strict:
        assert result.input_tokens == count_tokens(PROMPT)


def _tgi_generate_check(result: Any, strict: bool) -> None:
    assert isinstance(result.text, str)
    if strict:
        assert result.text == reply_text(PROMPT)
        assert result.usage is not None and result.usage.output_tokens == len(result.text.split())


def _tei_rerank_check(result: Any, strict: bool) -> None:
    assert sorted(r.index for r in result) == [0, 1, 2]
    scores = [r.score for r in result]
    assert scores == sorted(scores, reverse=True)
    if strict:
        assert result[0].index == 1  # the text equal to the query ranks first


def _tei_normalize_check(result: Any, strict: bool) -> None:
    for v in result.embeddings:
        assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-4


def _tei_batches_check(result: Any, strict: bool) -> None:
    assert len(result.embeddings) == 5 and result.raw["batches"] == 3
    check_embeddings(result, strict, texts=[f"t{i}" for i in range(5)])


def _ovms_infer(p: Any) -> Any:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    return p.infer({"INPUT0": x, "INPUT1": np.ones_like(x)}, model="add_sub")


async def _ovms_ainfer(p: Any) -> Any:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    return await p.ainfer({"INPUT0": x, "INPUT1": np.ones_like(x)}, model="add_sub")


def _ovms_check(result: Any, strict: bool) -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    assert result["OUTPUT0"].dtype == np.float32 and result["OUTPUT0"].shape == (2, 4)
    assert np.array_equal(result["OUTPUT0"], x + 1) and np.array_equal(result["OUTPUT1"], x - 1)


def _ovms_int64(p: Any) -> Any:
    return p.infer({"INPUT": np.array([1, -2, 2**40], dtype=np.int64)}, model="scale_int64")


async def _ovms_aint64(p: Any) -> Any:
    return await p.ainfer({"INPUT": np.array([1, -2, 2**40], dtype=np.int64)}, model="scale_int64")


def _ovms_int64_check(result: Any, strict: bool) -> None:
    out = result["OUTPUT"]
    assert out.dtype == np.int64 and out.tolist() == [2, -4, 2**41]


def _ovms_bytes(p: Any) -> Any:
    return p.infer({"INPUT": np.array([b"ipfs", "h\u00e9llo".encode()], dtype=object)}, model="echo_bytes")


async def _ovms_abytes(p: Any) -> Any:
    return await p.ainfer({"INPUT": np.array([b"ipfs", "h\u00e9llo".encode()], dtype=object)}, model="echo_bytes")


def _ovms_bytes_check(result: Any, strict: bool) -> None:
    assert result["OUTPUT"].tolist() == [b"ipfs", "h\u00e9llo".encode()]


def _ovms_meta_check(result: Any, strict: bool) -> None:
    assert result.name == "add_sub"
    assert [(s.name, s.datatype) for s in result.inputs] == [("INPUT0", "FP32"), ("INPUT1", "FP32")]


def _opea_retrieve_check(result: Any, strict: bool) -> None:
    assert 0 < len(result) <= 2 and all(d.text for d in result)
    if strict:
        assert "IPFS" in result[0].text


def _opea_rerank_check(result: Any, strict: bool) -> None:
    assert len(result) == 1 and result[0].text
    if strict:
        assert result[0].text.startswith("IPFS")


def _opea_chatqna_check(result: Any, strict: bool) -> None:
    check_reply_no_usage(result, strict)


# -- s3_kit ----------------------------------------------------------------------------------------

S3_BUCKET = "kit-bucket"


def _s3_key() -> str:
    return f"kit/{uuid.uuid4().hex}"


def _s3_put(p: Any) -> Any:
    key = _s3_key()
    p.put_object(key, b"payload-" + key.encode())
    data = p.get_object(key)
    p.delete_object(key)  # leave nothing behind in a real bucket
    return key, data


async def _s3_aput(p: Any) -> Any:
    key = _s3_key()
    await p.aput_object(key, b"payload-" + key.encode())
    data = await p.aget_object(key)
    await p.adelete_object(key)
    return key, data


def _s3_put_check(result: Any, strict: bool) -> None:
    key, data = result
    assert data == b"payload-" + key.encode()


def _s3_multipart(p: Any) -> Any:
    data = bytes(range(256)) * (5 * 4096 + 17)  # 5 MiB + 4352 bytes: two parts
    key = _s3_key()
    r = p.upload_multipart(key, data, part_size=5 * 1024 * 1024)
    back = p.get_object(key)
    p.delete_object(key)
    return r, data, back


async def _s3_amultipart(p: Any) -> Any:
    data = bytes(range(256)) * (5 * 4096 + 17)
    key = _s3_key()
    r = await p.aupload_multipart(key, data, part_size=5 * 1024 * 1024)
    back = await p.aget_object(key)
    await p.adelete_object(key)
    return r, data, back


def _s3_multipart_check(result: Any, strict: bool) -> None:
    r, data, back = result
    assert r.parts == 2 and r.etag and r.etag.strip('"').endswith("-2")
    assert back == data


def _s3_presign(p: Any) -> Any:
    import httpx

    key = _s3_key()
    put = p.presigned_url(key, method="put", expires_in=60)
    status = httpx.put(put, content=b"via-presigned", trust_env=False, timeout=10).status_code
    get = p.presigned_url(key, expires_in=60)
    body = httpx.get(get, trust_env=False, timeout=10).content
    p.delete_object(key)
    return status, body, get


async def _s3_apresign(p: Any) -> Any:
    import httpx

    key = _s3_key()
    put = await p.apresigned_url(key, method="put", expires_in=60)
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        status = (await http.put(put, content=b"via-presigned")).status_code
        get = await p.apresigned_url(key, expires_in=60)
        body = (await http.get(get)).content
    await p.adelete_object(key)
    return status, body, get


def _s3_presign_check(result: Any, strict: bool) -> None:
    status, body, url = result
    assert status == 200 and body == b"via-presigned"
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url


def _s3_list(p: Any) -> Any:
    prefix = f"list-{uuid.uuid4().hex}/"
    for i in range(5):
        p.put_object(f"{prefix}{i}", str(i))
    found = p.list_objects(prefix, page_size=2)  # three pages
    deleted = p.delete_objects([o.key for o in found])
    return prefix, found, deleted, p.list_objects(prefix)


async def _s3_alist(p: Any) -> Any:
    prefix = f"list-{uuid.uuid4().hex}/"
    for i in range(5):
        await p.aput_object(f"{prefix}{i}", str(i))
    found = await p.alist_objects(prefix, page_size=2)
    deleted = await p.adelete_objects([o.key for o in found])
    return prefix, found, deleted, await p.alist_objects(prefix)


def _s3_list_check(result: Any, strict: bool) -> None:
    prefix, found, deleted, after = result
    assert [o.key for o in found] == [f"{prefix}{i}" for i in range(5)]
    assert [o.size for o in found] == [1] * 5
    assert sorted(deleted) == [o.key for o in found] and after == []


def _s3_connect(p: Any) -> Any:
    return p.bucket in p.list_buckets()


async def _s3_aconnect(p: Any) -> Any:
    return p.bucket in await p.alist_buckets()


# -- the table ---------------------------------------------------------------------------------------


def _build() -> dict[str, Profile]:
    v1 = lambda srv: srv.url + "/v1"  # noqa: E731
    root = lambda srv: srv.url  # noqa: E731
    profiles = [
        _openai_profile("openai_api", "/v1", "fake-model", base=v1, real_model="gpt-4o-mini"),
        _openai_profile("groq", "/openai/v1", "fake-model", base=root, real_model="llama-3.1-8b-instant", embed=False),
        _openai_profile("vllm", "/v1", "fake-model", base=v1),
        _openai_profile("llvm", "/v1", "fake-model", base=v1),
        Profile(
            name="claude", fake="anthropic", model="claude-fake-1", real_model="claude-3-5-haiku-latest",
            request=chat_op("/v1/messages"), connect=models_op("/v1/models"),
            stream=chat_stream_op("/v1/messages"),
            specific=(
                Op("count_tokens", "/v1/messages/count_tokens", lambda p: p.count_tokens(PROMPT),
                   lambda p: p.acount_tokens(PROMPT), _claude_count_check),
            ),
        ),
        Profile(
            name="gemini", fake="gemini", model="gemini-2.0-flash", real_model="gemini-2.0-flash",
            # Google answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID: the
            # provider types it as an authentication failure (status stays 400)
            auth_error=("AuthenticationError", 400),
            request=chat_op("*:generateContent"), connect=models_op("/v1beta/models"),
            stream=chat_stream_op("*:streamGenerateContent"),
            specific=(
                embed_op("*Content*", model="gemini-fake-embedding"),
                Op("count_tokens", "*:countTokens", lambda p: p.count_tokens(PROMPT),
                   lambda p: p.acount_tokens(PROMPT), _claude_count_check),
            ),
        ),
        Profile(
            name="ollama", fake="ollama", model="llama3.2", real_model="llama3.2",
            request=chat_op("/api/chat", max_tokens=MAX_TOKENS),
            connect=Op("tags", "/api/tags", lambda p: p.tags(), lambda p: p.atags(), check_models, method="GET"),
            stream=chat_stream_op("/api/chat", max_tokens=MAX_TOKENS),
            specific=(
                Op("generate", "/api/generate", lambda p: p.generate(PROMPT), lambda p: p.agenerate(PROMPT),
                   check_reply),
                Op("generate_stream", "/api/generate",
                   lambda p: _consume(p.generate_stream(PROMPT)),
                   lambda p: _aconsume_after(p.agenerate_stream(PROMPT)), check_stream, stream=True),
                embed_op("/api/embed"),
                Op("version", "/api/version", lambda p: p.version(), lambda p: p.aversion(),
                   lambda r, s: _assert(isinstance(r, str) and r), method="GET"),
            ),
        ),
        Profile(
            name="hf_tgi", fake="hf_tgi", model=None,
            request=Op("generate", "/generate", lambda p: p.generate(PROMPT, max_tokens=MAX_TOKENS),
                       lambda p: p.agenerate(PROMPT, max_tokens=MAX_TOKENS), _tgi_generate_check),
            connect=Op("health", "/health", lambda p: p.health(), lambda p: p.ahealth(), check_true, method="GET"),
            stream=Op("generate_stream", "/generate_stream",
                      lambda p: _consume(p.generate_stream(PROMPT, max_tokens=MAX_TOKENS)),
                      lambda p: _aconsume_after(p.agenerate_stream(PROMPT, max_tokens=MAX_TOKENS)),
                      check_stream, stream=True),
            specific=(
                chat_op("/v1/chat/completions", max_tokens=MAX_TOKENS),
                chat_stream_op("/v1/chat/completions", max_tokens=MAX_TOKENS),
                Op("server_info", "/info", lambda p: p.server_info(), lambda p: p.aserver_info(),
                   lambda r, s: _assert(isinstance(r, dict) and "model_id" in r), method="GET"),
                Op("tokenize", "/tokenize", lambda p: p.tokenize(TOKENIZE_TEXT),
                   lambda p: p.atokenize(TOKENIZE_TEXT), _tgi_tokenize_check),
            ),
        ),
        Profile(
            name="hf_tei", fake="hf_tei", model=None,
            request=embed_op("/embed", real=True),
            connect=Op("health", "/health", lambda p: p.health(), lambda p: p.ahealth(), check_true, method="GET"),
            specific=(
                Op("rerank", "/rerank", lambda p: p.rerank("beta", ["alpha", "beta", "gamma delta"]),
                   lambda p: p.arerank("beta", ["alpha", "beta", "gamma delta"]), _tei_rerank_check,
                   real=False),  # a TEI server serves an embedding model or a reranker, not both
                Op("normalize", "/embed", lambda p: p.embed(["x y", "z"], normalize=True),
                   lambda p: p.aembed(["x y", "z"], normalize=True), _tei_normalize_check),
                Op("batching", "/embed",
                   lambda p: p.with_batch_size(2).embed([f"t{i}" for i in range(5)]),
                   lambda p: p.with_batch_size(2).aembed([f"t{i}" for i in range(5)]), _tei_batches_check),
            ),
        ),
        Profile(
            name="ovms", fake="kserve", model="add_sub",
            request=Op("infer", "/v2/models/add_sub/infer", _ovms_infer, _ovms_ainfer, _ovms_check, real=False),
            connect=Op("server_ready", "/v2/health/ready", lambda p: p.server_ready(),
                       lambda p: p.aserver_ready(), check_true, method="GET"),
            specific=(
                Op("model_ready", "/v2/models/add_sub/ready", lambda p: p.model_ready("add_sub"),
                   lambda p: p.amodel_ready("add_sub"), check_true, method="GET", real=False),
                Op("model_metadata", "/v2/models/add_sub", lambda p: p.model_metadata("add_sub"),
                   lambda p: p.amodel_metadata("add_sub"), _ovms_meta_check, method="GET", real=False),
                Op("infer_int64", "/v2/models/scale_int64/infer", _ovms_int64, _ovms_aint64, _ovms_int64_check,
                   real=False),
                Op("infer_bytes", "/v2/models/echo_bytes/infer", _ovms_bytes, _ovms_abytes, _ovms_bytes_check,
                   real=False),
            ),
            auth_enforced=False,
        ),
        Profile(
            name="opea", fake="opea", model=None,
            request=Op("chatqna", "/v1/chatqna", lambda p: p.chatqna(PROMPT), lambda p: p.achatqna(PROMPT),
                       _opea_chatqna_check),
            connect=Op("health", "/v1/health_check", lambda p: p.health(), lambda p: p.ahealth(), check_true,
                       method="GET"),
            stream=Op("chatqna_stream", "/v1/chatqna", lambda p: _consume(p.chatqna_stream(PROMPT)),
                      lambda p: _aconsume_after(p.achatqna_stream(PROMPT)), check_stream_no_usage, stream=True),
            specific=(
                embed_op("/v1/embeddings"),
                Op("retrieve", "/v1/retrieval", lambda p: p.retrieve("What is IPFS?", k=2),
                   lambda p: p.aretrieve("What is IPFS?", k=2), _opea_retrieve_check, real=False),
                Op("rerank", "/v1/reranking",
                   lambda p: p.rerank("IPFS", ["OpenVINO is a toolkit", "IPFS is a network"], top_n=1),
                   lambda p: p.arerank("IPFS", ["OpenVINO is a toolkit", "IPFS is a network"], top_n=1),
                   _opea_rerank_check, real=False),
                Op("chat", "/v1/chat/completions", lambda p: p.chat(PROMPT), lambda p: p.achat(PROMPT),
                   check_reply, real=False),
            ),
        ),
        Profile(
            name="s3_kit", fake="s3", model=None,
            request=Op("put_get", f"/{S3_BUCKET}/", _s3_put, _s3_aput, _s3_put_check, method="PUT"),
            connect=Op("list_buckets", "/", _s3_connect, _s3_aconnect, check_true, method="GET"),
            specific=(
                Op("multipart", f"/{S3_BUCKET}/", _s3_multipart, _s3_amultipart, _s3_multipart_check),
                Op("presigned", f"/{S3_BUCKET}/", _s3_presign, _s3_apresign, _s3_presign_check),
                Op("list_delete", f"/{S3_BUCKET}", _s3_list, _s3_alist, _s3_list_check, method="GET"),
            ),
            auth_enforced=False,
            secret_travels=False,
            # A PUT's response body is empty: body faults are aimed at the GET that reads it back.
            fault_methods={"truncated-body": "GET", "malformed-json": "GET"},
            # A corrupted object body fails its ETag (MD5) check and is fetched again.
            fault_overrides={"malformed-json": "ok:2"},
            request_is_one_call=False,
        ),
    ]
    return {p.name: p for p in profiles}


async def _aconsume_after(awaitable: Awaitable[Any]) -> tuple[list[Any], Any]:
    return await _aconsume(await awaitable)


def _assert(condition: Any) -> None:
    assert condition


PROFILES: dict[str, Profile] = _build()
