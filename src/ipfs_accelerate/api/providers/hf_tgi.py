"""Hugging Face Text Generation Inference: ``/generate``, ``/generate_stream`` and chat.

* ``generate`` → ``POST /generate`` ``{"inputs", "parameters"}``; ``details`` is requested so the
  result has a finish reason and token counts (``details.generated_tokens``; prompt tokens
  when the server reports ``prefill``).
* ``generate_stream`` → ``POST /generate_stream`` (SSE). Each event carries one ``token``; the
  last one also carries ``generated_text`` and ``details``; TGI sends no ``[DONE]``, so a stream
  is complete only when that final event arrived. ``{"error": ...}`` events raise StreamError.
* ``chat`` / ``chat_stream`` → TGI's OpenAI-compatible ``/v1/chat/completions`` (Messages API),
  mapped exactly like ``openai_api``; the model name is ``"tgi"`` unless you pass one.
* ``server_info`` (``GET /info``), ``health`` (``GET /health``), ``tokenize`` (``POST /tokenize``).

``base_url`` is the server root (``HF_TGI_BASE_URL``); a key (``HF_TGI_API_KEY`` / ``HF_TOKEN``,
Bearer) is sent when set, as Inference Endpoints require.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from ipfs_accelerate.api import core
from ipfs_accelerate.api.providers import PROVIDERS

from .openai_api import Messages, OpenAIChunkDecoder, normalize_messages, parse_chat_completion

__all__ = ["HFTGIProvider", "TGIChunkDecoder", "parse_generate"]

# Names accepted at top level and moved into "parameters" (OpenAI spellings are translated).
_RENAMES = {"max_tokens": "max_new_tokens"}


def _parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    rest = dict(params)
    out = dict(rest.pop("parameters", None) or {})
    for key, value in rest.items():
        out[_RENAMES.get(key, key)] = value
    out.setdefault("details", True)
    return out


def _usage_from_details(details: Mapping[str, Any] | None) -> core.Usage | None:
    if not details:
        return None
    prefill = details.get("prefill") or []
    return core.Usage(len(prefill), int(details.get("generated_tokens") or 0))


def parse_generate(data: Any) -> core.Completion:
    # TGI answers /generate with an object; its root route "/" and older clients use a list.
    obj = data[0] if isinstance(data, list) and data else data
    if not isinstance(obj, dict) or "generated_text" not in obj:
        raise ValueError("response has no generated_text")
    details = obj.get("details") or {}
    choice = core.CompletionChoice(0, obj["generated_text"] or "", details.get("finish_reason"))
    return core.Completion.of(obj, [choice], _usage_from_details(details), id=None, model=None)


class TGIChunkDecoder(core.ChunkDecoder[core.ChatChunk]):
    """``/generate_stream`` events: ``{"token": {...}, "generated_text": null | str, ...}``."""

    framing = "sse"

    def __init__(self) -> None:
        super().__init__()
        self.generated_text: str | None = None

    def decode(self, item: core.ServerSentEvent) -> Iterable[core.ChatChunk]:
        if not item.data.strip():
            return []
        obj = self.checked(item)
        token = obj.get("token") or {}
        delta = "" if token.get("special") else (token.get("text") or "")
        finish = None
        usage = None
        if obj.get("generated_text") is not None:
            self.done = True
            self.generated_text = obj["generated_text"]
            details = obj.get("details") or {}
            finish = details.get("finish_reason") or "stop"
            usage = _usage_from_details(details)
            if usage is not None:
                self.usage = usage
        return [core.ChatChunk(delta=delta, index=0, finish_reason=finish, usage=usage, raw=obj)]


class HFTGIProvider(core.ChatVerbs, core.Provider):
    """TGI's native and OpenAI-compatible routes; see the module docstring."""

    name = "hf_tgi"
    info = PROVIDERS["hf_tgi"]
    default_model = "tgi"

    def _generate(self, prompt: str, params: dict[str, Any], stream: bool):
        body = {"inputs": prompt, "parameters": _parameters(params)}
        if stream:
            return core.StreamCall(
                self._options(
                    "POST", "/generate_stream", json=body, headers={"Accept": "text/event-stream"}
                ),
                TGIChunkDecoder,
            )
        return core.Call(
            self._options("POST", "/generate", json=body),
            parse=lambda r: parse_generate(r.json()),
            usage=lambda c: c.usage,
        )

    def _chat(self, messages: Messages, model: str | None, params: dict[str, Any], stream: bool):
        body = {"model": model or self.model or "tgi", "messages": normalize_messages(messages), **params}
        if stream:
            body["stream"] = True
            body.setdefault("stream_options", {"include_usage": True})
            return core.StreamCall(
                self._options(
                    "POST", "/v1/chat/completions", json=body,
                    headers={"Accept": "text/event-stream"},
                ),
                OpenAIChunkDecoder,
            )
        return core.Call(
            self._options("POST", "/v1/chat/completions", json=body),
            parse=lambda r: parse_chat_completion(r.json()),
            usage=lambda c: c.usage,
        )

    # -- native text generation -----------------------------------------------------------------

    def generate(self, prompt: str, **params: Any) -> core.Completion:
        """POST /generate; keyword arguments become ``parameters`` (``max_tokens`` is mapped)."""
        return self._call(self._generate(prompt, params, False))

    async def agenerate(self, prompt: str, **params: Any) -> core.Completion:
        return await self._acall(self._generate(prompt, params, False))

    def generate_stream(self, prompt: str, **params: Any) -> core.Stream[core.ChatChunk]:
        """POST /generate_stream (SSE); ``stream.decoder.generated_text`` holds the final text."""
        return self._stream(self._generate(prompt, params, True))

    async def agenerate_stream(self, prompt: str, **params: Any) -> core.AsyncStream[core.ChatChunk]:
        return await self._astream(self._generate(prompt, params, True))

    complete = generate
    acomplete = agenerate
    complete_stream = generate_stream
    acomplete_stream = agenerate_stream

    # -- OpenAI-compatible chat -------------------------------------------------------------------

    # -- server info --------------------------------------------------------------------------------

    def server_info(self) -> dict[str, Any]:
        """GET /info: model id, limits (``max_input_tokens``, ``max_total_tokens``...)."""
        return self._call(core.Call(self._options("GET", "/info"), parse=lambda r: dict(r.json())))

    async def aserver_info(self) -> dict[str, Any]:
        return await self._acall(core.Call(self._options("GET", "/info"), parse=lambda r: dict(r.json())))

    def _health_probes(self) -> list[core.Call[bool]]:
        return [self._probe("/health")]

    def _tokenize(self, text: str) -> core.Call[list[int]]:
        def parse(r: httpx.Response) -> list[int]:
            return [int(t["id"]) for t in r.json()]

        return core.Call(self._options("POST", "/tokenize", json={"inputs": text}), parse=parse)

    def tokenize(self, text: str) -> list[int]:
        """POST /tokenize → token ids."""
        return self._call(self._tokenize(text))

    async def atokenize(self, text: str) -> list[int]:
        return await self._acall(self._tokenize(text))
