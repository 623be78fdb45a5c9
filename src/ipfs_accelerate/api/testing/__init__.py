"""Local protocol servers that speak each inference API faithfully and misbehave on request.

They are the test bed for every API provider: real HTTP on 127.0.0.1, no mocks. The official SDKs
(openai, anthropic, groq, ollama, google-genai, huggingface_hub, tritonclient) are driven against
them in ``tests/api/servers`` — if an official client cannot parse one of these servers, the
server is wrong.

Start one (free port, background thread, ready in milliseconds)::

    from ipfs_accelerate.api.testing import FakeOpenAIServer, Fault

    with FakeOpenAIServer() as srv:                      # binds 127.0.0.1:0
        srv.url                                          # "http://127.0.0.1:41234"
        srv.base_url                                     # what the SDK takes (".../v1")
        srv.inject(Fault.rate_limit(retry_after="1.5"), times=2, path="/v1/chat/completions")
        srv.inject("503", path="/v1/embeddings")         # the same, as a spec string
        ...                                              # drive a client
        assert srv.max_in_flight <= 32                   # measured server-side
        assert max(srv.delivered_by_key().values()) == 1 # no duplicate delivered
        srv.requests[-1].headers["x-stainless-retry-count"]  # all the server saw

Servers: `FakeOpenAIServer` (OpenAI; Groq under ``/openai/v1``; vLLM; llama.cpp),
`FakeAnthropicServer`, `FakeOllamaServer`, `FakeTGIServer`, `FakeTEIServer`, `FakeGeminiServer`,
`FakeKServeServer` (OVMS), `FakeOPEAServer`;
`SERVERS` maps family names to classes and `start_server(family, **kw)` starts one. Constructor
options shared by all: ``api_key`` (enforce auth: 401 with the provider's error body when
wrong), ``latency`` (seconds before every answer, so concurrency overlaps), ``gate`` (a
`threading.Event`: every answer waits until it is set, at most ``max_hang``, so a test can hold
N requests in flight at once whatever the machine's load, then release them), ``event_delay``
(seconds between streamed events), ``max_hang`` (cap on every injected wait, default 30 s),
``embedding_dim`` (16), ``reply_tokens`` (12).

Deterministic content: a reply is `reply_text(prompt, max_tokens)` (12 words picked by SHA-256
of the prompt, fewer with ``finish_reason="length"`` when ``max_tokens`` is smaller); streamed
deltas concatenate to exactly that text; embeddings are `embedding(text, dim)` (unit-norm,
float32-exact); token counts use `count_tokens` on the input, so usage is checkable. Each family
module documents what its "prompt" is (e.g. the OpenAI messages' texts joined by newlines,
`messages_text`).

Fault injection. A queued rule is consumed by the next ``times`` requests matching ``path`` (exact,
prefix ending at ``/``, or glob such as ``*:generateContent``) and ``method``; ``times=None``
keeps it until `clear_faults()`. The same fault as text (``KIND[;key=value]...``) works
everywhere: `inject("429;retry-after=2")`, the request header ``x-fake-fault: 429;retry-after=2;times=1``
(``times`` counts per header value and idempotency key, so a retried request then succeeds),
``POST /__fake__/faults {"fault": "...", "times": 1, "path": "..."}`` and
``ipfs-accelerate fake-server openai --fault 503 --fault reset``. Kinds:

==================  ==============================================================================
``429``, ``503``…   error status with the provider's error body; options ``retry-after=`` (sent
                    verbatim: ``1``, ``1.5``, an HTTP date, ``soon``…), ``retry-after-ms=``,
                    ``x-should-retry=true|false``, ``message=``, ``header.NAME=value``; 529 on the
                    Anthropic server gives its ``overloaded_error`` body
``reset``           TCP RST before any byte (``Fault.reset()``)
``disconnect``      FIN before any byte
``hang``            no answer for ``seconds`` (capped by ``max_hang``), then disconnect; ends early
                    when the client hangs up, so a timed-out client does not inflate concurrency
``slow``            first byte after ``seconds``, then a normal answer
``truncate``        stream ends cleanly after ``after`` events, without [DONE]/message_stop/done;
                    a JSON body is cut in half (Content-Length not met)
``cut``             socket closed in the middle of event ``after``
``stall``           ``after`` events, silence for ``seconds``, then close
``malformed-sse``   event ``after`` is invalid JSON; for a JSON body, same as malformed-json
``malformed-json``  200, ``application/json``, body not JSON
``html``            ``status`` (502) with an nginx-style text/html page
``stream-error``    ``after`` events then the provider's in-stream error event (Anthropic
                    ``event: error``, OpenAI ``data: {"error": …}``, Ollama ``{"error": …}``)
==================  ==============================================================================

Server-side record: `requests` (`RecordedRequest`: method, path, query, headers, body, status,
fault, delivered, idempotency_key; ``repr`` redacts Authorization/x-api-key/x-goog-api-key, the raw
value is at ``.auth``), `max_in_flight`, `attempts_by_key()`, `delivered_by_key()`, `stats()`,
`reset()`. Out of process, ``GET /__fake__/stats`` and ``GET /__fake__/requests`` give the same
(secrets redacted).
"""

from __future__ import annotations

from typing import Any

from ._content import (
    apply_stop,
    count_tokens,
    embedding,
    embedding_base64,
    reply_pieces,
    reply_text,
    reply_words,
    rerank_score,
    split_pieces,
)
from ._faults import KINDS, Fault
from ._server import (
    FakeServer,
    Headers,
    HTTPError,
    RecordedRequest,
    Request,
    Response,
    StreamResponse,
)
from .anthropic_server import FakeAnthropicServer, anthropic_prompt
from .gemini_server import FakeGeminiServer, gemini_prompt
from .kserve_server import FakeKServeServer, KServeModel, TensorSpec, default_models
from .ollama_server import FakeOllamaServer
from .opea_server import FakeOPEAServer
from .openai_server import FakeOpenAIServer, messages_text
from .tei_server import FakeTEIServer
from .tgi_server import FakeTGIServer

SERVERS: dict[str, type[FakeServer]] = {
    "openai": FakeOpenAIServer,
    "anthropic": FakeAnthropicServer,
    "ollama": FakeOllamaServer,
    "hf_tgi": FakeTGIServer,
    "hf_tei": FakeTEIServer,
    "gemini": FakeGeminiServer,
    "kserve": FakeKServeServer,
    "opea": FakeOPEAServer,
}
# Provider names that share a protocol family.
ALIASES = {
    "groq": "openai",
    "vllm": "openai",
    "llvm": "openai",
    "claude": "anthropic",
    "ovms": "kserve",
    "openai_api": "openai",
}


def server_class(family: str) -> type[FakeServer]:
    name = ALIASES.get(family, family)
    try:
        return SERVERS[name]
    except KeyError:
        raise ValueError(
            f"unknown fake-server family {family!r}; known: {', '.join(sorted(SERVERS))}"
        ) from None


def start_server(family: str, **kw: Any) -> FakeServer:
    """Start the fake for ``family`` (or a provider name such as ``groq``/``vllm``/``ovms``)."""
    return server_class(family)(**kw).start()


__all__ = [
    "ALIASES",
    "FakeAnthropicServer",
    "FakeGeminiServer",
    "FakeKServeServer",
    "FakeOPEAServer",
    "FakeOllamaServer",
    "FakeOpenAIServer",
    "FakeServer",
    "FakeTEIServer",
    "FakeTGIServer",
    "Fault",
    "HTTPError",
    "Headers",
    "KINDS",
    "KServeModel",
    "RecordedRequest",
    "Request",
    "Response",
    "SERVERS",
    "StreamResponse",
    "TensorSpec",
    "anthropic_prompt",
    "apply_stop",
    "count_tokens",
    "default_models",
    "embedding",
    "embedding_base64",
    "gemini_prompt",
    "messages_text",
    "reply_pieces",
    "reply_text",
    "reply_words",
    "rerank_score",
    "server_class",
    "split_pieces",
    "start_server",
]
