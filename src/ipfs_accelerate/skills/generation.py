"""Greedy generation for causal LMs and encoder-decoders, as a loop of full forwards.

The same loop runs on every backend (no KV cache, `use_cache=False`), so a converted graph with
dynamic sequence length is all a backend needs, and greedy tokens must match CPU exactly.
It reproduces transformers' greedy `generate(do_sample=False, max_new_tokens=N, min_new_tokens=N)`
with the model's generation config: EOS logits are masked until N tokens exist (random weights
emit EOS early, and a fixed length keeps rows comparable), the config's n-gram bans and forced
BOS/EOS apply as in transformers' logits processors, then argmax. Beam search and sampling
settings are not reproduced (the loop is greedy by definition). `tests/test_language_models.py`
checks the tokens equal `model.generate`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..hardware.backends import Arrays, Prepared
from ..harness import assets
from ..registry import TaskSpec
from .base import Outputs, Skill, accepted
from .text import decoder_start_id

SEQ2SEQ_TASKS = {"text2text-generation", "summarization", "translation"}


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]


def eos_ids(built: Any) -> list[int]:
    """EOS ids `generate` would suppress under min_new_tokens (generation config, else model config)."""
    gen_cfg = getattr(built.model, "generation_config", None)
    value = getattr(gen_cfg, "eos_token_id", None) if gen_cfg is not None else None
    if value is None:
        value = getattr(built.config, "eos_token_id", None)
    return _ids(value)


def _ngrams(rows: np.ndarray, n: int) -> list[dict[tuple, list[int]]]:
    """Per row: (n-1)-token prefix -> tokens that followed it (transformers' `_get_ngrams`)."""
    out = []
    for row in rows.tolist():
        table: dict[tuple, list[int]] = {}
        for gram in zip(*[row[i:] for i in range(n)], strict=False):
            table.setdefault(tuple(gram[:-1]), []).append(gram[-1])
        out.append(table)
    return out


def _banned(tables: list[dict[tuple, list[int]]], seq: np.ndarray, n: int) -> list[list[int]]:
    cur = seq.shape[1]
    start = cur + 1 - n  # negative when the sequence is still shorter than n-1, as in transformers
    return [tables[i].get(tuple(seq[i, start:cur].tolist()), []) for i in range(seq.shape[0])]


class LogitsRules:
    """The generation-config rules `generate` applies to greedy scores, in numpy."""

    def __init__(self, built: Any, inputs: Arrays, new_tokens: int) -> None:
        gen = getattr(built.model, "generation_config", None)

        def opt(name: str) -> Any:
            return getattr(gen, name, None) if gen is not None else None

        self.eos = [i for i in eos_ids(built) if i >= 0]
        self.forced_bos = opt("forced_bos_token_id")
        self.forced_eos = _ids(opt("forced_eos_token_id"))
        self.no_repeat = int(opt("no_repeat_ngram_size") or 0)
        self.enc_no_repeat = int(opt("encoder_no_repeat_ngram_size") or 0)
        self.new_tokens = new_tokens
        self.enc_tables = None
        if self.enc_no_repeat and "decoder_input_ids" in inputs:
            self.enc_tables = _ngrams(inputs["input_ids"], self.enc_no_repeat)

    def __call__(self, scores: np.ndarray, seq: np.ndarray, step: int) -> np.ndarray:
        """`scores` (batch, vocab) for the next token of `seq` (batch, cur_len), step 0-based."""
        vocab = scores.shape[-1]
        if self.no_repeat and seq.shape[1] + 1 >= self.no_repeat:
            for row, banned in enumerate(_banned(_ngrams(seq, self.no_repeat), seq, self.no_repeat)):
                scores[row, banned] = -np.inf
        if self.enc_tables is not None:
            for row, banned in enumerate(_banned(self.enc_tables, seq, self.enc_no_repeat)):
                scores[row, banned] = -np.inf
        scores[:, [i for i in self.eos if i < vocab]] = -np.inf  # min_new_tokens == new_tokens
        if self.forced_bos is not None and seq.shape[1] == 1:
            scores[:] = -np.inf
            scores[:, int(self.forced_bos)] = 0.0
        if self.forced_eos and step == self.new_tokens - 1:
            scores[:] = -np.inf
            scores[:, [i for i in self.forced_eos if i < vocab]] = 0.0
        return scores


class GenerationSkill(Skill):
    def new_tokens(self, task: TaskSpec) -> int:
        return int(task.inputs.get("new_tokens", 8))

    def inputs(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        length = int(task.inputs.get("seq_len", 8))
        ids = assets.token_ids(batch, length, tok=built.tokenizer)
        cand: Arrays = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if task.task in SEQ2SEQ_TASKS:
            cand["decoder_input_ids"] = np.full((batch, 1), decoder_start_id(built), dtype=np.int64)
        return accepted(built.model, cand)

    def example(self, built: Any, task: TaskSpec) -> Arrays:
        """Trace with a decoder longer than one token, or length-1 shortcuts get baked in."""
        ex = self.inputs(built, task, 2)
        if "decoder_input_ids" in ex:
            ex["decoder_input_ids"] = np.concatenate([ex["decoder_input_ids"], ex["input_ids"][:, :1]], axis=1)
        return ex

    def run(self, prepared: Prepared, inputs: Arrays, built: Any, task: TaskSpec) -> Outputs:
        seq2seq = "decoder_input_ids" in inputs
        key = "decoder_input_ids" if seq2seq else "input_ids"
        rules = LogitsRules(built, inputs, self.new_tokens(task))
        feed = dict(inputs)
        first: Arrays | None = None
        steps = []
        for step in range(self.new_tokens(task)):
            out = prepared(feed)
            if first is None:
                first = out
            scores = rules(np.array(out["logits"][:, -1, :], dtype=np.float64), feed[key], step)
            nxt = scores.argmax(-1).astype(np.int64)[:, None]
            steps.append(nxt)
            feed[key] = np.concatenate([feed[key], nxt], axis=1)
            if not seq2seq and "attention_mask" in feed:
                feed["attention_mask"] = np.ones_like(feed[key])
        assert first is not None
        return Outputs(arrays=first, tokens=np.concatenate(steps, axis=1))

    def expected(self, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> dict[str, tuple]:
        # the vocabulary is the text model's (VLMs) or the decoder's (EncoderDecoderModel pairs)
        cfg = getattr(built.config, "text_config", None) or getattr(built.config, "decoder", None) or built.config
        key = "decoder_input_ids" if "decoder_input_ids" in inputs else "input_ids"
        return {
            "logits": (batch, inputs[key].shape[1], cfg.vocab_size),
            "tokens": (batch, self.new_tokens(task)),
        }


SKILL = GenerationSkill()
