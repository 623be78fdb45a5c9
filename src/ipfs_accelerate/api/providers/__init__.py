"""The provider registry: every API backend's name, class, protocol family and environment.

This module is pure data (no httpx, no SDKs, no side effects), so the test generator and the
CLI can read it cheaply. Classes are imported only by :func:`get_provider_class`.

Conventions every provider module follows:

* module ``ipfs_accelerate.api.providers.<name>``, class ``<info.class_name>``, a subclass of
  :class:`ipfs_accelerate.api.core.Provider` whose ``name`` equals the registry name
  (``s3_kit`` is the exception: it is built on boto3, not on the httpx core);
* ``key_env``: environment variables tried in order for the API key (comma-separated values
  give several keys, rotated); ``url_env``: the same for the base URL;
* ``family``: the wire protocol, which names the local fake server that speaks it
  (``ipfs_accelerate.api.testing``);
* ``real_mode_env``: the variables whose presence switches the API tests to the real service.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PROVIDERS",
    "PROVIDER_NAMES",
    "ProviderInfo",
    "available_providers",
    "get_provider_class",
]


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    name: str
    class_name: str
    family: str
    default_base_url: str
    key_env: tuple[str, ...] = ()
    url_env: tuple[str, ...] = ()
    key_required: bool = False
    streaming: str | None = "sse"  # "sse", "ndjson" or None
    description: str = ""

    @property
    def module(self) -> str:
        return f"{__name__}.{self.name}"

    @property
    def real_mode_env(self) -> tuple[str, ...]:
        """Variables that, when set, point the API tests at a real service."""
        return self.key_env if self.key_required else self.url_env


_ALL = [
    ProviderInfo(
        "openai_api",
        "OpenAIProvider",
        "openai",
        "https://api.openai.com/v1",
        key_env=("OPENAI_API_KEY",),
        url_env=("OPENAI_BASE_URL",),
        key_required=True,
        description="OpenAI: chat, completions, embeddings, streaming, models",
    ),
    ProviderInfo(
        "claude",
        "ClaudeProvider",
        "anthropic",
        "https://api.anthropic.com",
        key_env=("ANTHROPIC_API_KEY",),
        url_env=("ANTHROPIC_BASE_URL",),
        key_required=True,
        description="Anthropic Messages API: create, streaming events, count_tokens",
    ),
    ProviderInfo(
        "groq",
        "GroqProvider",
        "openai",
        "https://api.groq.com",
        key_env=("GROQ_API_KEY",),
        url_env=("GROQ_BASE_URL",),
        key_required=True,
        description="Groq: OpenAI-compatible under /openai/v1",
    ),
    ProviderInfo(
        "ollama",
        "OllamaProvider",
        "ollama",
        "http://127.0.0.1:11434",
        key_env=("OLLAMA_API_KEY",),
        url_env=("OLLAMA_HOST", "OLLAMA_BASE_URL"),
        streaming="ndjson",
        description="Ollama: /api/chat, /api/generate, /api/embed, /api/tags, NDJSON streams",
    ),
    ProviderInfo(
        "hf_tgi",
        "HFTGIProvider",
        "tgi",
        "http://127.0.0.1:8080",
        key_env=("HF_TGI_API_KEY", "HF_TOKEN"),
        url_env=("HF_TGI_BASE_URL",),
        description="Hugging Face Text Generation Inference: /generate, /generate_stream, chat",
    ),
    ProviderInfo(
        "hf_tei",
        "HFTEIProvider",
        "tei",
        "http://127.0.0.1:8080",
        key_env=("HF_TEI_API_KEY", "HF_TOKEN"),
        url_env=("HF_TEI_BASE_URL",),
        streaming=None,
        description="Hugging Face Text Embeddings Inference: /embed, /rerank",
    ),
    ProviderInfo(
        "gemini",
        "GeminiProvider",
        "gemini",
        "https://generativelanguage.googleapis.com",
        key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        url_env=("GEMINI_BASE_URL",),
        key_required=True,
        description="Google Gemini API: generateContent, streamGenerateContent, embedContent",
    ),
    ProviderInfo(
        "vllm",
        "VLLMProvider",
        "openai",
        "http://127.0.0.1:8000/v1",
        key_env=("VLLM_API_KEY",),
        url_env=("VLLM_BASE_URL",),
        description="vLLM's OpenAI-compatible server (no key unless started with --api-key)",
    ),
    ProviderInfo(
        "ovms",
        "OVMSProvider",
        "kserve_v2",
        "http://127.0.0.1:9000",
        key_env=("OVMS_API_KEY",),
        url_env=("OVMS_BASE_URL",),
        streaming=None,
        description="OpenVINO Model Server over KServe v2 REST: ready, metadata, infer",
    ),
    ProviderInfo(
        "opea",
        "OPEAProvider",
        "opea",
        "http://127.0.0.1:8888",
        key_env=("OPEA_API_KEY",),
        url_env=("OPEA_BASE_URL",),
        description="OPEA ChatQnA-style microservice endpoints",
    ),
    ProviderInfo(
        "s3_kit",
        "S3KitProvider",
        "s3",
        "http://127.0.0.1:9000",
        key_env=("AWS_ACCESS_KEY_ID",),
        url_env=("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
        streaming=None,
        description="S3-compatible object storage via boto3: put/get/list/delete, multipart, presign",
    ),
    ProviderInfo(
        "llvm",
        "LLVMProvider",
        "openai",
        "http://127.0.0.1:8080/v1",
        key_env=("LLVM_API_KEY",),
        url_env=("LLVM_BASE_URL",),
        description="Local llama.cpp-family server (llama-server / llama-cpp-python): OpenAI API + health, tokenize",
    ),
]

PROVIDERS: dict[str, ProviderInfo] = {p.name: p for p in _ALL}
PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)


def get_provider_class(name: str) -> Any:
    """Import and return the provider class registered under ``name``."""
    info = PROVIDERS[name]
    module = importlib.import_module(info.module)
    return getattr(module, info.class_name)


def available_providers() -> dict[str, Any]:
    """Name → class for every provider whose module exists (not yet written ones are left out)."""
    found: dict[str, Any] = {}
    for name in PROVIDER_NAMES:
        try:
            found[name] = get_provider_class(name)
        except ModuleNotFoundError as exc:
            if exc.name != PROVIDERS[name].module:
                raise  # the module exists but is broken: say so
    return found
