"""Hugging Face Text Generation Inference fake: ``/generate``, ``/generate_stream`` (SSE, no
[DONE]), ``POST /`` (the route InferenceClient uses: a JSON list, or SSE with ``stream``),
``/v1/chat/completions`` and ``/v1/completions`` (TGI's Messages API, OpenAI-shaped), ``/info``,
``/health`` and ``/tokenize`` (``[{id, text, start, stop}]``).

The "prompt" is ``inputs``; ``parameters.max_new_tokens`` (default 100, as TGI) limits the reply,
``finish_reason`` is ``eos_token``, ``length`` or ``stop_sequence``. Token ids are the reply
words' indexes in `WORDS`; logprobs are a deterministic function of position.
"""

from __future__ import annotations

import json
from typing import Any

from ._content import TOKEN_RE, WORDS, apply_stop, count_tokens, reply_words, split_pieces
from ._hf import FakeHFServer
from ._server import HTTPError, Request, Response, StreamResponse
from .openai_server import openai_routes

ERROR_TYPES = {
    400: "validation",
    413: "validation",
    422: "validation",
    424: "generation",
    429: "overloaded",
    503: "overloaded",
}


def _token(piece: str, position: int) -> dict[str, Any]:
    word = piece.strip()
    tid = WORDS.index(word) + 10 if word in WORDS else 3
    return {"id": tid, "text": piece, "logprob": round(-0.05 * (position + 1), 4), "special": False}


class FakeTGIServer(FakeHFServer):
    default_model_id = "fake-org/tiny-tgi"
    family = "hf_tgi"
    error_types = ERROR_TYPES
    error_type_fallback = ("generation", "overloaded")
    ROUTES = [
        *FakeHFServer.HF_ROUTES,
        ("POST", r"/generate", "generate"),
        ("POST", r"/generate_stream", "generate_stream"),
        *openai_routes("chat", "completions", "list_models"),
    ]

    def info(self, req: Request) -> Response:
        return Response(
            {
                "model_id": self.model_id,
                "model_sha": None,
                "model_pipeline_tag": "text-generation",
                "max_concurrent_requests": 128,
                "max_best_of": 2,
                "max_stop_sequences": 4,
                "max_input_tokens": 1024,
                "max_total_tokens": 2048,
                "validation_workers": 2,
                "max_client_batch_size": 4,
                "router": "text-generation-router",
                "version": "3.0.0",
                "sha": None,
                "docker_label": None,
            }
        )

    # -- native generate ---------------------------------------------------------------------
    def _run(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("inputs")
        if not isinstance(inputs, str):
            raise HTTPError(
                422,
                "Failed to deserialize the JSON body into the target type: missing field `inputs`",
            )
        if not inputs:
            raise HTTPError(422, "Input validation error: `inputs` cannot be empty")
        params = body.get("parameters") or {}
        max_new = params.get("max_new_tokens")
        max_new = 100 if max_new is None else max_new
        if not isinstance(max_new, int) or max_new < 1:
            raise HTTPError(
                422, "Input validation error: `max_new_tokens` must be strictly positive"
            )
        temp = params.get("temperature")
        if temp is not None and temp <= 0:
            raise HTTPError(422, "Input validation error: `temperature` must be strictly positive")
        stops = params.get("stop") or []
        if len(stops) > 4:
            raise HTTPError(
                422,
                f"Input validation error: `stop` supports up to 4 stop sequences. Given: {len(stops)}",
            )
        words, finish = reply_words(inputs, max_new, length=self.reply_tokens)
        finish = "length" if finish == "length" else "eos_token"
        text, hit = apply_stop(" ".join(words), stops)
        if hit is not None:
            text, finish = text + hit, "stop_sequence"  # TGI keeps the stop sequence in the text
        pieces = split_pieces(text)
        return {
            "inputs": inputs,
            "params": params,
            "text": text,
            "pieces": pieces,
            "finish": finish,
            "tokens": [_token(p, i) for i, p in enumerate(pieces)],
            "input_length": count_tokens(inputs),
        }

    def _full_text(self, run: dict[str, Any]) -> str:
        return (run["inputs"] if run["params"].get("return_full_text") else "") + run["text"]

    def _details(self, run: dict[str, Any]) -> dict[str, Any]:
        return {
            "finish_reason": run["finish"],
            "generated_tokens": len(run["tokens"]),
            "seed": run["params"].get("seed"),
            "prefill": [],
            "tokens": run["tokens"],
            "top_tokens": [],
            "best_of_sequences": None,
        }

    def _generated(self, run: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"generated_text": self._full_text(run)}
        if run["params"].get("details"):
            out["details"] = self._details(run)
        return out

    def _stream(self, run: dict[str, Any]) -> StreamResponse:
        events = []
        last = len(run["tokens"]) - 1
        for i, tok in enumerate(run["tokens"]):
            ev: dict[str, Any] = {
                "index": i + 1,
                "token": tok,
                "top_tokens": None,
                "generated_text": None,
                "details": None,
            }
            if i == last:
                ev["generated_text"] = self._full_text(run)
                ev["details"] = {
                    "finish_reason": run["finish"],
                    "generated_tokens": len(run["tokens"]),
                    "seed": run["params"].get("seed"),
                    "input_length": run["input_length"],
                }
            events.append(b"data:" + json.dumps(ev, separators=(",", ":")).encode() + b"\n\n")
        if not events:
            raise HTTPError(422, "Input validation error: nothing to generate")
        return StreamResponse(events, malformed=b'data:{"index":1,"token":\n\n')

    def tokenize(self, req: Request) -> Response:
        """TGI's ``POST /tokenize``: ``[{id, text, start, stop}]`` with character offsets into
        ``inputs``; the same word/punctuation tokens ``count_tokens`` counts."""
        inputs = req.json_object().get("inputs")
        if not isinstance(inputs, str):
            raise HTTPError(
                422,
                "Failed to deserialize the JSON body into the target type: missing field `inputs`",
            )
        out = []
        for m in TOKEN_RE.finditer(inputs):
            word = m.group()
            tid = WORDS.index(word) + 10 if word in WORDS else 3
            out.append({"id": tid, "text": word, "start": m.start(), "stop": m.end()})
        return Response(out)

    def generate(self, req: Request) -> Response:
        headers = {}
        run = self._run(req.json_object())
        headers = {
            "x-generated-tokens": str(len(run["tokens"])),
            "x-prompt-tokens": str(run["input_length"]),
        }
        return Response(self._generated(run), headers=headers)

    def generate_stream(self, req: Request) -> StreamResponse:
        return self._stream(self._run(req.json_object()))

    def compat(self, req: Request) -> Response | StreamResponse:
        body = req.json_object()
        run = self._run(body)
        if body.get("stream"):
            return self._stream(run)
        return Response([self._generated(run)])
