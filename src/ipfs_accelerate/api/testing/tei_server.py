"""Hugging Face Text Embeddings Inference fake: ``/embed`` (batch, ``normalize``), ``/rerank``,
``POST /`` (what InferenceClient.feature_extraction posts), ``/v1/embeddings`` (OpenAI-shaped),
``/tokenize``, ``/info``, ``/health``.

Vectors are ``embedding(text, dim, normalize=...)``; rerank scores are `rerank_score`.
Batches above ``max_client_batch_size`` (32) are refused with 413, as TEI does.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ._content import embedding, rerank_score
from ._hf import FakeHFServer
from ._server import HTTPError, Request, Response
from .openai_server import openai_routes

ERROR_TYPES = {
    413: "Validation",
    422: "Validation",
    400: "Validation",
    424: "Backend",
    429: "Overloaded",
    503: "Unhealthy",
}


class FakeTEIServer(FakeHFServer):
    default_model_id = "fake-org/tiny-embed"
    family = "hf_tei"
    error_types = ERROR_TYPES
    error_type_fallback = ("Validation", "Backend")
    ROUTES = [
        *FakeHFServer.HF_ROUTES,
        ("POST", r"/embed", "embed"),
        ("POST", r"/rerank", "rerank"),
        *openai_routes("embeddings"),
    ]
    max_client_batch_size = 32

    def info(self, req: Request) -> Response:
        return Response(
            {
                "model_id": self.model_id,
                "model_sha": None,
                "model_dtype": "float32",
                "model_type": {"embedding": {"pooling": "mean"}},
                "max_concurrent_requests": 512,
                "max_input_length": 512,
                "max_batch_tokens": 16384,
                "max_batch_requests": None,
                "max_client_batch_size": self.max_client_batch_size,
                "auto_truncate": False,
                "tokenization_workers": 2,
                "version": "1.6.0",
                "sha": None,
                "docker_label": None,
            }
        )

    def _inputs(self, body: dict[str, Any], key: str = "inputs") -> list[str]:
        raw = body.get(key)
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise HTTPError(
                422,
                f"Failed to deserialize the JSON body into the target type: {key}: invalid type",
            )
        if not texts or any(t == "" for t in texts):
            raise HTTPError(422, "`inputs` cannot be empty")
        if len(texts) > self.max_client_batch_size:
            raise HTTPError(
                413,
                f"batch size {len(texts)} > maximum allowed batch size {self.max_client_batch_size}",
            )
        return texts

    def _vectors(self, body: dict[str, Any]) -> list[list[float]]:
        texts = self._inputs(body)
        normalize = body.get("normalize", True)
        dim = body.get("dimensions") or self.embedding_dim
        return [embedding(t, dim, normalize=bool(normalize)) for t in texts]

    def embed(self, req: Request) -> Response:
        body = req.json_object()
        vectors = self._vectors(body)
        tokens = sum(len(re.findall(r"\w+|[^\w\s]", t)) for t in self._inputs(body))
        return Response(
            vectors,
            headers={
                "x-prompt-tokens": str(tokens),
                "x-compute-characters": str(sum(len(t) for t in self._inputs(body))),
            },
        )

    def compat(self, req: Request) -> Response:
        return self.embed(req)

    def rerank(self, req: Request) -> Response:
        body = req.json_object()
        query = body.get("query")
        if not isinstance(query, str) or not query:
            raise HTTPError(422, "`query` cannot be empty")
        texts = self._inputs(body, "texts")
        raw = bool(body.get("raw_scores"))
        ranked = []
        for i, t in enumerate(texts):
            score = rerank_score(query, t)
            if raw:  # the logit before the sigmoid
                score = math.log(score / (1 - score)) if 0 < score < 1 else score
            entry: dict[str, Any] = {"index": i, "score": score}
            if body.get("return_text"):
                entry["text"] = t
            ranked.append(entry)
        ranked.sort(key=lambda e: (-e["score"], e["index"]))
        return Response(ranked)

    def tokenize(self, req: Request) -> Response:
        body = req.json_object()
        out = []
        for t in self._inputs(body):
            toks = []
            for m in re.finditer(r"\w+|[^\w\s]", t):
                toks.append(
                    {
                        "id": sum(m.group().encode()) % 30000,
                        "text": m.group(),
                        "special": False,
                        "start": m.start(),
                        "stop": m.end(),
                    }
                )
            out.append(toks)
        return Response(out)
