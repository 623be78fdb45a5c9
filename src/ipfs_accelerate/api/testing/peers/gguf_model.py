"""Write a tiny random-weight llama GGUF offline, so llama.cpp peers need no downloaded weights.

The model is deterministic for a given seed (same bytes every time), ~0.5 MB, and has:
a SentencePiece-style vocabulary (``<unk>``, ``<s>``, ``</s>``, 256 byte-fallback tokens and a
few word pieces), a chat template, and optionally ``llama.pooling_type = MEAN`` so that an
embedding server returns one vector per input instead of one per token.

Its output is garbage by construction: tests assert structure, determinism (temperature 0) and
what ``logit_bias`` can force (see :data:`WORD_PIECES`), never text quality.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

_WORDS = ("hello", "world", "the", "ok", "yes", "no", "cat", "dog", "tiny", "model")


def _pieces() -> tuple[str, ...]:
    # llama.cpp's SPM tokenizer merges adjacent symbols only into pieces that exist, so every
    # prefix of a word is in the vocabulary ("▁h", "▁he", ... "▁hello"): "hello" is one token.
    out: list[str] = ["▁", *"abcdefghijklmnopqrstuvwxyz", *"0123456789"]
    for w in _WORDS:
        out += [f"▁{w[:i]}" for i in range(1, len(w) + 1)]
    out += [f"▁{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    return tuple(dict.fromkeys(out))  # de-duplicated, order kept


# Word pieces after the byte tokens. "▁" (U+2581) marks a leading space in SentencePiece.
WORD_PIECES: tuple[str, ...] = _pieces()

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


@dataclass(frozen=True)
class TinyGGUF:
    """Where the model was written and the facts tests need about it."""

    path: Path
    vocab: tuple[str, ...]
    n_embd: int
    embedding: bool

    def token_id(self, piece: str) -> int:
        """Id of a vocabulary piece, e.g. ``token_id("▁hello")`` for a logit_bias test."""
        return self.vocab.index(piece)

    @property
    def n_vocab(self) -> int:
        return len(self.vocab)


def _vocab() -> tuple[list[str], list[float], list[int]]:
    import gguf

    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    tokens += list(WORD_PIECES)
    types += [gguf.TokenType.NORMAL] * len(WORD_PIECES)
    # SPM merges greedily by score: longer pieces score higher so "▁hello" beats "▁h"+"e"+...
    scores = [0.0] * 259 + [float(len(p)) - 100.0 for p in WORD_PIECES]
    return tokens, scores, [int(t) for t in types]


def write_tiny_gguf(
    path: Path,
    *,
    embedding: bool = False,
    seed: int = 0,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    n_ctx: int = 512,
) -> TinyGGUF:
    """Write the model to ``path`` and describe it. Same arguments -> same bytes."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()
    n_vocab = len(tokens)

    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_name("ipfs-accelerate-tiny-embed" if embedding else "ipfs-accelerate-tiny")
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    if embedding:
        w.add_pooling_type(gguf.PoolingType.MEAN)

    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5 / np.sqrt(shape[-1])).astype(np.float32)

    ones = np.ones(n_embd, dtype=np.float32)
    # numpy shape is (out, in); gguf reverses it into ggml's ne order.
    w.add_tensor("token_embd.weight", rand(n_vocab, n_embd))
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", ones.copy())
        w.add_tensor(f"blk.{i}.attn_q.weight", rand(n_embd, n_embd))
        w.add_tensor(f"blk.{i}.attn_k.weight", rand(n_embd, n_embd))
        w.add_tensor(f"blk.{i}.attn_v.weight", rand(n_embd, n_embd))
        w.add_tensor(f"blk.{i}.attn_output.weight", rand(n_embd, n_embd))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", ones.copy())
        w.add_tensor(f"blk.{i}.ffn_gate.weight", rand(n_ff, n_embd))
        w.add_tensor(f"blk.{i}.ffn_up.weight", rand(n_ff, n_embd))
        w.add_tensor(f"blk.{i}.ffn_down.weight", rand(n_embd, n_ff))
    w.add_tensor("output_norm.weight", ones.copy())
    w.add_tensor("output.weight", rand(n_vocab, n_embd))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return TinyGGUF(path=Path(path), vocab=tuple(tokens), n_embd=n_embd, embedding=embedding)
