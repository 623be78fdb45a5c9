"""Groq: the OpenAI wire protocol under ``/openai/v1``.

As in the official ``groq`` SDK, ``base_url`` / ``GROQ_BASE_URL`` is the host root and the
``/openai/v1`` prefix is always added. Streamed usage arrives as ``x_groq.usage`` in the final
chunk (or as ``usage`` with ``stream_options.include_usage``); both are read.
"""

from __future__ import annotations

from ipfs_accelerate.api.providers import PROVIDERS

from .openai_api import OpenAIProvider

__all__ = ["GroqProvider"]


class GroqProvider(OpenAIProvider):
    name = "groq"
    info = PROVIDERS["groq"]
    path_prefix = "/openai/v1"
