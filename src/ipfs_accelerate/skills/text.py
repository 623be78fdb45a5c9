"""Encoder text tasks: embeddings, fill-mask, sequence/token classification, QA."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..hardware.backends import Arrays
from ..harness import assets
from ..registry import TaskSpec
from .base import Skill, accepted

MASK_POSITION = 3


class TextSkill(Skill):
    def inputs(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        length = int(task.inputs.get("seq_len", 16))
        ids = assets.token_ids(batch, length, tok=built.tokenizer)
        if task.task == "fill-mask":
            ids[:, MASK_POSITION] = getattr(built.tokenizer, "mask_token_id", None) or assets.MASK
        cand = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids),
        }
        return accepted(built.model, cand)

    def expected(self, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> dict[str, tuple]:
        length = inputs["input_ids"].shape[1]
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
        return {}


SKILL = TextSkill()
