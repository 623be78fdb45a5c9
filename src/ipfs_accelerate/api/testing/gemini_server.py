"""Gemini API (Generative Language) fake, under ``/v1beta`` and ``/v1``:
``models/{m}:generateContent``, ``:streamGenerateContent`` (``?alt=sse``: SSE with ``\\r\\n\\r\\n``;
without: a JSON array), ``:embedContent``, ``:batchEmbedContents``, ``:countTokens``,
``GET models`` and ``GET models/{m}``.

The "prompt" is `gemini_prompt(body)`: the system instruction's text then every content's text
parts, joined by newlines. Auth is ``x-goog-api-key`` or ``?key=``; like Google, a wrong key is a
400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID`` and a missing one a 403.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ._content import apply_stop, count_tokens, embedding, reply_text, split_pieces
from ._server import FakeServer, HTTPError, Request, Response, StreamResponse

_V = r"/(?P<ver>v1beta|v1|v1alpha)"
_M = _V + r"/models/(?P<model>[^/:]+)"
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
MODELS = ("gemini-fake-flash", "gemini-fake-embedding")


def _parts_text(content: Any) -> str:
    if not isinstance(content, dict):
        raise HTTPError(400, "Invalid value at 'contents': expected a Content object")
    parts = content.get("parts")
    if not isinstance(parts, list):
        raise HTTPError(
            400, "* GenerateContentRequest.contents.parts: contents.parts must not be empty."
        )
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def gemini_prompt(body: dict[str, Any]) -> str:
    """What a reply is derived from (and promptTokenCount counted on)."""
    out = []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if system:
        out.append(_parts_text(system))
    out.extend(_parts_text(c) for c in body.get("contents") or [])
    return "\n".join(out)


class FakeGeminiServer(FakeServer):
    family = "gemini"
    request_id_header = "x-goog-request-id"
    ROUTES = [
        ("POST", _M + r":generateContent", "generate"),
        ("POST", _M + r":streamGenerateContent", "stream"),
        ("POST", _M + r":embedContent", "embed"),
        ("POST", _M + r":batchEmbedContents", "batch_embed"),
        ("POST", _M + r":countTokens", "count"),
        ("GET", _V + r"/models", "list_models"),
        ("GET", _M, "get_model"),
    ]

    def error_body(self, status: int, message: str, code: str | None = None) -> Any:
        err: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": STATUS_NAMES.get(status, "UNKNOWN"),
        }
        if code:
            # As generativelanguage.googleapis.com sends it: ErrorInfo (the machine-readable
            # reason, e.g. API_KEY_INVALID) plus a LocalizedMessage repeating the message.
            err["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": code,
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                },
            ]
        return {"error": err}

    def stream_error_event(self, status: int, message: str) -> bytes:
        return b"data: " + json.dumps(self.error_body(status, message)).encode() + b"\r\n\r\n"

    def auth_ok(self, req: Request) -> bool:
        key = req.headers.get("x-goog-api-key") or req.q("key")
        if key is None:
            raise HTTPError(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            )
        if key != self.api_key:
            raise HTTPError(
                400, "API key not valid. Please pass a valid API key.", code="API_KEY_INVALID"
            )
        return True

    def not_found(self, req: Request) -> HTTPError:
        return HTTPError(404, f"The requested URL {req.path} was not found on this server.")

    # -- models ------------------------------------------------------------------------------
    def _model(self, name: str) -> dict[str, Any]:
        embed = "embedding" in name
        return {
            "name": f"models/{name}",
            "version": "001",
            "displayName": name,
            "description": "ipfs-accelerate fake model",
            "inputTokenLimit": 8192,
            "outputTokenLimit": 0 if embed else 2048,
            "supportedGenerationMethods": ["embedContent", "countTokens"]
            if embed
            else ["generateContent", "countTokens"],
        }

    def list_models(self, req: Request) -> Response:
        return Response({"models": [self._model(m) for m in MODELS]})

    def get_model(self, req: Request) -> Response:
        name = req.params["model"]
        if name not in MODELS:
            raise HTTPError(
                404,
                f"models/{name} is not found for API version {req.params['ver']}, or is not supported for generateContent.",
            )
        return Response(self._model(name))

    # -- generation --------------------------------------------------------------------------
    def _validate(self, req: Request) -> dict[str, Any]:
        body = req.json_object()
        contents = body.get("contents")
        if not contents:
            raise HTTPError(400, "* GenerateContentRequest.contents: contents is not specified\n")
        for c in contents:
            if isinstance(c, dict) and c.get("role") not in (
                None,
                "user",
                "model",
                "function",
                "tool",
            ):
                raise HTTPError(400, f"Please use a valid role: user, model. Got: {c.get('role')}")
        return body

    def _candidates(
        self, body: dict[str, Any]
    ) -> tuple[str, list[tuple[str, str]], dict[str, Any]]:
        prompt = gemini_prompt(body)
        cfg = body.get("generationConfig") or body.get("generation_config") or {}
        temp = cfg.get("temperature")
        if temp is not None and not 0 <= temp <= 2:
            raise HTTPError(
                400,
                f"Unable to submit request because it has a temperature value of {temp} but the supported range is from 0 (inclusive) to 2.0001 (exclusive).",
            )
        max_out = cfg.get("maxOutputTokens")
        n = cfg.get("candidateCount") or 1
        out = []
        for i in range(n):
            text = reply_text(
                prompt if i == 0 else f"{prompt}#{i}", max_out, length=self.reply_tokens
            )
            finish = "MAX_TOKENS" if max_out is not None and max_out < self.reply_tokens else "STOP"
            text, hit = apply_stop(text, cfg.get("stopSequences"))
            if hit is not None:
                finish = "STOP"
            if cfg.get("responseMimeType") == "application/json":
                text = json.dumps({"reply": text})
            out.append((text, finish))
        return prompt, out, cfg

    def _usage(self, prompt: str, texts: list[str]) -> dict[str, Any]:
        p = count_tokens(prompt)
        c = sum(count_tokens(t) for t in texts)
        return {
            "promptTokenCount": p,
            "candidatesTokenCount": c,
            "totalTokenCount": p + c,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": p}],
        }

    def _response_id(self, body: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:22]

    def generate(self, req: Request) -> Response:
        body = self._validate(req)
        prompt, cands, _ = self._candidates(body)
        return Response(
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": t}], "role": "model"},
                        "finishReason": f,
                        "index": i,
                    }
                    for i, (t, f) in enumerate(cands)
                ],
                "usageMetadata": self._usage(prompt, [t for t, _ in cands]),
                "modelVersion": req.params["model"],
                "responseId": self._response_id(body),
            }
        )

    def stream(self, req: Request) -> StreamResponse:
        body = self._validate(req)
        prompt, cands, _ = self._candidates(body)
        text, finish = cands[0]
        pieces = split_pieces(text) or [""]
        rid = self._response_id(body)
        p = count_tokens(prompt)
        chunks = []
        for i, piece in enumerate(pieces):
            cand: dict[str, Any] = {
                "content": {"parts": [{"text": piece}], "role": "model"},
                "index": 0,
            }
            usage: dict[str, Any] = {"promptTokenCount": p, "totalTokenCount": p}
            if i == len(pieces) - 1:
                cand["finishReason"] = finish
                usage = self._usage(prompt, [text])
            chunks.append(
                {
                    "candidates": [cand],
                    "usageMetadata": usage,
                    "modelVersion": req.params["model"],
                    "responseId": rid,
                }
            )
        if req.q("alt") == "sse":
            events = [
                b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\r\n\r\n"
                for c in chunks
            ]
            return StreamResponse(events, malformed=b'data: {"candidates": [{"content":\r\n\r\n')
        # Without alt=sse the API streams one JSON array.
        events = [
            (b"[" if i == 0 else b",\r\n") + json.dumps(c).encode() for i, c in enumerate(chunks)
        ]
        events.append(b"]")
        return StreamResponse(
            events,
            content_type="application/json; charset=UTF-8",
            malformed=b',\r\n{"candidates": [',
        )

    def _embed_one(self, req: Request, item: dict[str, Any]) -> dict[str, Any]:
        content = item.get("content")
        if content is None:
            raise HTTPError(400, "* EmbedContentRequest.content: content is not specified")
        text = _parts_text(content)
        if not text:
            raise HTTPError(400, "* EmbedContentRequest.content: contents.parts must not be empty.")
        dim = (
            item.get("outputDimensionality")
            or item.get("output_dimensionality")
            or self.embedding_dim
        )
        return {"values": embedding(text, dim)}

    def embed(self, req: Request) -> Response:
        return Response({"embedding": self._embed_one(req, req.json_object())})

    def batch_embed(self, req: Request) -> Response:
        body = req.json_object()
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise HTTPError(400, "* BatchEmbedContentsRequest.requests: requests is not specified")
        want = f"models/{req.params['model']}"
        for i, r in enumerate(requests):
            if r.get("model") not in (None, want, req.params["model"]):
                raise HTTPError(
                    400, f"Model name mismatch at requests[{i}]: {r.get('model')} != {want}"
                )
        return Response({"embeddings": [self._embed_one(req, r) for r in requests]})

    def count(self, req: Request) -> Response:
        body = req.json_object()
        inner = body.get("generateContentRequest") or body
        n = count_tokens(gemini_prompt(inner))
        return Response(
            {"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}
        )
