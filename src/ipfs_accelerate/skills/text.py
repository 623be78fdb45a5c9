"""Encoder text tasks: embeddings, fill-mask, sequence/token classification, QA.

Inputs are fixed prompts cut to ``seq_len`` real tokens (no padding), so a batch row equals its
single run. Encoder-decoder heads get what their forward would otherwise derive or demand:
decoder inputs shifted right from the prompt (as BART does internally; Pegasus/Marian demand
them), and an EOS at the end for sequence classification (BART/T5 pool the hidden state at EOS).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..hardware.backends import Arrays
from ..harness import assets
from ..registry import TaskSpec
from .base import Skill, accepted

MASK_POSITION = 3


def _first_id(value: Any) -> int | None:
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value else None
    return None if value is None else int(value)


def decoder_start_id(built: Any) -> int:
    """The decoder start token: model config, then generation config, then BOS."""
    start = _first_id(getattr(built.config, "decoder_start_token_id", None))
    gen_cfg = getattr(built.model, "generation_config", None)
    if start is None and gen_cfg is not None:
        start = _first_id(gen_cfg.decoder_start_token_id)
    return assets.BOS if start is None else start


def eos_id(built: Any) -> int:
    eos = _first_id(getattr(built.config, "eos_token_id", None))
    return assets.EOS if eos is None else eos


def shift_right(ids: np.ndarray, start: int) -> np.ndarray:
    out = np.empty_like(ids)
    out[:, 0] = start
    out[:, 1:] = ids[:, :-1]
    return out


class TextSkill(Skill):
    def inputs(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        length = int(task.inputs.get("seq_len", 16))
        ids = assets.token_ids(batch, length, tok=built.tokenizer)
        if task.task == "fill-mask":
            ids[:, MASK_POSITION] = getattr(built.tokenizer, "mask_token_id", None) or assets.MASK
        encoder_decoder = bool(getattr(built.config, "is_encoder_decoder", False))
        if encoder_decoder and task.task == "text-classification":
            ids[:, -1] = eos_id(built)
        cand = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids),
        }
        if encoder_decoder:
            cand["decoder_input_ids"] = shift_right(ids, decoder_start_id(built))
        if task.task == "multiple-choice":  # (batch, choices, length): each choice its own row
            cand = {k: np.stack([v, np.roll(v, 1, axis=1)], axis=1) for k, v in cand.items()}
        return accepted(built.model, cand)

    def expected(self, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> dict[str, tuple]:
        length = inputs["input_ids"].shape[-1]
        cfg = built.config
        text_cfg = getattr(cfg, "text_config", None) or cfg
        if task.task == "fill-mask":
            return {"logits": (batch, length, text_cfg.vocab_size)}
        if task.task == "text-classification":
            return {"logits": (batch, cfg.num_labels)}
        if task.task == "token-classification":
            return {"logits": (batch, length, cfg.num_labels)}
        if task.task == "question-answering":
            return {"start_logits": (batch, length), "end_logits": (batch, length)}
        if task.task == "feature-extraction":
            return {"last_hidden_state": (batch, length, None)}
        if task.task == "multiple-choice":
            return {"logits": (batch, inputs["input_ids"].shape[1])}
        return {}


SKILL = TextSkill()
