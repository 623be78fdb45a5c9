"""``llvm``: a local llama.cpp-family inference server, spoken to over its OpenAI-compatible API.

What this backend is for (decided here, because the original project only listed the name):
running GGUF models on the local machine through llama.cpp — either the C++ ``llama-server``
or the Python ``llama-cpp-python[server]`` — both of which serve the OpenAI protocol under
``/v1``. So the chat/completions/embeddings/models/streaming mapping is :class:`OpenAIProvider`'s,
and this class adds the llama.cpp extras, each working against both servers:

* :meth:`health` — ``GET /health`` on llama-server (503 while the model loads); llama-cpp-python
  has no such route, so a 404 falls back to ``GET /v1/models``;
* :meth:`tokenize` / :meth:`detokenize` — llama-server's ``/tokenize`` ``{"content"}`` and
  ``/detokenize``; on 404, llama-cpp-python's ``/extras/tokenize`` ``{"input"}`` and
  ``/extras/detokenize``.

No key is needed unless the server was started with ``--api-key`` (then ``LLVM_API_KEY``).
The default base URL is llama-server's default, ``http://127.0.0.1:8080/v1``.
"""

from __future__ import annotations

from ipfs_accelerate.api import core
from ipfs_accelerate.api.providers import PROVIDERS

from .openai_api import OpenAIProvider

__all__ = ["LLVMProvider"]


class LLVMProvider(OpenAIProvider):
    name = "llvm"
    info = PROVIDERS["llvm"]

    def _health_probes(self) -> list[core.Call[bool]]:
        """The server's ``/health``; where it has none (404), whether ``/models`` answers."""
        return [self._probe(self._root("/health"), "/health"), self._probe("/models")]

    def _tokenize_calls(
        self, text: str, model: str | None
    ) -> tuple[core.Call[list[int]], core.Call[list[int]]]:
        def parse(r: object) -> list[int]:
            return [int(t) for t in r.json()["tokens"]]  # type: ignore[attr-defined]

        server = core.Call(
            self._options(
                "POST", self._root("/tokenize"), json={"content": text}, endpoint="/tokenize"
            ),
            parse=parse,
        )
        body: dict[str, object] = {"input": text}
        if model or self.model:
            body["model"] = self._model(model)
        extras = core.Call(
            self._options(
                "POST", self._root("/extras/tokenize"), json=body, endpoint="/extras/tokenize"
            ),
            parse=parse,
        )
        return server, extras

    def tokenize(self, text: str, *, model: str | None = None) -> list[int]:
        """Token ids of ``text`` under the served model."""
        server, extras = self._tokenize_calls(text, model)
        try:
            return self._call(server)
        except core.NotFoundError:
            return self._call(extras)

    async def atokenize(self, text: str, *, model: str | None = None) -> list[int]:
        server, extras = self._tokenize_calls(text, model)
        try:
            return await self._acall(server)
        except core.NotFoundError:
            return await self._acall(extras)

    def _detokenize_calls(
        self, tokens: list[int], model: str | None
    ) -> tuple[core.Call[str], core.Call[str]]:
        server = core.Call(
            self._options(
                "POST",
                self._root("/detokenize"),
                json={"tokens": list(tokens)},
                endpoint="/detokenize",
            ),
            parse=lambda r: str(r.json()["content"]),
        )
        body: dict[str, object] = {"tokens": list(tokens)}
        if model or self.model:
            body["model"] = self._model(model)
        extras = core.Call(
            self._options(
                "POST", self._root("/extras/detokenize"), json=body, endpoint="/extras/detokenize"
            ),
            parse=lambda r: str(r.json()["text"]),
        )
        return server, extras

    def detokenize(self, tokens: list[int], *, model: str | None = None) -> str:
        server, extras = self._detokenize_calls(tokens, model)
        try:
            return self._call(server)
        except core.NotFoundError:
            return self._call(extras)

    async def adetokenize(self, tokens: list[int], *, model: str | None = None) -> str:
        server, extras = self._detokenize_calls(tokens, model)
        try:
            return await self._acall(server)
        except core.NotFoundError:
            return await self._acall(extras)
