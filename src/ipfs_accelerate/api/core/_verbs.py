"""The verbs most providers share, written once: chat (sync, async, streaming), embed, models.

A provider that has the verb inherits it and only builds the request: ``_chat(messages, model,
params, stream)`` returns a :class:`Call` (``stream=False``) or a :class:`StreamCall`;
``_embed(input, model, params)`` and ``_models()`` return a :class:`Call`. Keyword arguments
beyond ``model`` go to the provider's request body (each provider's docstring says how).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ._provider import Call, Provider, StreamCall
from ._streaming import AsyncStream, Stream
from ._types import ChatChunk, ChatCompletion, EmbeddingResponse, ModelInfo

__all__ = ["ChatVerbs", "EmbedVerbs", "Messages", "ModelsVerbs", "Plan", "arun_plan", "run_plan", "verb_pair"]

T = TypeVar("T")
#: one description of a request: a generator that yields a step (or a list / iterator of steps,
#: which the async driver runs concurrently), receives its result, and returns the verb's value
Plan = Generator[Any, Any, T]


def _many(step: Any) -> bool:
    return isinstance(step, list | Iterator)


class _Cursor:
    """A plan's send/throw protocol, once for both drivers: ``step`` until ``done``, then
    ``value``. An error the plan does not handle propagates from ``send`` / ``throw``."""

    def __init__(self, plan: Plan[Any]) -> None:
        self._plan = plan
        self.done = False
        self.value: Any = None
        self.step: Any = None
        self.send(None)

    def send(self, result: Any) -> None:
        self._resume(self._plan.send, result)

    def throw(self, error: BaseException) -> None:
        self._resume(self._plan.throw, error)

    def _resume(self, how: Callable[[Any], Any], arg: Any) -> None:
        try:
            self.step = how(arg)
        except StopIteration as stop:
            self.done, self.value = True, stop.value


def run_plan(plan: Plan[T], one: Callable[[Any], Any]) -> T:
    """Drive ``plan`` synchronously: steps of a batch run one after another, lazily. A failed
    step is thrown into the plan, so its ``except`` (e.g. abort an upload) runs, as in the twin."""
    cursor = _Cursor(plan)
    while not cursor.done:
        step = cursor.step
        try:
            result = [one(s) for s in step] if _many(step) else one(step)
        except BaseException as exc:  # noqa: BLE001 — handed to the plan, which re-raises
            cursor.throw(exc)
        else:
            cursor.send(result)
    return cursor.value


async def arun_plan(plan: Plan[T], one: Callable[[Any], Awaitable[Any]]) -> T:
    """Drive ``plan`` on the event loop: the steps of a batch run concurrently (gather)."""
    cursor = _Cursor(plan)
    while not cursor.done:
        step = cursor.step
        try:
            result = list(await asyncio.gather(*map(one, step))) if _many(step) else await one(step)
        except BaseException as exc:  # noqa: BLE001 — handed to the plan, which re-raises
            cursor.throw(exc)
        else:
            cursor.send(result)
    return cursor.value


def verb_pair(
    plan: Callable[..., Plan[T]], one: str = "_call", aone: str = "_acall"
) -> tuple[Callable[..., T], Callable[..., Awaitable[T]]]:
    """A sync verb and its async twin from one plan: the signature and the request are written
    once; ``one`` / ``aone`` name the methods that run a step (``Provider._call`` / ``_acall``
    for a :class:`Call`)."""

    @functools.wraps(plan)
    def sync(self: Any, *args: Any, **kwargs: Any) -> T:
        return run_plan(plan(self, *args, **kwargs), getattr(self, one))

    @functools.wraps(plan)
    async def asynchronous(self: Any, *args: Any, **kwargs: Any) -> T:
        return await arun_plan(plan(self, *args, **kwargs), getattr(self, aone))

    return sync, asynchronous

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
