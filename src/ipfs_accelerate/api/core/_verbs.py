"""The verbs most providers share, written once: chat (sync, async, streaming), embed, models.

A provider that has the verb inherits it and only builds the request: ``_chat(messages, model,
params, stream)`` returns a :class:`Call` (``stream=False``) or a :class:`StreamCall`;
``_embed(input, model, params)`` and ``_models()`` return a :class:`Call`. Keyword arguments
beyond ``model`` go to the provider's request body (each provider's docstring says how).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._provider import Call, Provider, StreamCall
from ._streaming import AsyncStream, Stream
from ._types import ChatChunk, ChatCompletion, EmbeddingResponse, ModelInfo

__all__ = ["ChatVerbs", "EmbedVerbs", "Messages", "ModelsVerbs"]

#: a prompt, or OpenAI-style ``{"role", "content"}`` messages (each provider maps them)
Messages = str | Sequence[Mapping[str, Any]]


class ChatVerbs(Provider):
    """``chat`` / ``achat`` / ``chat_stream`` / ``achat_stream`` over the provider's ``_chat``."""

    def _chat(
        self, messages: Messages, model: str | None, params: dict[str, Any], stream: bool
    ) -> Call[ChatCompletion] | StreamCall[ChatChunk]:
        raise NotImplementedError

    def chat(self, messages: Messages, *, model: str | None = None, **params: Any) -> ChatCompletion:
        """One chat completion."""
        return self._call(self._chat(messages, model, params, False))  # type: ignore[arg-type]

    async def achat(self, messages: Messages, *, model: str | None = None, **params: Any) -> ChatCompletion:
        return await self._acall(self._chat(messages, model, params, False))  # type: ignore[arg-type]

    def chat_stream(self, messages: Messages, *, model: str | None = None, **params: Any) -> Stream[ChatChunk]:
        """A streamed chat completion: iterate it; ``stream.usage`` once it has ended."""
        return self._stream(self._chat(messages, model, params, True))  # type: ignore[arg-type]

    async def achat_stream(
        self, messages: Messages, *, model: str | None = None, **params: Any
    ) -> AsyncStream[ChatChunk]:
        return await self._astream(self._chat(messages, model, params, True))  # type: ignore[arg-type]


class EmbedVerbs(Provider):
    """``embed`` / ``aembed`` over the provider's ``_embed``: one vector per input, in order."""

    def _embed(self, input: str | list[str], model: str | None, params: dict[str, Any]) -> Call[EmbeddingResponse]:  # noqa: A002
        raise NotImplementedError

    def embed(self, input: str | list[str], *, model: str | None = None, **params: Any) -> EmbeddingResponse:  # noqa: A002
        """Embeddings for one string or a list (one vector per input, in input order)."""
        return self._call(self._embed(input, model, params))

    async def aembed(self, input: str | list[str], *, model: str | None = None, **params: Any) -> EmbeddingResponse:  # noqa: A002
        return await self._acall(self._embed(input, model, params))


class ModelsVerbs(Provider):
    """``models`` / ``amodels`` over the provider's ``_models``."""

    def _models(self) -> Call[list[ModelInfo]]:
        raise NotImplementedError

    def models(self) -> list[ModelInfo]:
        """The models the server lists."""
        return self._call(self._models())

    async def amodels(self) -> list[ModelInfo]:
        return await self._acall(self._models())
