"""Ollama's native REST API: ``/api/chat``, ``/api/generate``, ``/api/embed``, ``/api/tags``.

Ollama streams by default; every non-streaming call sends ``"stream": false`` explicitly, and
the streaming calls read NDJSON (one JSON object per line) until the object with ``"done": true``,
which carries ``done_reason`` and the token counts (``prompt_eval_count`` / ``eval_count``) that
become the stream's reconciled usage. A line ``{"error": "..."}`` mid-stream is a StreamError.

The official ``ollama`` client never retries; this provider goes through the core like every
other, so 429/5xx, resets and timeouts are retried with backoff under one idempotency key.
No key is needed for a local server; ``OLLAMA_API_KEY`` (Bearer) is sent when set (ollama.com).
``base_url`` is the server root (``OLLAMA_HOST``), e.g. ``http://127.0.0.1:11434``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from ipfs_accelerate.api import core
from ipfs_accelerate.api.providers import PROVIDERS

__all__ = ["OllamaChunkDecoder", "OllamaProvider", "parse_chat", "parse_generate"]

Messages = str | Sequence[Mapping[str, Any]]
# Ollama's sampling knobs live under "options"; these top-level names are moved there for you.
_OPTION_NAMES = frozenset(
    {
        "temperature", "top_p", "top_k", "seed", "num_predict", "stop", "num_ctx", "min_p",
        "repeat_penalty", "presence_penalty", "frequency_penalty", "mirostat", "typical_p",
    }
)


def _normalize_messages(messages: Messages) -> list[dict[str, Any]]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [dict(m) for m in messages]


def _body(base: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Merge params; sampling names go into ``options`` (``max_tokens`` → ``num_predict``)."""
    options = dict(params.get("options") or {})
    for key, value in params.items():
        if key == "options":
            continue
        if key == "max_tokens":
            options["num_predict"] = value
        elif key in _OPTION_NAMES:
            options[key] = value
        else:
            base[key] = value
    if options:
        base["options"] = options
    return base


def _usage(obj: Mapping[str, Any]) -> core.Usage | None:
    if "prompt_eval_count" not in obj and "eval_count" not in obj:
        return None
    return core.Usage(int(obj.get("prompt_eval_count") or 0), int(obj.get("eval_count") or 0))


def parse_chat(obj: Mapping[str, Any]) -> core.ChatCompletion:
    choice = core.ChatChoice(0, core.ChatMessage.of(obj.get("message") or {}), obj.get("done_reason"))
    return core.ChatCompletion.of(obj, [choice], _usage(obj), id=None)


def parse_generate(obj: Mapping[str, Any]) -> core.Completion:
    choice = core.CompletionChoice(0, obj.get("response") or "", obj.get("done_reason"))
    return core.Completion.of(obj, [choice], _usage(obj), id=None)


def _object(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


class OllamaChunkDecoder(core.ChunkDecoder[core.ChatChunk]):
    """NDJSON objects of ``/api/chat`` (``message.content``) or ``/api/generate`` (``response``)."""

    framing = "ndjson"

    def decode(self, item: Any) -> Iterable[core.ChatChunk]:
        item = self.checked(item)
        msg = item.get("message")
        if msg is not None:
            delta, role = msg.get("content") or "", msg.get("role")
        else:
            delta, role = item.get("response") or "", None
        finish = None
        usage = None
        if item.get("done"):
            self.done = True
            finish = item.get("done_reason") or "stop"
            usage = _usage(item)
            if usage is not None:
                self.usage = usage
        return [
            core.ChatChunk(
                delta=delta, role=role, finish_reason=finish, usage=usage,
                model=item.get("model"), raw=item,
            )
        ]


class OllamaProvider(core.ChatVerbs, core.EmbedVerbs, core.Provider):
    """Ollama's native API; see the module docstring."""

    name = "ollama"
    info = PROVIDERS["ollama"]
    request_id_headers = ("x-request-id",)

    # -- builders ------------------------------------------------------------------------------

    def _chat(self, messages: Messages, model: str | None, params: dict[str, Any], stream: bool):
        body = _body(
            {"model": self._model(model), "messages": _normalize_messages(messages), "stream": stream},
            params,
        )
        opts = self._options("POST", "/api/chat", json=body)
        if stream:
            return core.StreamCall(opts, OllamaChunkDecoder)
        return core.Call(opts, parse=lambda r: parse_chat(_object(r)), usage=lambda c: c.usage)

    def _generate(self, prompt: str, model: str | None, params: dict[str, Any], stream: bool):
        body = _body({"model": self._model(model), "prompt": prompt, "stream": stream}, params)
        opts = self._options("POST", "/api/generate", json=body)
        if stream:
            return core.StreamCall(opts, OllamaChunkDecoder)
        return core.Call(opts, parse=lambda r: parse_generate(_object(r)), usage=lambda c: c.usage)

    def _embed(self, input: str | list[str], model: str | None, params: dict[str, Any]):
        body = _body({"model": self._model(model), "input": input}, params)

        def parse(r: httpx.Response) -> core.EmbeddingResponse:
            obj = _object(r)
            vectors = [[float(x) for x in v] for v in obj["embeddings"]]
            usage = core.Usage(int(obj.get("prompt_eval_count") or 0), 0) if "prompt_eval_count" in obj else None
            return core.EmbeddingResponse(model=obj.get("model"), embeddings=vectors, usage=usage, raw=obj)

        return core.Call(self._options("POST", "/api/embed", json=body), parse=parse, usage=lambda e: e.usage)

    def _tags(self) -> core.Call[list[core.ModelInfo]]:
        def parse(r: httpx.Response) -> list[core.ModelInfo]:
            return [core.ModelInfo(m.get("name") or m["model"], None, raw=m) for m in _object(r)["models"]]

        return core.Call(self._options("GET", "/api/tags"), parse=parse)

    def _version(self) -> core.Call[str]:
        return core.Call(self._options("GET", "/api/version"), parse=lambda r: str(_object(r)["version"]))

    # -- public API ------------------------------------------------------------------------------

    def generate(self, prompt: str, *, model: str | None = None, **params: Any) -> core.Completion:
        """POST /api/generate (``stream: false``)."""
        return self._call(self._generate(prompt, model, params, False))

    async def agenerate(self, prompt: str, *, model: str | None = None, **params: Any) -> core.Completion:
        return await self._acall(self._generate(prompt, model, params, False))

    def generate_stream(self, prompt: str, *, model: str | None = None, **params: Any) -> core.Stream[core.ChatChunk]:
        return self._stream(self._generate(prompt, model, params, True))

    async def agenerate_stream(
        self, prompt: str, *, model: str | None = None, **params: Any
    ) -> core.AsyncStream[core.ChatChunk]:
        return await self._astream(self._generate(prompt, model, params, True))

    # Aliases so code written against the OpenAI-shaped providers works unchanged.
    complete = generate
    acomplete = agenerate
    complete_stream = generate_stream
    acomplete_stream = agenerate_stream

    def tags(self) -> list[core.ModelInfo]:
        """GET /api/tags: the locally available models."""
        return self._call(self._tags())

    async def atags(self) -> list[core.ModelInfo]:
        return await self._acall(self._tags())

    models = tags
    amodels = atags

    def version(self) -> str:
        """GET /api/version."""
        return self._call(self._version())

    async def aversion(self) -> str:
        return await self._acall(self._version())
