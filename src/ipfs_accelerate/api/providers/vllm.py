"""vLLM's OpenAI-compatible server (``vllm serve``): the OpenAI protocol plus its own extras.

No key is needed unless the server was started with ``--api-key`` (then ``VLLM_API_KEY``).
``base_url`` includes ``/v1``; the extras live at the server root: ``GET /health`` (200 when the
engine is up), ``GET /version``, ``POST /tokenize`` and ``POST /detokenize``.
"""

from __future__ import annotations

from typing import Any

from ipfs_accelerate.api import core
from ipfs_accelerate.api.providers import PROVIDERS

from .openai_api import OpenAIProvider, server_root

__all__ = ["VLLMProvider", "server_root"]


class VLLMProvider(OpenAIProvider):
    name = "vllm"
    info = PROVIDERS["vllm"]

    def _health_probes(self) -> list[core.Call[bool]]:
        return [self._probe(self._root("/health"), "/health")]

    def _tokenize(self, text: str, model: str | None, params: dict[str, Any]) -> core.Call[list[int]]:
        body = {"model": self._model(model), "prompt": text, **params}
        return core.Call(
            self._options("POST", self._root("/tokenize"), json=body, endpoint="/tokenize"),
            parse=lambda r: [int(t) for t in r.json()["tokens"]],
        )

    def tokenize(self, text: str, *, model: str | None = None, **params: Any) -> list[int]:
        """POST /tokenize → token ids."""
        return self._call(self._tokenize(text, model, params))

    async def atokenize(self, text: str, *, model: str | None = None, **params: Any) -> list[int]:
        return await self._acall(self._tokenize(text, model, params))

    def _detokenize(self, tokens: list[int], model: str | None) -> core.Call[str]:
        body = {"model": self._model(model), "tokens": list(tokens)}
        return core.Call(
            self._options("POST", self._root("/detokenize"), json=body, endpoint="/detokenize"),
            parse=lambda r: str(r.json()["prompt"]),
        )

    def detokenize(self, tokens: list[int], *, model: str | None = None) -> str:
        return self._call(self._detokenize(tokens, model))

    async def adetokenize(self, tokens: list[int], *, model: str | None = None) -> str:
        return await self._acall(self._detokenize(tokens, model))

    def version(self) -> str:
        """GET /version → the server's vLLM version."""
        return self._call(
            core.Call(
                self._options("GET", self._root("/version"), endpoint="/version"),
                parse=lambda r: str(r.json()["version"]),
            )
        )
