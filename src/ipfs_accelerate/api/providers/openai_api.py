"""OpenAI: chat completions, completions, embeddings, streaming (SSE), models.

The mapping here is the OpenAI wire protocol, which ``groq``, ``vllm`` and ``llvm`` reuse by
subclassing :class:`OpenAIProvider` with other defaults.

Streaming asks for ``stream_options.include_usage`` so the final chunk carries usage (servers
that ignore it, such as llama-cpp-python, leave ``Stream.usage`` as None rather than a guess).
A stream is complete only when ``data: [DONE]`` arrives; a mid-stream ``{"error": ...}`` payload
raises :class:`StreamError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from ipfs_accelerate.api import core
from ipfs_accelerate.api.providers import PROVIDERS

__all__ = [
    "Messages",
    "OpenAIChunkDecoder",
    "OpenAIProvider",
    "normalize_messages",
    "parse_chat_completion",
    "parse_completion",
    "parse_embeddings",
    "parse_usage",
    "server_root",
]

Messages = str | Sequence[Mapping[str, Any]]


def normalize_messages(messages: Messages) -> list[dict[str, Any]]:
    """A bare string is one user message; mappings are passed through as dicts."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [dict(m) for m in messages]


def parse_usage(data: Mapping[str, Any] | None) -> core.Usage | None:
    if not data:
        return None
    return core.Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0))


def parse_chat_completion(data: Mapping[str, Any]) -> core.ChatCompletion:
    choices = []
    for i, c in enumerate(data["choices"]):
        msg = c.get("message") or {}
        choices.append(
            core.ChatChoice(
                index=int(c.get("index", i)),
                message=core.ChatMessage.of(msg),
                finish_reason=c.get("finish_reason"),
            )
        )
    return core.ChatCompletion.of(data, choices, parse_usage(data.get("usage")))


def parse_completion(data: Mapping[str, Any]) -> core.Completion:
    choices = [
        core.CompletionChoice(int(c.get("index", i)), c.get("text") or "", c.get("finish_reason"))
        for i, c in enumerate(data["choices"])
    ]
    return core.Completion.of(data, choices, parse_usage(data.get("usage")))


def parse_embeddings(data: Mapping[str, Any]) -> core.EmbeddingResponse:
    items = sorted(data["data"], key=lambda d: d.get("index", 0))
    vectors = [[float(x) for x in item["embedding"]] for item in items]
    return core.EmbeddingResponse(
        model=data.get("model"),
        embeddings=vectors,
        usage=parse_usage(data.get("usage")),
        raw=dict(data),
    )


def _json(response: httpx.Response) -> Any:
    return response.json()


class OpenAIChunkDecoder(core.ChunkDecoder[core.ChatChunk]):
    """``chat.completion.chunk`` / ``text_completion`` events → ChatChunk; ``[DONE]`` ends."""

    framing = "sse"

    def decode(self, item: core.ServerSentEvent) -> Iterable[core.ChatChunk]:
        if item.data.strip() == "[DONE]":
            self.done = True
            return []
        if self.done:
            raise core.StreamError("event after [DONE]")
        obj = item.json()
        if not isinstance(obj, dict):
            raise core.StreamError(f"stream event is not an object: {item.data[:200]!r}")
        if obj.get("error"):
            message = core.default_error_message(obj) or "error event"
            raise core.StreamError(f"server sent an error mid-stream: {message}")
        usage = parse_usage(obj.get("usage")) or parse_usage((obj.get("x_groq") or {}).get("usage"))
        if usage is not None:
            self.usage = usage
        chunks = []
        for c in obj.get("choices") or []:
            delta = c.get("delta")
            if delta is not None:
                text, role = delta.get("content") or "", delta.get("role")
            else:  # legacy completions stream
                text, role = c.get("text") or "", None
            chunks.append(
                core.ChatChunk(
                    delta=text,
                    index=int(c.get("index", 0)),
                    role=role,
                    finish_reason=c.get("finish_reason"),
                    id=obj.get("id"),
                    model=obj.get("model"),
                    raw=obj,
                )
            )
        if usage is not None:
            if chunks:
                chunks[-1] = _with_usage(chunks[-1], usage)
            else:
                chunks.append(
                    core.ChatChunk(usage=usage, id=obj.get("id"), model=obj.get("model"), raw=obj)
                )
        return chunks


def _with_usage(chunk: core.ChatChunk, usage: core.Usage) -> core.ChatChunk:
    return core.ChatChunk(
        delta=chunk.delta,
        index=chunk.index,
        role=chunk.role,
        finish_reason=chunk.finish_reason,
        usage=usage,
        id=chunk.id,
        model=chunk.model,
        raw=chunk.raw,
    )


def server_root(base_url: str) -> str:
    """The server root for a base URL that ends in ``/v1`` (where vLLM and llama.cpp serve
    ``/health``, ``/tokenize`` and friends)."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


class OpenAIProvider(core.ChatVerbs, core.EmbedVerbs, core.ModelsVerbs, core.Provider):
    """OpenAI's REST API (``base_url`` includes ``/v1``)."""

    name = "openai_api"
    info = PROVIDERS["openai_api"]
    #: whether to ask for a usage chunk at the end of streams
    stream_usage = True

    def _root(self, path: str) -> str:
        """``path`` on the server root rather than under ``/v1``."""
        return server_root(self.base_url) + path

    # -- request builders (shared by the sync and async methods) --------------------------------

    def _chat(
        self, messages: Messages, model: str | None, params: dict[str, Any], stream: bool
    ) -> core.Call[core.ChatCompletion] | core.StreamCall[core.ChatChunk]:
        body = {"model": self._model(model), "messages": normalize_messages(messages), **params}
        if stream:
            return core.StreamCall(
                self._options(
                    "POST", "/chat/completions", json=self._stream_body(body),
                    headers={"Accept": "text/event-stream"},
                ),
                OpenAIChunkDecoder,
            )
        return core.Call(
            self._options("POST", "/chat/completions", json=body),
            parse=lambda r: parse_chat_completion(_json(r)),
            usage=lambda c: c.usage,
        )

    def _stream_body(self, body: dict[str, Any]) -> dict[str, Any]:
        body["stream"] = True
        if self.stream_usage and "stream_options" not in body:
            body["stream_options"] = {"include_usage": True}
        return body

    def _complete(
        self, prompt: str | list[str], model: str | None, params: dict[str, Any]
    ) -> core.Call[core.Completion]:
        body = {"model": self._model(model), "prompt": prompt, **params}
        return core.Call(
            self._options("POST", "/completions", json=body),
            parse=lambda r: parse_completion(_json(r)),
            usage=lambda c: c.usage,
        )

    def _complete_stream(
        self, prompt: str | list[str], model: str | None, params: dict[str, Any]
    ) -> core.StreamCall[core.ChatChunk]:
        body = self._stream_body({"model": self._model(model), "prompt": prompt, **params})
        return core.StreamCall(
            self._options(
                "POST", "/completions", json=body, headers={"Accept": "text/event-stream"}
            ),
            OpenAIChunkDecoder,
        )

    def _embed(
        self, input: str | list[str], model: str | None, params: dict[str, Any]
    ) -> core.Call[core.EmbeddingResponse]:
        body = {"model": self._model(model), "input": input, "encoding_format": "float", **params}
        return core.Call(
            self._options("POST", "/embeddings", json=body),
            parse=lambda r: parse_embeddings(_json(r)),
            usage=lambda e: e.usage,
        )

    def _models(self) -> core.Call[list[core.ModelInfo]]:
        def parse(r: httpx.Response) -> list[core.ModelInfo]:
            return [core.ModelInfo(m["id"], m.get("owned_by"), raw=m) for m in _json(r)["data"]]

        return core.Call(self._options("GET", "/models"), parse=parse)

    # -- public API -------------------------------------------------------------------------------

    def complete(
        self, prompt: str | list[str], *, model: str | None = None, **params: Any
    ) -> core.Completion:
        """POST /completions (legacy text completions)."""
        return self._call(self._complete(prompt, model, params))

    async def acomplete(
        self, prompt: str | list[str], *, model: str | None = None, **params: Any
    ) -> core.Completion:
        return await self._acall(self._complete(prompt, model, params))

    def complete_stream(
        self, prompt: str | list[str], *, model: str | None = None, **params: Any
    ) -> core.Stream[core.ChatChunk]:
        return self._stream(self._complete_stream(prompt, model, params))

    async def acomplete_stream(
        self, prompt: str | list[str], *, model: str | None = None, **params: Any
    ) -> core.AsyncStream[core.ChatChunk]:
        return await self._astream(self._complete_stream(prompt, model, params))

