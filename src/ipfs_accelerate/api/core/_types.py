"""Typed results shared by the providers: chat, completion, embeddings, stream chunks, usage.

Plain dataclasses (cheap to build, easy to compare in tests). Every result keeps ``raw``, the
provider's decoded JSON, so nothing the server sent is lost by the mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

__all__ = [
    "ChatChoice",
    "ChatChunk",
    "ChatCompletion",
    "ChatMessage",
    "Completion",
    "CompletionChoice",
    "EmbeddingResponse",
    "ModelInfo",
    "TokenCount",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str
    tool_calls: list[dict[str, Any]] | None = None

    @classmethod
    def of(cls, msg: Mapping[str, Any]) -> ChatMessage:
        """From the ``{role, content, tool_calls}`` object OpenAI-style APIs (OpenAI, Ollama)
        send: a missing role is the assistant's, missing content is empty."""
        return cls(
            msg.get("role") or "assistant", msg.get("content") or "", msg.get("tool_calls") or None
        )


@dataclass(frozen=True, slots=True)
class ChatChoice:
    index: int
    message: ChatMessage
    finish_reason: str | None


@dataclass(frozen=True, slots=True)
class CompletionChoice:
    index: int
    text: str
    finish_reason: str | None


C = TypeVar("C", ChatChoice, CompletionChoice)


@dataclass(frozen=True, slots=True)
class _Choices(Generic[C]):
    """What a chat and a text completion share: ids, choices, usage and the body as ``raw``."""

    id: str | None
    model: str | None
    choices: list[C]
    usage: Usage | None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def of(
        cls,
        data: Mapping[str, Any],
        choices: list[C],
        usage: Usage | None,
        *,
        id: str | None = "id",  # noqa: A002 - the field it fills
        model: str | None = "model",
    ) -> Self:
        """From a response body: its ``id`` and ``model`` fields as the protocol names them
        (None: it sends none), and the whole body kept as ``raw``."""
        return cls(
            data.get(id) if id else None,
            data.get(model) if model else None,
            choices,
            usage,
            dict(data),
        )

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None


@dataclass(frozen=True, slots=True)
class ChatCompletion(_Choices[ChatChoice]):
    @property
    def text(self) -> str:
        """The first choice's content ('' when there is none)."""
        return self.choices[0].message.content if self.choices else ""


@dataclass(frozen=True, slots=True)
class Completion(_Choices[CompletionChoice]):
    @property
    def text(self) -> str:
        return self.choices[0].text if self.choices else ""


@dataclass(frozen=True, slots=True)
class EmbeddingResponse:
    model: str | None
    embeddings: list[list[float]]
    usage: Usage | None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def dimensions(self) -> int:
        return len(self.embeddings[0]) if self.embeddings else 0


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One streamed piece: a text delta for choice ``index`` and/or final metadata.

    ``usage`` is set on the chunk(s) that report usage; the stream's reconciled total is
    ``Stream.usage`` once the stream has ended.
    """

    delta: str = ""
    index: int = 0
    role: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    id: str | None = None
    model: str | None = None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    owned_by: str | None = None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class TokenCount:
    input_tokens: int
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
