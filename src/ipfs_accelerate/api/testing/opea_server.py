"""OPEA (GenAIExamples/GenAIComps) fake: the ChatQnA megaservice and its microservices on one port.

Shapes follow ``GenAIExamples/ChatQnA/chatqna.py`` and ``GenAIComps/comps/cores/proto``:

* ``POST /v1/chatqna`` - ``ChatCompletionRequest`` whose ``messages`` is a string or a message
  list; ``stream`` defaults to **true**. Streaming sends ``data: b'<token>'`` lines (the Python
  ``repr`` of each UTF-8 chunk, first one ``b''``) and ``data: [DONE]``; otherwise a
  ``ChatCompletionResponse`` with ``model: "chatqna"`` and usage all zero (as upstream).
* ``POST /v1/chat/completions`` and ``/v1/embeddings`` - the LLM and embedding microservices
  (OpenAI-shaped; the official openai SDK drives them).
* ``POST /v1/retrieval`` - ``{"text", "embedding"}`` -> ``{"retrieved_docs", "initial_query",
  "top_n"}``, or ``RetrievalRequest {"input", "k"}`` -> ``{"retrieved_docs": [{"text", "metadata"}]}``.
* ``POST /v1/reranking`` - ``{"input", "retrieved_docs", "top_n"}`` -> ``{"reranked_docs": [{"text", "score"}]}``.
* ``GET /v1/health_check``.

Errors are FastAPI's: ``{"detail": "..."}`` (422 validation errors carry a list). The chatqna
answer is ``reply_text(question, max_tokens)`` where the question is ``messages`` (a string) or
the message texts joined by newlines; retrieval ranks ``documents`` by `rerank_score`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ._content import reply_words, rerank_score
from ._server import HTTPError, Request, Response, StreamResponse
from .openai_server import FakeOpenAIServer, content_text, openai_routes

DOCUMENTS = (
    "IPFS is a peer-to-peer network for storing and sharing data in a distributed file system.",
    "OpenVINO is a toolkit for optimizing and deploying deep learning inference.",
    "OPEA composes retrieval-augmented generation pipelines from microservices.",
    "Content addressing identifies data by a hash of its contents.",
)


def _missing(field: str, body: Any) -> HTTPError:
    err = HTTPError(422, "validation error")
    err.detail = [
        {"type": "missing", "loc": ["body", field], "msg": "Field required", "input": body}
    ]  # type: ignore[attr-defined]
    return err


class FakeOPEAServer(FakeOpenAIServer):
    family = "opea"
    ROUTES = [
        ("POST", r"/v1/chatqna", "chatqna"),
        ("POST", r"/v1/retrieval", "retrieval"),
        ("POST", r"/v1/reranking", "reranking"),
        ("GET", r"/v1/health_check", "health_check"),
        *openai_routes("chat", "embeddings", "list_models"),
    ]

    def __init__(self, *args: Any, documents: tuple[str, ...] = DOCUMENTS, **kw: Any) -> None:
        kw.setdefault("models", ("Intel/neural-chat-7b-v3-3", "BAAI/bge-base-en-v1.5"))
        super().__init__(*args, **kw)
        self.documents = documents

    def error_body(self, status: int, message: str, code: str | None = None) -> Any:
        return {"detail": message}

    def _route(self, req: Request) -> Response | StreamResponse:
        try:
            return super()._route(req)
        except HTTPError as exc:
            detail = getattr(exc, "detail", None)
            if detail is not None:
                return Response({"detail": detail}, exc.status)
            raise

    def wants_stream(self, req: Request) -> bool:
        if req.path != "/v1/chatqna":
            return super().wants_stream(req)
        try:
            body = json.loads(req.body) if req.body else {}
        except ValueError:
            return True
        return not isinstance(body, dict) or bool(body.get("stream", True))

    def health_check(self, req: Request) -> Response:
        return Response(
            {
                "Service Title": "ChatQnAService (ipfs-accelerate fake)",
                "Service Description": "OPEA Microservice Infrastructure",
            }
        )

    def _question(self, body: dict[str, Any]) -> str:
        messages = body.get("messages")
        if messages is None:
            raise _missing("messages", body)
        if isinstance(messages, str):
            return messages
        if not isinstance(messages, list):
            raise HTTPError(422, "messages must be a string or a list of messages")
        return "\n".join(content_text(m.get("content")) for m in messages if isinstance(m, dict))

    def chatqna(self, req: Request) -> Response | StreamResponse:
        body = req.json_object()
        question = self._question(body)
        max_tokens = body.get("max_tokens") or 1024
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise HTTPError(400, f"{max_tokens} is less than the minimum of 1 - 'max_tokens'")
        words, finish = reply_words(question, max_tokens, length=self.reply_tokens)
        if body.get("stream", True):
            pieces = [""] + [w if i == 0 else " " + w for i, w in enumerate(words)]
            events = [f"data: {piece.encode('utf-8')!r}\n\n".encode() for piece in pieces]
            events.append(b"data: [DONE]\n\n")
            return StreamResponse(events, malformed=b"data: b'\\xff\n\n")
        cid = (
            "chatcmpl-" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:22]
        )
        return Response(
            {
                "id": cid,
                "object": "chat.completion",
                "created": self.created,
                "model": "chatqna",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": " ".join(words)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 0, "total_tokens": 0, "completion_tokens": 0},
            }
        )

    def _rank(self, query: str, docs: list[str], k: int) -> list[tuple[str, float]]:
        scored = sorted(((d, rerank_score(query, d)) for d in docs), key=lambda x: -x[1])
        return scored[:k]

    def retrieval(self, req: Request) -> Response:
        body = req.json_object()
        if "text" in body:  # EmbedDoc from the ChatQnA flow -> SearchedDoc
            query = str(body["text"])
            k = int(body.get("k", 4))
            docs = self._rank(query, list(self.documents), k)
            return Response(
                {
                    "id": hashlib.sha256(query.encode()).hexdigest()[:32],
                    "retrieved_docs": [{"id": str(i), "text": d} for i, (d, _) in enumerate(docs)],
                    "initial_query": query,
                    "top_n": 1,
                }
            )
        query = body.get("input")
        if not isinstance(query, str):
            raise _missing("input", body)
        docs = self._rank(query, list(self.documents), int(body.get("k", 4)))
        return Response(
            {"retrieved_docs": [{"text": d, "metadata": {"score": s}} for d, s in docs]}
        )

    def reranking(self, req: Request) -> Response:
        body = req.json_object()
        query = body.get("input")
        if not isinstance(query, str):
            raise _missing("input", body)
        raw = body.get("retrieved_docs")
        if not isinstance(raw, list):
            raise _missing("retrieved_docs", body)
        docs = [d if isinstance(d, str) else str(d.get("text", "")) for d in raw]
        ranked = self._rank(query, docs, int(body.get("top_n", 1)))
        return Response({"reranked_docs": [{"text": d, "score": s} for d, s in ranked]})
