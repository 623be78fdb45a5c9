"""Google Gemini API (Generative Language REST): generateContent, streamGenerateContent (SSE),
embedContent / batchEmbedContents, countTokens, models.

Auth is the ``x-goog-api-key`` header (never the ``?key=`` query parameter, which ends up in
logs). Retries follow google-genai: 5 attempts, 1 s initial delay doubling to 60 s; Retry-After
is honoured up to 60 s.

Messages may be given OpenAI-style (``assistant`` becomes ``model``; ``system`` messages become
``systemInstruction``) or as native ``contents``. Convenience generation options
(``temperature``, ``max_tokens``, ``top_p``, ``top_k``, ``stop``, ...) are mapped into
``generationConfig``; ``generation_config=`` passes a native one; other keyword arguments
(``tools``, ``safetySettings``, ...) go into the body unchanged.

A stream is complete when a candidate reports ``finishReason`` (or the prompt is blocked);
Gemini's ``usageMetadata`` is cumulative, so the last one seen is the stream's usage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from ipfs_accelerate.api import core
from ipfs_accelerate.api.providers import PROVIDERS

from .openai_api import Messages, normalize_messages

__all__ = ["GeminiChunkDecoder", "GeminiProvider", "parse_generate_content", "to_contents"]

_GEN_CONFIG_NAMES = {
    "temperature": "temperature",
    "max_tokens": "maxOutputTokens",
    "max_output_tokens": "maxOutputTokens",
    "top_p": "topP",
    "top_k": "topK",
    "stop": "stopSequences",
    "candidate_count": "candidateCount",
    "seed": "seed",
    "response_mime_type": "responseMimeType",
    "response_schema": "responseSchema",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, Sequence):
        out = []
        for p in content:
            if isinstance(p, str):
                out.append({"text": p})
            elif isinstance(p, Mapping) and p.get("type") == "text":  # OpenAI content part
                out.append({"text": p.get("text", "")})
            else:
                out.append(dict(p))
        return out
    raise TypeError(f"unsupported message content: {type(content).__name__}")


def to_contents(messages: Messages) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(systemInstruction, contents) from OpenAI-style messages or native contents."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    for m in normalize_messages(messages):
        if "parts" in m:  # already native
            contents.append(m)
            continue
        role = m.get("role", "user")
        if role == "system":
            system.extend(_parts(m.get("content", "")))
            continue
        contents.append(
            {
                "role": "model" if role == "assistant" else "user",
                "parts": _parts(m.get("content", "")),
            }
        )
    return ({"parts": system} if system else None), contents


def _usage(meta: Mapping[str, Any] | None) -> core.Usage | None:
    if not meta:
        return None
    out = int(meta.get("candidatesTokenCount") or 0) + int(meta.get("thoughtsTokenCount") or 0)
    return core.Usage(int(meta.get("promptTokenCount") or 0), out)


def _text(candidate: Mapping[str, Any]) -> str:
    parts = (candidate.get("content") or {}).get("parts") or []
    return "".join(p.get("text", "") for p in parts if not p.get("thought"))


def parse_generate_content(data: Mapping[str, Any]) -> core.ChatCompletion:
    candidates = data.get("candidates")
    if candidates is None:
        block = (data.get("promptFeedback") or {}).get("blockReason")
        if not block:
            raise KeyError("candidates")
        choices = [core.ChatChoice(0, core.ChatMessage("assistant", ""), f"BLOCKED_{block}")]
    else:
        choices = [
            core.ChatChoice(
                int(c.get("index", i)), core.ChatMessage("assistant", _text(c)), c.get("finishReason")
            )
            for i, c in enumerate(candidates)
        ]
    usage = _usage(data.get("usageMetadata"))
    return core.ChatCompletion.of(data, choices, usage, id="responseId", model="modelVersion")


class GeminiChunkDecoder(core.ChunkDecoder[core.ChatChunk]):
    framing = "sse"

    def decode(self, item: core.ServerSentEvent) -> Iterable[core.ChatChunk]:
        obj = item.json()
        if not isinstance(obj, dict):
            raise core.StreamError(f"stream event is not an object: {item.data[:200]!r}")
        if obj.get("error"):
            raise core.StreamError(f"server sent an error mid-stream: {core.default_error_message(obj)}")
        usage = _usage(obj.get("usageMetadata"))
        if usage is not None:
            self.usage = usage
        chunks = []
        block = (obj.get("promptFeedback") or {}).get("blockReason")
        if block:
            self.done = True
            chunks.append(core.ChatChunk(finish_reason=f"BLOCKED_{block}", usage=usage, raw=obj))
        for i, c in enumerate(obj.get("candidates") or []):
            finish = c.get("finishReason")
            if finish:
                self.done = True
            chunks.append(
                core.ChatChunk(
                    delta=_text(c),
                    index=int(c.get("index", i)),
                    role="assistant",
                    finish_reason=finish,
                    usage=usage if finish else None,
                    id=obj.get("responseId"),
                    model=obj.get("modelVersion"),
                    raw=obj,
                )
            )
        return chunks


def _model_id(model: str) -> str:
    return model.removeprefix("models/")


class GeminiProvider(core.ChatVerbs, core.EmbedVerbs, core.Provider):
    """Google's Generative Language API; ``api_version`` (default ``v1beta``) prefixes paths."""

    name = "gemini"
    info = PROVIDERS["gemini"]
    retry_policy = core.GOOGLE_RETRY
    request_id_headers = ("x-request-id", "x-goog-request-id")

    def __init__(self, *, api_version: str = "v1beta", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_version = api_version.strip("/")

    def auth_headers(self, key: core.Secret) -> dict[str, str]:
        return {"x-goog-api-key": key.reveal()}

    def error_class(self, status: int, body: Any) -> type[core.APIStatusError] | None:
        """Google answers a bad key with 400 INVALID_ARGUMENT whose ErrorInfo reason is
        ``API_KEY_INVALID``: that is an authentication failure (and rotates to the next key)."""
        err = body.get("error") if isinstance(body, dict) else None
        details = err.get("details") if isinstance(err, dict) else None
        if isinstance(details, list) and any(
            isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID" for d in details
        ):
            return core.AuthenticationError
        return None

    def _path(self, model: str, verb: str) -> tuple[str, str]:
        """(path, endpoint template) for ``models/{model}:{verb}``."""
        v = self.api_version
        return f"/{v}/models/{_model_id(model)}:{verb}", f"/{v}/models/{{model}}:{verb}"

    def _body(self, messages: Messages, params: dict[str, Any]) -> dict[str, Any]:
        system, contents = to_contents(messages)
        body: dict[str, Any] = {"contents": contents}
        if system is not None:
            body["systemInstruction"] = system
        gen = dict(params.pop("generation_config", None) or {})
        for name in list(params):
            if name in _GEN_CONFIG_NAMES:
                value = params.pop(name)
                if name == "stop" and isinstance(value, str):
                    value = [value]
                gen[_GEN_CONFIG_NAMES[name]] = value
        if gen:
            body["generationConfig"] = gen
        body.update(params)
        return body

    def _chat(
        self, messages: Messages, model: str | None, params: dict[str, Any], stream: bool
    ) -> core.Call[core.ChatCompletion] | core.StreamCall[core.ChatChunk]:
        """generateContent, or streamGenerateContent?alt=sse when streaming."""
        if stream:
            return self._generate_stream(messages, model, params)
        return self._generate(messages, model, params)

    def _generate(
        self, messages: Messages, model: str | None, params: dict[str, Any]
    ) -> core.Call[core.ChatCompletion]:
        path, endpoint = self._path(self._model(model), "generateContent")
        return core.Call(
            self._options("POST", path, json=self._body(messages, params), endpoint=endpoint),
            parse=lambda r: parse_generate_content(r.json()),
            usage=lambda c: c.usage,
        )

    def _generate_stream(
        self, messages: Messages, model: str | None, params: dict[str, Any]
    ) -> core.StreamCall[core.ChatChunk]:
        path, endpoint = self._path(self._model(model), "streamGenerateContent")
        return core.StreamCall(
            self._options(
                "POST",
                path,
                json=self._body(messages, params),
                params={"alt": "sse"},
                endpoint=endpoint,
                headers={"Accept": "text/event-stream"},
            ),
            GeminiChunkDecoder,
        )

    def _embed(
        self, input: str | list[str], model: str | None, params: dict[str, Any]
    ) -> core.Call[core.EmbeddingResponse]:
        model_id = _model_id(self._model(model))
        extra = {}
        if "task_type" in params:
            extra["taskType"] = params.pop("task_type")
        if "output_dimensionality" in params:
            extra["outputDimensionality"] = params.pop("output_dimensionality")
        extra.update(params)
        if isinstance(input, str):
            path, endpoint = self._path(model_id, "embedContent")
            body = {"content": {"parts": [{"text": input}]}, **extra}

            def parse(r: httpx.Response) -> core.EmbeddingResponse:
                data = r.json()
                return core.EmbeddingResponse(
                    model_id, [[float(x) for x in data["embedding"]["values"]]], None, raw=data
                )

        else:
            path, endpoint = self._path(model_id, "batchEmbedContents")
            body = {
                "requests": [
                    {"model": f"models/{model_id}", "content": {"parts": [{"text": t}]}, **extra}
                    for t in input
                ]
            }

            def parse(r: httpx.Response) -> core.EmbeddingResponse:
                data = r.json()
                vectors = [[float(x) for x in e["values"]] for e in data["embeddings"]]
                if len(vectors) != len(input):
                    raise ValueError(f"{len(vectors)} embeddings for {len(input)} inputs")
                return core.EmbeddingResponse(model_id, vectors, None, raw=data)

        return core.Call(self._options("POST", path, json=body, endpoint=endpoint), parse=parse)

    def _count(self, messages: Messages, model: str | None) -> core.Call[core.TokenCount]:
        path, endpoint = self._path(self._model(model), "countTokens")
        _, contents = to_contents(messages)
        return core.Call(
            self._options("POST", path, json={"contents": contents}, endpoint=endpoint),
            parse=lambda r: core.TokenCount(int(r.json().get("totalTokens") or 0), raw=r.json()),
        )

    def _models_page(self, token: str | None) -> core.Call[tuple[list[core.ModelInfo], str | None]]:
        def parse(r: httpx.Response) -> tuple[list[core.ModelInfo], str | None]:
            data = r.json()
            models = [
                core.ModelInfo(_model_id(m["name"]), "google", raw=m) for m in data.get("models", [])
            ]
            return models, data.get("nextPageToken") or None

        params = {"pageToken": token} if token else None
        return core.Call(
            self._options(
                "GET",
                f"/{self.api_version}/models",
                params=params,
                endpoint=f"/{self.api_version}/models",
            ),
            parse=parse,
        )

    # -- public API -------------------------------------------------------------------------------

    generate_content = core.ChatVerbs.chat
    agenerate_content = core.ChatVerbs.achat

    def count_tokens(self, messages: Messages, *, model: str | None = None) -> core.TokenCount:
        return self._call(self._count(messages, model))

    async def acount_tokens(self, messages: Messages, *, model: str | None = None) -> core.TokenCount:
        return await self._acall(self._count(messages, model))

    def models(self) -> list[core.ModelInfo]:
        """GET models, following nextPageToken."""
        out: list[core.ModelInfo] = []
        token: str | None = None
        for _ in range(100):
            page, token = self._call(self._models_page(token))
            out.extend(page)
            if not token:
                break
        return out

    async def amodels(self) -> list[core.ModelInfo]:
        out: list[core.ModelInfo] = []
        token: str | None = None
        for _ in range(100):
            page, token = await self._acall(self._models_page(token))
            out.extend(page)
            if not token:
                break
        return out
