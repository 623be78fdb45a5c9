"""Anthropic Messages API fake: ``/v1/messages`` (+ the full SSE event sequence),
``/v1/messages/count_tokens`` and ``/v1/models``.

The "prompt" is `anthropic_prompt(body)`: the system text then every message's text, joined by
newlines; ``input_tokens`` is `count_tokens` of it. Auth is ``x-api-key`` or ``Authorization:
Bearer`` (the official SDK sends the latter), and ``anthropic-version`` is required as upstream.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ._content import apply_stop, count_tokens, reply_text, split_pieces
from ._server import FakeServer, HTTPError, Request, Response, StreamResponse

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
MODELS = (("claude-fake-1", "Claude Fake 1"), ("claude-fake-haiku", "Claude Fake Haiku"))


def block_text(content: Any) -> str:
    """Text of a message ``content``: a string or a list of blocks (text, tool_result, ...)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise HTTPError(400, "messages.content: Input should be a valid list")
    out = []
    for block in content:
        if not isinstance(block, dict) or "type" not in block:
            raise HTTPError(400, "messages.content: each block needs a 'type'")
        if block["type"] == "text":
            out.append(str(block.get("text", "")))
        elif block["type"] == "tool_result":
            out.append(block_text(block.get("content", "")))
    return "".join(out)


def anthropic_prompt(body: dict[str, Any]) -> str:
    """What a reply is derived from (and input_tokens counted on)."""
    parts = []
    if body.get("system"):
        parts.append(block_text(body["system"]))
    parts.extend(block_text(m.get("content", "")) for m in body.get("messages", []))
    return "\n".join(parts)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class FakeAnthropicServer(FakeServer):
    family = "anthropic"
    request_id_header = "request-id"
    request_id_prefix = "req_fake"
    ROUTES = [
        ("POST", r"/v1/messages", "messages"),
        ("POST", r"/v1/messages/count_tokens", "count"),
        ("GET", r"/v1/models", "list_models"),
        ("GET", r"/v1/models/(?P<model>[^/]+)", "get_model"),
    ]

    def error_body(self, status: int, message: str, code: str | None = None) -> Any:
        etype = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": etype, "message": message}}

    def stream_error_event(self, status: int, message: str) -> bytes:
        return _sse("error", self.error_body(status, message))

    def default_message(self, status: int) -> str:
        if status == 529:
            return "Overloaded"
        if status == 401:
            return "invalid x-api-key"
        return super().default_message(status)

    def auth_ok(self, req: Request) -> bool:
        key = req.headers.get("x-api-key")
        if key is None and req.headers.get("authorization", "").startswith("Bearer "):
            key = req.headers["authorization"][len("Bearer ") :]
        return key == self.api_key

    def _check_version(self, req: Request) -> None:
        if "anthropic-version" not in req.headers:
            raise HTTPError(400, "anthropic-version: header is required")

    # -- models ------------------------------------------------------------------------------
    def _model(self, mid: str, name: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": mid,
            "display_name": name,
            "created_at": "2025-01-01T00:00:00Z",
        }

    def list_models(self, req: Request) -> Response:
        data = [self._model(*m) for m in MODELS]
        return Response(
            {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        )

    def get_model(self, req: Request) -> Response:
        for mid, name in MODELS:
            if mid == req.params["model"]:
                return Response(self._model(mid, name))
        raise HTTPError(404, f"model: {req.params['model']}")

    # -- messages ----------------------------------------------------------------------------
    def _validate(self, req: Request, *, need_max_tokens: bool) -> dict[str, Any]:
        self._check_version(req)
        body = req.json_object()
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise HTTPError(400, "model: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise HTTPError(
                400,
                "messages: Field required"
                if messages is None
                else "messages: at least one message is required",
            )
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
                raise HTTPError(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
            block_text(m.get("content", ""))
        if need_max_tokens:
            mt = body.get("max_tokens")
            if mt is None:
                raise HTTPError(400, "max_tokens: Field required")
            if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
                raise HTTPError(400, "max_tokens: Input should be greater than or equal to 1")
        temp = body.get("temperature")
        if temp is not None and (not isinstance(temp, int | float) or not 0 <= temp <= 1):
            raise HTTPError(400, "temperature: Input should be less than or equal to 1")
        return body

    def count(self, req: Request) -> Response:
        body = self._validate(req, need_max_tokens=False)
        return Response({"input_tokens": count_tokens(anthropic_prompt(body))})

    def _forced_tool(self, body: dict[str, Any]) -> str | None:
        tools, choice = body.get("tools") or [], body.get("tool_choice") or {}
        if not tools or choice.get("type") not in ("any", "tool"):
            return None
        return str(choice.get("name") or tools[0].get("name"))

    def messages(self, req: Request) -> Response | StreamResponse:
        body = self._validate(req, need_max_tokens=True)
        prompt = anthropic_prompt(body)
        input_tokens = count_tokens(prompt)
        max_tokens = body["max_tokens"]
        text = reply_text(prompt, max_tokens, length=self.reply_tokens)
        stop_reason = "max_tokens" if max_tokens < self.reply_tokens else "end_turn"
        text, hit = apply_stop(text, body.get("stop_sequences"))
        if hit is not None:
            stop_reason = "stop_sequence"
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        mid = "msg_fake" + digest[:20]
        tool = self._forced_tool(body)
        content: list[dict[str, Any]]
        if tool is not None:
            content = [
                {
                    "type": "tool_use",
                    "id": "toolu_fake" + digest[20:40],
                    "name": tool,
                    "input": {"input": text},
                }
            ]
            stop_reason, hit = "tool_use", None
        else:
            content = [{"type": "text", "text": text}]
        output_tokens = count_tokens(text)
        usage = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        message = {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": hit,
            "usage": usage,
        }
        if not body.get("stream"):
            return Response(message)
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        events = [_sse("message_start", {"type": "message_start", "message": start})]
        if tool is not None:
            block = {**content[0], "input": {}}
            events.append(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": block},
                )
            )
            events.append(_sse("ping", {"type": "ping"}))
            args = json.dumps(content[0]["input"])
            for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                delta = {"type": "input_json_delta", "partial_json": piece}
                events.append(
                    _sse(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": 0, "delta": delta},
                    )
                )
        else:
            block = {"type": "text", "text": ""}
            events.append(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": block},
                )
            )
            events.append(_sse("ping", {"type": "ping"}))
            for piece in split_pieces(text):
                delta = {"type": "text_delta", "text": piece}
                events.append(
                    _sse(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": 0, "delta": delta},
                    )
                )
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        events.append(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": hit},
                    "usage": {"output_tokens": output_tokens},
                },
            )
        )
        events.append(_sse("message_stop", {"type": "message_stop"}))
        return StreamResponse(
            events,
            malformed=b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,\n\n',
        )
