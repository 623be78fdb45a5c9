"""Ollama fake: ``/api/chat``, ``/api/generate`` (NDJSON streaming, on by default as upstream),
``/api/embed``, the legacy ``/api/embeddings``, ``/api/tags``, ``/api/show``, ``/api/ps``,
``/api/version`` and ``GET /`` ("Ollama is running").

The "prompt" is the messages' texts joined by newlines for chat, and ``prompt`` for generate;
``options.num_predict`` is max tokens and ``options.stop`` the stop sequences. Durations are
deterministic (1 ms per token) so whole responses compare exactly.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from ._content import apply_stop, count_tokens, embedding, reply_text, split_pieces
from ._server import FakeServer, HTTPError, Request, Response, StreamResponse

NDJSON = "application/x-ndjson"
MODELS = ("llama3.2:latest", "nomic-embed-text:latest")


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class FakeOllamaServer(FakeServer):
    family = "ollama"
    stream_default = True
    request_id_header = "x-request-id"
    ROUTES = [
        ("GET", r"/", "root"),
        ("POST", r"/api/chat", "chat"),
        ("POST", r"/api/generate", "generate"),
        ("POST", r"/api/embed", "embed"),
        ("POST", r"/api/embeddings", "embeddings_legacy"),
        ("GET", r"/api/tags", "tags"),
        ("POST", r"/api/show", "show"),
        ("GET", r"/api/ps", "ps"),
        ("GET", r"/api/version", "version"),
    ]

    def __init__(self, *args: Any, models: tuple[str, ...] = MODELS, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.models = models

    def error_body(self, status: int, message: str, code: str | None = None) -> Any:
        return {"error": message}

    def stream_error_event(self, status: int, message: str) -> bytes:
        return _line({"error": message})

    def not_found(self, req: Request) -> HTTPError:
        return HTTPError(404, "404 page not found")

    @property
    def created_at(self) -> str:
        return datetime.fromtimestamp(self.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")

    # -- info routes -------------------------------------------------------------------------
    def root(self, req: Request) -> Response:
        return Response("Ollama is running", content_type="text/plain; charset=utf-8")

    def version(self, req: Request) -> Response:
        return Response({"version": "0.6.0"})

    def _details(self, name: str) -> dict[str, Any]:
        family = "nomic-bert" if "embed" in name else "llama"
        return {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": "1B",
            "quantization_level": "Q4_K_M",
        }

    def _model_entry(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "model": name,
            "modified_at": self.created_at,
            "size": 1_000_000 + len(name),
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": self._details(name),
        }

    def tags(self, req: Request) -> Response:
        return Response({"models": [self._model_entry(m) for m in self.models]})

    def ps(self, req: Request) -> Response:
        return Response({"models": []})

    def show(self, req: Request) -> Response:
        body = req.json_object()
        name = self._model_name(body)
        return Response(
            {
                "modelfile": f"FROM {name}\n",
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": self._details(name),
                "model_info": {"general.architecture": self._details(name)["family"]},
                "capabilities": ["embedding"] if "embed" in name else ["completion"],
                "modified_at": self.created_at,
            }
        )

    def _model_name(self, body: dict[str, Any]) -> str:
        name = body.get("model") or body.get("name")
        if not isinstance(name, str) or not name:
            raise HTTPError(400, "model is required")
        return name

    # -- generation --------------------------------------------------------------------------
    def _timings(self, prompt_tokens: int, eval_tokens: int) -> dict[str, int]:
        prompt_ns, eval_ns = prompt_tokens * 1_000_000, eval_tokens * 1_000_000
        return {
            "total_duration": 5_000_000 + prompt_ns + eval_ns,
            "load_duration": 5_000_000,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": prompt_ns,
            "eval_count": eval_tokens,
            "eval_duration": eval_ns,
        }

    def _reply(self, prompt: str, body: dict[str, Any]) -> tuple[str, str]:
        options = body.get("options") or {}
        num_predict = options.get("num_predict")
        limit = num_predict if isinstance(num_predict, int) and num_predict >= 0 else None
        text = reply_text(prompt, limit, length=self.reply_tokens)
        done_reason = "length" if limit is not None and limit < self.reply_tokens else "stop"
        stops = options.get("stop")
        text, hit = apply_stop(text, [stops] if isinstance(stops, str) else stops)
        if hit is not None:
            done_reason = "stop"
        if body.get("format"):
            text = json.dumps({"reply": text})
        return text, done_reason

    def _respond(
        self, body: dict[str, Any], prompt: str, key: str, wrap: Any
    ) -> Response | StreamResponse:
        model = self._model_name(body)
        text, done_reason = self._reply(prompt, body)
        timings = self._timings(count_tokens(prompt), count_tokens(text))
        base = {"model": model, "created_at": self.created_at}
        if body.get("stream", True) is False:
            return Response(
                {**base, key: wrap(text), "done_reason": done_reason, "done": True, **timings}
            )
        lines = [_line({**base, key: wrap(piece), "done": False}) for piece in split_pieces(text)]
        lines.append(
            _line({**base, key: wrap(""), "done_reason": done_reason, "done": True, **timings})
        )
        return StreamResponse(lines, content_type=NDJSON, malformed=b'{"model":"x","message":\n')

    def chat(self, req: Request) -> Response | StreamResponse:
        body = req.json_object()
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            raise HTTPError(400, "json: cannot unmarshal messages")
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in (
                "system",
                "user",
                "assistant",
                "tool",
            ):
                raise HTTPError(400, f"invalid role: {m.get('role') if isinstance(m, dict) else m}")
        prompt = "\n".join(str(m.get("content") or "") for m in messages)
        return self._respond(body, prompt, "message", lambda t: {"role": "assistant", "content": t})

    def generate(self, req: Request) -> Response | StreamResponse:
        body = req.json_object()
        prompt = body.get("prompt") or ""
        if not isinstance(prompt, str):
            raise HTTPError(400, "json: cannot unmarshal prompt")
        return self._respond(body, prompt, "response", lambda t: t)

    def embed(self, req: Request) -> Response:
        body = req.json_object()
        model = self._model_name(body)
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise HTTPError(400, "invalid input type")
        dim = body.get("dimensions") or self.embedding_dim
        tokens = sum(count_tokens(t) for t in texts)
        return Response(
            {
                "model": model,
                "embeddings": [embedding(t, dim) for t in texts],
                "total_duration": 1_000_000 + tokens * 100_000,
                "load_duration": 1_000_000,
                "prompt_eval_count": tokens,
            }
        )

    def embeddings_legacy(self, req: Request) -> Response:
        body = req.json_object()
        self._model_name(body)
        prompt = body.get("prompt") or ""
        # The legacy endpoint returns unnormalised vectors.
        return Response(
            {
                "embedding": embedding(str(prompt), self.embedding_dim, normalize=False)
                if prompt
                else []
            }
        )
