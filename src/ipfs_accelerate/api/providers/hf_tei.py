"""Hugging Face Text Embeddings Inference: ``/embed`` and ``/rerank``.

* ``embed(texts, normalize=True)`` → ``POST /embed`` ``{"inputs": [...], "normalize": ...}``,
  answered by a bare JSON list of vectors. TEI refuses batches above its
  ``max_client_batch_size`` (413), so inputs are split into batches of ``batch_size`` (default
  32, or read from ``/info`` with :meth:`HFTEIProvider.configure_from_info`) and the vectors are
  joined back in input order; the async twin sends the batches concurrently (the core's queue
  bounds them). ``normalize`` is TEI's server-side L2 normalisation (its default is true).
* ``rerank(query, texts)`` → ``POST /rerank``: ``[{"index", "score", "text"?}]`` sorted by score,
  highest first, as TEI returns it.
* ``server_info`` (``GET /info``), ``health`` (``GET /health``).

TEI does not stream. ``base_url`` is the server root (``HF_TEI_BASE_URL``); a key
(``HF_TEI_API_KEY`` / ``HF_TOKEN``) is sent as Bearer when set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ipfs_accelerate.api import core
from ipfs_accelerate.api.providers import PROVIDERS

__all__ = ["HFTEIProvider", "RerankResult"]


@dataclass(frozen=True, slots=True)
class RerankResult:
    index: int
    score: float
    text: str | None = None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


def _vectors(r: httpx.Response) -> list[list[float]]:
    data = r.json()
    if not isinstance(data, list) or not all(isinstance(v, list) for v in data):
        raise ValueError("expected a JSON list of vectors")
    return [[float(x) for x in v] for v in data]


def _batches(texts: Sequence[str], size: int) -> list[list[str]]:
    return [list(texts[i : i + size]) for i in range(0, len(texts), size)]


class HFTEIProvider(core.Provider):
    """TEI's native routes; see the module docstring."""

    name = "hf_tei"
    info = PROVIDERS["hf_tei"]
    batch_size: int = 32

    def __init__(self, *, batch_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if batch_size is not None:
            if batch_size < 1:
                raise ValueError("batch_size must be >= 1")
            self.batch_size = batch_size

    def with_batch_size(self, batch_size: int) -> HFTEIProvider:
        """A view (shared queue, stats, connections) that splits inputs into this batch size."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        clone = self.with_options()
        clone.batch_size = batch_size
        return clone

    def _embed_call(self, batch: list[str], params: dict[str, Any]) -> core.Call[list[list[float]]]:
        body = {"inputs": batch, **params}
        return core.Call(self._options("POST", "/embed", json=body), parse=_vectors)

    def _embed(
        self,
        inputs: str | Sequence[str],
        *,
        normalize: bool | None = True,
        truncate: bool | None = None,
        **params: Any,
    ) -> core.Plan[core.EmbeddingResponse]:
        """One vector per input, in order; inputs go in batches of ``batch_size`` (one after
        another from ``embed``, concurrently from ``aembed``)."""
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        if not texts:
            raise ValueError("embed needs at least one input")
        extra = dict(params)
        if normalize is not None:
            extra["normalize"] = normalize
        if truncate is not None:
            extra["truncate"] = truncate
        parts = yield (self._embed_call(b, extra) for b in _batches(texts, self.batch_size))
        vectors = [v for part in parts for v in part]
        return core.EmbeddingResponse(model=self.model, embeddings=vectors, usage=None,
                                      raw={"batches": len(parts)})

    embed, aembed = core.verb_pair(_embed)

    def _rerank(self, query: str, texts: Sequence[str], return_text: bool, raw_scores: bool,
                params: dict[str, Any]) -> core.Call[list[RerankResult]]:
        body = {"query": query, "texts": list(texts), "return_text": return_text,
                "raw_scores": raw_scores, **params}

        def parse(r: httpx.Response) -> list[RerankResult]:
            data = r.json()
            if not isinstance(data, list):
                raise ValueError("expected a JSON list of ranks")
            return [RerankResult(int(d["index"]), float(d["score"]), d.get("text"), raw=d) for d in data]

        return core.Call(self._options("POST", "/rerank", json=body), parse=parse)

    def rerank(self, query: str, texts: Sequence[str], *, return_text: bool = False,
               raw_scores: bool = False, **params: Any) -> list[RerankResult]:
        """POST /rerank: results sorted by score, highest first (``index`` points into texts)."""
        return self._call(self._rerank(query, texts, return_text, raw_scores, params))

    async def arerank(self, query: str, texts: Sequence[str], *, return_text: bool = False,
                      raw_scores: bool = False, **params: Any) -> list[RerankResult]:
        return await self._acall(self._rerank(query, texts, return_text, raw_scores, params))

    def server_info(self) -> dict[str, Any]:
        """GET /info (``model_id``, ``max_client_batch_size``, ``max_input_length``...)."""
        return self._call(core.Call(self._options("GET", "/info"), parse=lambda r: dict(r.json())))

    async def aserver_info(self) -> dict[str, Any]:
        return await self._acall(core.Call(self._options("GET", "/info"), parse=lambda r: dict(r.json())))

    def configure_from_info(self) -> dict[str, Any]:
        """Adopt the server's ``max_client_batch_size`` as ``batch_size``; returns the info."""
        info = self.server_info()
        size = info.get("max_client_batch_size")
        if isinstance(size, int) and size > 0:
            self.batch_size = size
        return info

    def _health_probes(self) -> list[core.Call[bool]]:
        return [self._probe("/health")]
