"""OpenAI-compatible fake: the protocol of OpenAI, Groq (under ``/openai/v1``), vLLM, llama.cpp's
server (our ``llvm`` provider) and OPEA's LLM microservice.

Every route is mounted at ``/v1/...`` and ``/openai/v1/...``. Reply text is
``reply_text(messages_text(messages), max_tokens)``; embeddings are ``embedding(text, dim)``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ._content import count_tokens, embedding, embedding_base64, reply_pieces, reply_words
from ._server import FakeServer, HTTPError, Request, Response, StreamResponse

_P = r"(?:/openai)?/v1"
#: the OpenAI-compatible surface, by handler name; other fakes mount a part of it (`openai_routes`)
_OPENAI = {
    "list_models": ("GET", r"/models"),
    "get_model": ("GET", r"/models/(?P<model>.+)"),
    "chat": ("POST", r"/chat/completions"),
    "completions": ("POST", r"/completions"),
    "embeddings": ("POST", r"/embeddings"),
}


def openai_routes(*names: str, prefix: str = "/v1") -> list[tuple[str, str, str]]:
    """The OpenAI-compatible routes ``names`` under ``prefix``, for a server that also speaks
    the protocol (TGI, TEI and OPEA at ``/v1``)."""
    return [(_OPENAI[n][0], prefix + _OPENAI[n][1], n) for n in names]

VALID_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout", None),
    409: ("conflict", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


def content_text(content: Any) -> str:
    """Text of an OpenAI message ``content`` (a string or a list of typed parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text")
        )
    raise HTTPError(400, "Invalid type for 'messages[].content'", code="invalid_type")


def messages_text(messages: list[dict[str, Any]]) -> str:
    """The text a reply is derived from: every message's text, joined by newlines."""
    return "\n".join(content_text(m.get("content")) for m in messages)


def _opt_int(body: dict[str, Any], *names: str) -> int | None:
    for name in names:
        v = body.get(name)
        if v is not None:
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise HTTPError(
                    400,
                    f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {v!r} instead.",
                    code="integer_below_min_value",
                )
            return v
    return None


class FakeOpenAIServer(FakeServer):
    """``/v1/models``, ``/v1/chat/completions`` (+SSE), ``/v1/completions`` (+SSE), ``/v1/embeddings``."""

    family = "openai"
    ROUTES = [*openai_routes(*_OPENAI, prefix=_P), ("GET", r"/health", "health")]

    def __init__(
        self, *args: Any, models: tuple[str, ...] = ("fake-model", "fake-embed"), **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.models = models

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    # -- family hooks ------------------------------------------------------------------------
    def error_body(self, status: int, message: str, code: str | None = None) -> Any:
        etype, default_code = _ERROR_TYPES.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        return {
            "error": {
                "message": message,
                "type": etype,
                "param": None,
                "code": code or default_code,
            }
        }

    # -- routes ------------------------------------------------------------------------------
    def health(self, req: Request) -> Response:
        return Response(b"", content_type="text/plain")

    def _model_obj(self, name: str) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": self.created,
            "owned_by": "ipfs-accelerate",
        }

    def list_models(self, req: Request) -> Response:
        return Response({"object": "list", "data": [self._model_obj(m) for m in self.models]})

    def get_model(self, req: Request) -> Response:
        name = req.params["model"]
        if name not in self.models:
            raise HTTPError(
                404,
                f"The model `{name}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        return Response(self._model_obj(name))

    def _common(self, body: dict[str, Any]) -> str:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise HTTPError(
                400, "you must provide a model parameter", code="missing_required_parameter"
            )
        temp = body.get("temperature")
        if temp is not None and (not isinstance(temp, int | float) or not 0 <= temp <= 2):
            raise HTTPError(
                400,
                f"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got {temp!r} instead.",
                code="decimal_above_max_value",
            )
        if body.get("stream_options") is not None and not body.get("stream"):
            raise HTTPError(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                code="invalid_value",
            )
        return model

    def _id(self, prefix: str, body: dict[str, Any]) -> str:
        return prefix + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]

    def chat(self, req: Request) -> Response | StreamResponse:
        body = req.json_object()
        model = self._common(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise HTTPError(
                400,
                "[] is too short - 'messages'"
                if messages == []
                else "Missing required parameter: 'messages'.",
                code="missing_required_parameter",
            )
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in VALID_ROLES:
                role = m.get("role") if isinstance(m, dict) else None
                raise HTTPError(
                    400,
                    f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
                    code="invalid_value",
                )
            content_text(m.get("content"))
        max_tokens = _opt_int(body, "max_completion_tokens", "max_tokens")
        n = _opt_int(body, "n") or 1
        prompt = messages_text(messages)
        prompt_tokens = count_tokens(prompt)
        cid = self._id("chatcmpl-", body)
        tool = self._forced_tool(body)
        json_mode = (body.get("response_format") or {}).get("type") in (
            "json_object",
            "json_schema",
        )
        choices = []
        for i in range(n):
            words, finish = reply_words(
                prompt if i == 0 else f"{prompt}#{i}", max_tokens, length=self.reply_tokens
            )
            text = " ".join(words)
            if json_mode:
                text = json.dumps({"reply": text})
            choices.append((words, text, finish))
        completion_tokens = sum(len(w) for w, _, _ in choices)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        base = {"id": cid, "created": self.created, "model": model, "system_fingerprint": "fp_fake"}
        if not body.get("stream"):
            out = []
            for i, (_, text, finish) in enumerate(choices):
                msg: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
                if tool is not None:
                    msg = {
                        "role": "assistant",
                        "content": None,
                        "refusal": None,
                        "tool_calls": [self._tool_call(tool, text, i)],
                    }
                    finish = "tool_calls"
                out.append({"index": i, "message": msg, "logprobs": None, "finish_reason": finish})
            return Response({**base, "object": "chat.completion", "choices": out, "usage": usage})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks: list[dict[str, Any]] = []

        def chunk(index: int, delta: dict[str, Any], finish: str | None) -> None:
            c = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [
                    {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                c["usage"] = None
            chunks.append(c)

        for i, (words, text, finish) in enumerate(choices):
            chunk(i, {"role": "assistant", "content": "", "refusal": None}, None)
            if tool is not None:
                call = self._tool_call(tool, text, i)
                chunk(i, {"tool_calls": [{"index": 0, **call}]}, None)
                finish = "tool_calls"
            elif json_mode:
                chunk(i, {"content": text}, None)
            else:
                for piece in reply_pieces(words):
                    chunk(i, {"content": piece}, None)
            chunk(i, {}, finish)
        if include_usage:
            chunks.append(
                {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            )
        return self._sse(chunks)

    def _forced_tool(self, body: dict[str, Any]) -> str | None:
        tools = body.get("tools") or []
        choice = body.get("tool_choice")
        if not tools or choice in (None, "none", "auto"):
            return None
        if isinstance(choice, dict):
            return str(choice.get("function", {}).get("name"))
        return str(tools[0].get("function", {}).get("name"))

    def _tool_call(self, name: str, text: str, index: int) -> dict[str, Any]:
        cid = "call_" + hashlib.sha256(f"{name}:{text}:{index}".encode()).hexdigest()[:24]
        return {
            "id": cid,
            "type": "function",
            "function": {"name": name, "arguments": json.dumps({"input": text})},
        }

    def _sse(self, chunks: list[dict[str, Any]]) -> StreamResponse:
        events = [
            b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n" for c in chunks
        ]
        events.append(b"data: [DONE]\n\n")
        return StreamResponse(
            events, malformed=b'data: {"id":"chatcmpl-broken","choices":[{"delta":\n\n'
        )

    def completions(self, req: Request) -> Response | StreamResponse:
        body = req.json_object()
        model = self._common(body)
        prompt = body.get("prompt")
        if prompt is None:
            raise HTTPError(
                400, "Missing required parameter: 'prompt'.", code="missing_required_parameter"
            )
        if isinstance(prompt, str):
            prompts = [prompt]
        elif isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
            prompts = [" ".join(map(str, prompt))]
        elif isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
            prompts = list(prompt)
        elif isinstance(prompt, list) and all(isinstance(p, list) for p in prompt):
            prompts = [" ".join(map(str, p)) for p in prompt]
        else:
            raise HTTPError(400, "Invalid type for 'prompt'", code="invalid_type")
        max_tokens = _opt_int(body, "max_tokens")
        if max_tokens is None:
            max_tokens = 16  # the legacy endpoint's documented default
        n = _opt_int(body, "n") or 1
        echo = bool(body.get("echo"))
        results = []
        for p in prompts:
            for i in range(n):
                words, finish = reply_words(
                    p if i == 0 else f"{p}#{i}", max_tokens, length=self.reply_tokens
                )
                results.append((p, words, finish))
        prompt_tokens = sum(count_tokens(p) for p in prompts)
        completion_tokens = sum(len(w) for _, w, _ in results)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        base = {
            "id": self._id("cmpl-", body),
            "created": self.created,
            "model": model,
            "system_fingerprint": "fp_fake",
        }
        if not body.get("stream"):
            choices = [
                {
                    "text": (p if echo else "") + " ".join(w),
                    "index": i,
                    "logprobs": None,
                    "finish_reason": f,
                }
                for i, (p, w, f) in enumerate(results)
            ]
            return Response(
                {**base, "object": "text_completion", "choices": choices, "usage": usage}
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks: list[dict[str, Any]] = []
        for i, (p, words, finish) in enumerate(results):
            pieces = reply_pieces(words)
            if echo:
                pieces = [p, *pieces]
            for j, piece in enumerate(pieces):
                last = j == len(pieces) - 1
                c = {
                    **base,
                    "object": "text_completion",
                    "choices": [
                        {
                            "text": piece,
                            "index": i,
                            "logprobs": None,
                            "finish_reason": finish if last else None,
                        }
                    ],
                }
                if include_usage:
                    c["usage"] = None
                chunks.append(c)
            if not pieces:
                chunks.append(
                    {
                        **base,
                        "object": "text_completion",
                        "choices": [
                            {"text": "", "index": i, "logprobs": None, "finish_reason": finish}
                        ],
                    }
                )
        if include_usage:
            chunks.append({**base, "object": "text_completion", "choices": [], "usage": usage})
        return self._sse(chunks)

    def embeddings(self, req: Request) -> Response:
        body = req.json_object()
        model = self._common(body)
        raw = body.get("input")
        if isinstance(raw, str):
            texts = [raw]
        elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
            texts = [" ".join(map(str, raw))]
        elif isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
            texts = list(raw)
        elif isinstance(raw, list) and raw and all(isinstance(x, list) for x in raw):
            texts = [" ".join(map(str, x)) for x in raw]
        else:
            raise HTTPError(
                400,
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                code=None,
            )
        if any(t == "" for t in texts):
            raise HTTPError(
                400,
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            )
        dim = body.get("dimensions") or self.embedding_dim
        if not isinstance(dim, int) or dim < 1:
            raise HTTPError(400, "Invalid 'dimensions': expected a positive integer.")
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            raise HTTPError(
                400,
                f"Invalid value: '{fmt}'. Supported values are: 'float' and 'base64'.",
                code="invalid_value",
            )
        data = []
        for i, t in enumerate(texts):
            vec = embedding(t, dim)
            data.append(
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": embedding_base64(vec) if fmt == "base64" else vec,
                }
            )
        tokens = sum(count_tokens(t) for t in texts)
        return Response(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )
