"""Deterministic content shared by every fake server.

Replies and embeddings are pure functions of the input text, so a test computes the exact value it
expects with the same function the server used (no fixtures of canned JSON to drift out of date).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct

# 64 short words; every word is one token for `count_tokens`, so completion_tokens == word count.
WORDS: tuple[str, ...] = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray",
    "yankee", "zulu", "amber", "basil", "cedar", "dune", "ember", "fern",
    "grove", "heath", "iris", "jade", "kelp", "lotus", "maple", "nectar",
    "olive", "pine", "quartz", "reed", "sage", "thyme", "umber", "vale",
    "willow", "yarrow", "zinnia", "ash", "birch", "clove", "dew", "elm",
    "flint", "gale", "hazel", "ivy", "juniper", "kale", "larch", "moss",
)  # fmt: skip

DEFAULT_REPLY_TOKENS = 12
TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Approximate tokenizer: one token per word and per punctuation mark."""
    return len(TOKEN_RE.findall(text))


def _stream_of_bytes(seed: str, n: int) -> bytes:
    out = b""
    block = 0
    while len(out) < n:
        out += hashlib.sha256(f"{block}:{seed}".encode()).digest()
        block += 1
    return out[:n]


def reply_words(
    prompt: str, max_tokens: int | None = None, *, length: int = DEFAULT_REPLY_TOKENS
) -> tuple[list[str], str]:
    """Words of the reply to ``prompt`` and the finish reason (``"stop"`` or ``"length"``).

    The reply is ``length`` words chosen by SHA-256 of the prompt; ``max_tokens`` below that
    truncates it and turns the finish reason into ``"length"``, as real servers do.
    """
    n, finish = length, "stop"
    if max_tokens is not None and max_tokens < length:
        n, finish = max(int(max_tokens), 0), "length"
    raw = _stream_of_bytes(prompt, n)
    return [WORDS[b % len(WORDS)] for b in raw], finish


def reply_text(
    prompt: str, max_tokens: int | None = None, *, length: int = DEFAULT_REPLY_TOKENS
) -> str:
    """The full reply text (words joined by single spaces)."""
    return " ".join(reply_words(prompt, max_tokens, length=length)[0])


def reply_pieces(words: list[str]) -> list[str]:
    """Streaming deltas whose concatenation equals ``" ".join(words)``: one per word."""
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def embedding(text: str, dim: int = 16, *, normalize: bool = True) -> list[float]:
    """A deterministic vector for ``text``; float32-exact so JSON and base64 forms agree bit for bit.

    Components are uniform in [-1, 1) from SHA-256 of the text; with ``normalize`` the vector has
    unit L2 norm (as OpenAI, TEI and Gemini return by default).
    """
    raw = _stream_of_bytes("embed:" + text, 4 * dim)
    vals = [struct.unpack("<I", raw[4 * i : 4 * i + 4])[0] / 2**31 - 1.0 for i in range(dim)]
    if normalize:
        norm = math.sqrt(sum(v * v for v in vals)) or 1.0
        vals = [v / norm for v in vals]
    return [_f32(v) for v in vals]


def embedding_base64(vec: list[float]) -> str:
    """OpenAI's ``encoding_format="base64"``: little-endian float32 bytes, base64-encoded."""
    import base64

    return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()


def rerank_score(query: str, text: str) -> float:
    """Relevance in [0, 1): the share of the query's distinct words found in ``text``, plus a hash
    tie-breaker below 0.01, so rankings are meaningful and exact."""
    q = {w.lower() for w in re.findall(r"\w+", query)}
    t = {w.lower() for w in re.findall(r"\w+", text)}
    overlap = len(q & t) / len(q) if q else 0.0
    tie = _stream_of_bytes(f"rerank:{query}\x00{text}", 1)[0] / 256 / 100
    return _f32(min(overlap * 0.99 + tie, 0.999999))


_PIECE_RE = re.compile(r"\s*\S+|\s+$")


def split_pieces(text: str) -> list[str]:
    """Stream deltas for arbitrary ``text`` (one per word, leading whitespace attached); their
    concatenation is exactly ``text``."""
    return _PIECE_RE.findall(text)


def apply_stop(text: str, stops: list[str] | None) -> tuple[str, str | None]:
    """Cut ``text`` at the earliest stop sequence; returns the text and the sequence hit."""
    best: tuple[int, str] | None = None
    for s in stops or []:
        i = text.find(s) if s else -1
        if i >= 0 and (best is None or i < best[0]):
            best = (i, s)
    return (text, None) if best is None else (text[: best[0]], best[1])
