"""OPEA (Open Platform for Enterprise AI) ChatQnA-style microservices.

Shapes follow GenAIComps ``comps/cores/proto/api_protocol.py`` and the ChatQnA gateway:

* ``chatqna`` / ``chatqna_stream`` → the megaservice's ``POST /v1/chatqna``. Its ``stream``
  defaults to **true** upstream, so the non-streaming call sends ``"stream": false``. The stream is
  SSE whose data lines are the Python ``repr`` of each UTF-8 chunk (``data: b' Hello'``), ended
  by ``data: [DONE]``; newer LLM microservices send OpenAI chunk JSON instead — both are read,
  bytes are decoded incrementally (a character may straddle chunks), ``data: [ERROR]`` raises.
  The gateway reports zero usage, so none is invented.
* ``chat`` / ``chat_stream`` → the LLM microservice's OpenAI-compatible ``/v1/chat/completions``.
* ``embed`` → the embedding microservice's ``/v1/embeddings`` (OpenAI-shaped).
* ``retrieve`` → ``/v1/retrieval`` (``RetrievalRequest``: ``input``, ``k``, ``search_type``,
  optional ``embedding``) → ``retrieved_docs``.
* ``rerank`` → ``/v1/reranking`` (``RerankingRequest``: ``input``, ``retrieved_docs``, ``top_n``).
* ``health`` → ``GET /v1/health_check``.

In a real deployment each microservice has its own port: pass ``service_urls={"embed":
"http://host:6000", "retrieve": ..., "rerank": ..., "chat": ...}`` (keys are method names); the
rest go to ``base_url`` (the gateway, ``OPEA_BASE_URL``, default port 8888). Errors are FastAPI's
``{"detail": ...}``. No key by default; ``OPEA_API_KEY`` is sent as Bearer when set.
"""

from __future__ import annotations

import ast
import codecs
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ipfs_accelerate.api import core
from ipfs_accelerate.api.providers import PROVIDERS

from .openai_api import (
    Messages,
    OpenAIChunkDecoder,
    normalize_messages,
    parse_chat_completion,
    parse_embeddings,
)

__all__ = ["OPEAChunkDecoder", "OPEAProvider", "RankedDoc", "RetrievedDoc"]


@dataclass(frozen=True, slots=True)
class RetrievedDoc:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RankedDoc:
    text: str
    score: float


def _detail(body: Any) -> str | None:
    if isinstance(body, dict) and "detail" in body:
        d = body["detail"]
        if isinstance(d, list):  # FastAPI validation errors
            return "; ".join(
                f"{'.'.join(str(x) for x in e.get('loc', []))}: {e.get('msg')}" if isinstance(e, dict) else str(e)
                for e in d
            )
        return str(d)
    return None


class OPEAChunkDecoder(core.ChunkDecoder[core.ChatChunk]):
    """``data: b'...'`` (bytes repr), ``data: '...'`` or OpenAI chunk JSON; ``[DONE]`` ends."""

    framing = "sse"

    def __init__(self) -> None:
        super().__init__()
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._openai = OpenAIChunkDecoder()

    def decode(self, item: core.ServerSentEvent) -> Iterable[core.ChatChunk]:
        data = item.data.strip()
        if not data:
            return []
        if data == "[DONE]":
            tail = self._utf8.decode(b"", final=True)
            self.done = True
            return [core.ChatChunk(delta=tail)] if tail else []
        if self.done:
            if data.startswith("[") and data.endswith("]"):
                return []  # e.g. "[METADATA DONE]" after [DONE]
            raise core.StreamError("event after [DONE]")
        if data == "[ERROR]":
            raise core.StreamError("server sent [ERROR] mid-stream")
        if data.startswith("{"):
            chunks = list(self._openai.decode(item))
            self.usage = self._openai.usage
            return chunks
        if data[:2] in ("b'", 'b"'):
            raw = ast.literal_eval(data)
            if not isinstance(raw, bytes):
                raise core.StreamError(f"not a bytes literal: {data[:80]!r}")
            text = self._utf8.decode(raw)
        elif data[:1] in ("'", '"'):
            text = str(ast.literal_eval(data))
        else:
            text = item.data  # plain text chunk
        return [core.ChatChunk(delta=text, raw={"data": item.data})] if text else []


class OPEAProvider(core.ChatVerbs, core.EmbedVerbs, core.Provider):
    """OPEA microservices; see the module docstring."""

    name = "opea"
    info = PROVIDERS["opea"]
    default_model = "Intel/neural-chat-7b-v3-3"
    #: the embedding microservice's model (ChatQnA's default TEI model)
    embed_model = "BAAI/bge-base-en-v1.5"

    def __init__(self, *, service_urls: Mapping[str, str] | None = None,
                 embed_model: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if embed_model:
            self.embed_model = embed_model
        self.service_urls = {k: v.rstrip("/") for k, v in (service_urls or {}).items()}

    def error_message(self, body: Any) -> str | None:
        return _detail(body) or super().error_message(body)

    def _url(self, service: str, path: str) -> str:
        base = self.service_urls.get(service)
        return f"{base}{path}" if base else path

    def _opts(self, service: str, path: str, **kw: Any):
        return self._options("POST", self._url(service, path), endpoint=path, **kw)

    # -- ChatQnA megaservice ---------------------------------------------------------------------

    def _chatqna(self, messages: str | Messages, params: dict[str, Any], stream: bool):
        msgs: Any = messages if isinstance(messages, str) else normalize_messages(messages)
        body = {"messages": msgs, "stream": stream, **params}
        if stream:
            return core.StreamCall(
                self._opts("chatqna", "/v1/chatqna", json=body, headers={"Accept": "text/event-stream"}),
                OPEAChunkDecoder,
            )
        return core.Call(self._opts("chatqna", "/v1/chatqna", json=body),
                    parse=lambda r: parse_chat_completion(r.json()), usage=lambda c: c.usage)

    def chatqna(self, messages: str | Messages, **params: Any) -> core.ChatCompletion:
        """POST /v1/chatqna with ``stream: false`` (retrieval + rerank + LLM in the megaservice)."""
        return self._call(self._chatqna(messages, params, False))

    async def achatqna(self, messages: str | Messages, **params: Any) -> core.ChatCompletion:
        return await self._acall(self._chatqna(messages, params, False))

    def chatqna_stream(self, messages: str | Messages, **params: Any) -> core.Stream[core.ChatChunk]:
        return self._stream(self._chatqna(messages, params, True))

    async def achatqna_stream(self, messages: str | Messages, **params: Any) -> core.AsyncStream[core.ChatChunk]:
        return await self._astream(self._chatqna(messages, params, True))

    # -- LLM microservice (OpenAI-compatible) -------------------------------------------------------

    def _chat(self, messages: Messages, model: str | None, params: dict[str, Any], stream: bool):
        body = {"model": self._model(model), "messages": normalize_messages(messages), **params}
        if stream:
            body["stream"] = True
            return core.StreamCall(
                self._opts("chat", "/v1/chat/completions", json=body, headers={"Accept": "text/event-stream"}),
                OpenAIChunkDecoder,
            )
        return core.Call(self._opts("chat", "/v1/chat/completions", json=body),
                    parse=lambda r: parse_chat_completion(r.json()), usage=lambda c: c.usage)

    # -- embedding / retrieval / reranking microservices ------------------------------------------

    def _embed(self, input: str | list[str], model: str | None, params: dict[str, Any]):
        body: dict[str, Any] = {"model": model or self.embed_model, "input": input, **params}
        return core.Call(self._opts("embed", "/v1/embeddings", json=body),
                    parse=lambda r: parse_embeddings(r.json()), usage=lambda e: e.usage)

    def _retrieve(self, query: str, k: int, embedding: Sequence[float] | None, params: dict[str, Any]):
        body: dict[str, Any] = {"input": query, "k": k, **params}
        if embedding is not None:
            body["embedding"] = [float(x) for x in embedding]

        def parse(r: httpx.Response) -> list[RetrievedDoc]:
            return [RetrievedDoc(str(d["text"]), dict(d.get("metadata") or {}))
                    for d in r.json()["retrieved_docs"]]

        return core.Call(self._opts("retrieve", "/v1/retrieval", json=body), parse=parse)

    def retrieve(self, query: str, *, k: int = 4, embedding: Sequence[float] | None = None,
                 **params: Any) -> list[RetrievedDoc]:
        """POST /v1/retrieval: the ``k`` documents nearest the query (or its ``embedding``)."""
        return self._call(self._retrieve(query, k, embedding, params))

    async def aretrieve(self, query: str, *, k: int = 4, embedding: Sequence[float] | None = None,
                        **params: Any) -> list[RetrievedDoc]:
        return await self._acall(self._retrieve(query, k, embedding, params))

    def _rerank(self, query: str, docs: Sequence[str | RetrievedDoc], top_n: int):
        body = {"input": query, "top_n": top_n,
                "retrieved_docs": [{"text": d.text if isinstance(d, RetrievedDoc) else str(d)} for d in docs]}

        def parse(r: httpx.Response) -> list[RankedDoc]:
            return [RankedDoc(str(d["text"]), float(d.get("score") or 0.0)) for d in r.json()["reranked_docs"]]

        return core.Call(self._opts("rerank", "/v1/reranking", json=body), parse=parse)

    def rerank(self, query: str, docs: Sequence[str | RetrievedDoc], *, top_n: int = 1) -> list[RankedDoc]:
        """POST /v1/reranking: the ``top_n`` best documents, best first."""
        return self._call(self._rerank(query, docs, top_n))

    async def arerank(self, query: str, docs: Sequence[str | RetrievedDoc], *, top_n: int = 1) -> list[RankedDoc]:
        return await self._acall(self._rerank(query, docs, top_n))

    def _health_probes(self) -> list[core.Call[bool]]:
        return [self._probe("/v1/health_check")]
