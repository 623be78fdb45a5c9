"""Greedy generation for causal LMs and encoder-decoders, as a loop of full forwards.

The same loop runs on every backend (no KV cache, `use_cache=False`), so a converted graph with
dynamic sequence length is all a backend needs, and greedy tokens must match CPU exactly.
It reproduces transformers' `generate(do_sample=False, max_new_tokens=N, min_new_tokens=N)`:
EOS logits are masked until N tokens exist (random weights emit EOS early, and a fixed length
keeps rows comparable), then argmax. `tests/test_language_models.py` checks the tokens equal
`model.generate`'s.
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


def eos_ids(built: Any) -> list[int]:
    """EOS ids `generate` would suppress under min_new_tokens (generation config, else model config)."""
    gen_cfg = getattr(built.model, "generation_config", None)
    value = getattr(gen_cfg, "eos_token_id", None) if gen_cfg is not None else None
    if value is None:
        value = getattr(built.config, "eos_token_id", None)
    if value is None:
        return []
    return [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]


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
        suppress = [i for i in eos_ids(built) if i >= 0]
        feed = dict(inputs)
        first: Arrays | None = None
        steps = []
        for _ in range(self.new_tokens(task)):
            out = prepared(feed)
            if first is None:
                first = out
            last = np.array(out["logits"][:, -1, :], dtype=np.float64)
            last[:, [i for i in suppress if i < last.shape[-1]]] = -np.inf
            nxt = last.argmax(-1).astype(np.int64)[:, None]
            steps.append(nxt)
            feed[key] = np.concatenate([feed[key], nxt], axis=1)
            if not seq2seq and "attention_mask" in feed:
                feed["attention_mask"] = np.ones_like(feed[key])
        assert first is not None
        return Outputs(arrays=first, tokens=np.concatenate(steps, axis=1))

    def expected(self, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> dict[str, tuple]:
        cfg = getattr(built.config, "text_config", None) or built.config
        key = "decoder_input_ids" if "decoder_input_ids" in inputs else "input_ids"
        return {
            "logits": (batch, inputs[key].shape[1], cfg.vocab_size),
            "tokens": (batch, self.new_tokens(task)),
        }


SKILL = GenerationSkill()
