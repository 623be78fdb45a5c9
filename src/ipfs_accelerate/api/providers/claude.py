"""Anthropic Messages API: create, streaming events, count_tokens, models.

Auth is ``x-api-key`` plus ``anthropic-version`` (the official SDK sends the same headers; it
may send Bearer too, which servers accept). Retry-After is honoured up to 60 s, as the
anthropic SDK does, and 529 "overloaded" is retried like any 5xx.

Messages may be given OpenAI-style: ``system`` messages are lifted into the top-level
``system`` field, which is where the Messages API wants them.

Streaming events (``message_start``, ``content_block_*``, ``message_delta``, ``message_stop``,
``ping``, ``error``): text deltas become :class:`ChatChunk`; usage is reconciled from
``message_start`` (input tokens) and the cumulative ``message_delta`` counts (output tokens);
only ``message_stop`` completes a stream, and an ``error`` event raises :class:`StreamError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from ipfs_accelerate.api import core
from ipfs_accelerate.api.providers import PROVIDERS

from .openai_api import Messages, normalize_messages

__all__ = ["ANTHROPIC_VERSION", "ClaudeChunkDecoder", "ClaudeProvider", "parse_message"]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024


def _usage(data: Mapping[str, Any] | None) -> core.Usage | None:
    if not data:
        return None
    return core.Usage(int(data.get("input_tokens") or 0), int(data.get("output_tokens") or 0))


def parse_message(data: Mapping[str, Any]) -> core.ChatCompletion:
    if data.get("type") not in (None, "message"):
        raise ValueError(f"expected a message object, got type {data.get('type')!r}")
    text = "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
    tools = [b for b in data["content"] if b.get("type") == "tool_use"] or None
    choice = core.ChatChoice(
        0, core.ChatMessage(data.get("role") or "assistant", text, tools), data.get("stop_reason")
    )
    return core.ChatCompletion.of(data, [choice], _usage(data.get("usage")))


def split_system(
    messages: Messages, system: str | Sequence[Any] | None
) -> tuple[Any, list[dict[str, Any]]]:
    """Lift OpenAI-style system messages into the Messages API's ``system`` field."""
    msgs = normalize_messages(messages)
    lifted = [m["content"] for m in msgs if m.get("role") == "system"]
    rest = [m for m in msgs if m.get("role") != "system"]
    if lifted and system is None:
        system = "\n\n".join(str(c) for c in lifted)
    elif lifted:
        raise ValueError(
            "pass the system prompt either as system= or as a system message, not both"
        )
    return system, rest


class ClaudeChunkDecoder(core.ChunkDecoder[core.ChatChunk]):
    framing = "sse"

    def __init__(self) -> None:
        super().__init__()
        self._id: str | None = None
        self._model: str | None = None
        self._input = 0
        self._output = 0

    def decode(self, item: core.ServerSentEvent) -> Iterable[core.ChatChunk]:
        obj = item.json()
        kind = item.event or (obj.get("type") if isinstance(obj, dict) else None)
        if not isinstance(obj, dict):
            raise core.StreamError(f"stream event is not an object: {item.data[:200]!r}")
        if kind == "error":
            err = obj.get("error") or {}
            raise core.StreamError(
                f"server sent an error mid-stream: {err.get('type', 'error')}: {err.get('message', '')}"
            )
        if self.done:
            raise core.StreamError(f"event {kind!r} after message_stop")
        if kind == "message_start":
            msg = obj.get("message") or {}
            self._id, self._model = msg.get("id"), msg.get("model")
            usage = msg.get("usage") or {}
            self._input = int(usage.get("input_tokens") or 0)
            self._output = int(usage.get("output_tokens") or 0)
            self.usage = core.Usage(self._input, self._output)
            return [
                core.ChatChunk(
                    role=msg.get("role") or "assistant", id=self._id, model=self._model, raw=obj
                )
            ]
        if kind == "content_block_delta":
            delta = obj.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [
                    core.ChatChunk(delta=delta.get("text", ""), id=self._id, model=self._model, raw=obj)
                ]
            return []
        if kind == "message_delta":
            usage = obj.get("usage") or {}
            if "input_tokens" in usage and usage["input_tokens"] is not None:
                self._input = int(usage["input_tokens"])
            if usage.get("output_tokens") is not None:
                self._output = int(usage["output_tokens"])  # cumulative, not a delta
            self.usage = core.Usage(self._input, self._output)
            stop = (obj.get("delta") or {}).get("stop_reason")
            return [
                core.ChatChunk(
                    finish_reason=stop, usage=self.usage, id=self._id, model=self._model, raw=obj
                )
            ]
        if kind == "message_stop":
            self.done = True
            return []
        return []  # ping, content_block_start/stop, and event types added later


class ClaudeProvider(core.ChatVerbs, core.ModelsVerbs, core.Provider):
    """Anthropic's API (``base_url`` is the host; paths carry ``/v1``)."""

    name = "claude"
    info = PROVIDERS["claude"]
    retry_policy = core.ANTHROPIC_RETRY
    request_id_headers = ("request-id", "x-request-id")

    def auth_headers(self, key: core.Secret) -> dict[str, str]:
        return {"x-api-key": key.reveal()}

    def extra_headers(self) -> dict[str, str]:
        return {"anthropic-version": ANTHROPIC_VERSION}

    def _body(
        self,
        messages: Messages,
        model: str | None,
        system: str | Sequence[Any] | None,
        params: dict[str, Any],
    ) -> dict[str, Any]:
        """A Messages API body (create and count_tokens alike): the model, the messages, the
        system prompt (``system``, or a leading system message) if any, then ``params``."""
        system, msgs = split_system(messages, system)
        prompt = {"system": system} if system is not None else {}
        return {"model": self._model(model), "messages": msgs, **prompt, **params}

    def _chat(
        self, messages: Messages, model: str | None, params: dict[str, Any], stream: bool
    ) -> core.Call[core.ChatCompletion] | core.StreamCall[core.ChatChunk]:
        """POST /v1/messages. ``max_tokens`` (default DEFAULT_MAX_TOKENS) and ``system`` are
        keyword arguments like the rest (temperature, tools, ...), which go in the body."""
        params = {"max_tokens": DEFAULT_MAX_TOKENS, **params}
        body = self._body(messages, model, params.pop("system", None), params)
        if stream:
            body["stream"] = True
            return core.StreamCall(
                self._options("POST", "/v1/messages", json=body, headers={"Accept": "text/event-stream"}),
                ClaudeChunkDecoder,
            )
        return core.Call(
            self._options("POST", "/v1/messages", json=body),
            parse=lambda r: parse_message(r.json()),
            usage=lambda c: c.usage,
        )

    def _count(
        self, messages: Messages, model: str | None, system: Any, params: dict[str, Any]
    ) -> core.Call[core.TokenCount]:
        return core.Call(
            self._options(
                "POST", "/v1/messages/count_tokens", json=self._body(messages, model, system, params)
            ),
            parse=lambda r: core.TokenCount(int(r.json()["input_tokens"]), raw=r.json()),
        )

    def _models(self) -> core.Call[list[core.ModelInfo]]:
        def parse(r: httpx.Response) -> list[core.ModelInfo]:
            return [core.ModelInfo(m["id"], None, raw=m) for m in r.json()["data"]]

        return core.Call(self._options("GET", "/v1/models"), parse=parse)

    # -- public API -------------------------------------------------------------------------------

    def count_tokens(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        system: str | None = None,
        **params: Any,
    ) -> core.TokenCount:
        """POST /v1/messages/count_tokens."""
        return self._call(self._count(messages, model, system, params))

    async def acount_tokens(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        system: str | None = None,
        **params: Any,
    ) -> core.TokenCount:
        return await self._acall(self._count(messages, model, system, params))

