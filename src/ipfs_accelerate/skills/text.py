"""Encoder text tasks: embeddings, fill-mask, sequence/token classification, QA.

Inputs are fixed prompts cut to ``seq_len`` real tokens (no padding), so a batch row equals its
single run. Encoder-decoder heads get what their forward would otherwise derive or demand:
decoder inputs shifted right from the prompt (as BART does internally; Pegasus/Marian demand
them), and an EOS at the end for sequence classification (BART/T5 pool the hidden state at EOS).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from ..hardware.backends import Arrays
from ..harness import assets
from ..registry import TaskSpec
from .base import Outputs, Skill, accepted

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


def page_boxes(batch: int, length: int) -> np.ndarray:
    """(batch, length, 4) word boxes (x0, y0, x1, y1) in LayoutLM's 0..1000 page coordinates:
    six words a line, row i shifted by 7 so rows differ."""
    i = np.arange(length)
    x0, y0 = (i % 6) * 160 + 10, (i // 6) * 90 + 20
    box = np.stack([x0, y0, x0 + 140, y0 + 60], axis=-1)
    return np.clip(np.stack([box + 7 * b for b in range(batch)]), 0, 1000).astype(np.int64)


_STATE_SUFFIXES = ("_embeds", "hidden_states")


def required_states(built: Any, task: TaskSpec, batch: int, length: int, fed: Arrays) -> Arrays:
    """Float states a forward *requires* besides token ids (a Q-Former's learned queries, a draft
    model's noise block and target-model context): seeded N(0, 1), (batch, length, width), row i
    drawn from a seed of (name, i) so batch rows equal single runs. The width is the config's
    hidden_size unless ``inputs.state_widths`` names one (a draft model reads several target
    layers' states concatenated). ``inputs.states`` adds optional ones the model cannot run
    without (a Q-Former's cross-attention layers need the image encoder's states)."""
    import inspect

    params = inspect.signature(built.model.forward).parameters
    widths = dict(task.inputs.get("state_widths", {}))
    wanted = set(task.inputs.get("states", []))
    out: Arrays = {}
    for name, p in params.items():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or name in fed:
            continue
        if name not in wanted and (p.default is not p.empty or not name.endswith(_STATE_SUFFIXES)):
            continue
        width = int(widths.get(name, built.config.hidden_size))
        seed = 900 + zlib.crc32(name.encode()) % 1000  # two states of one model differ
        rows = [np.random.default_rng(seed + i).standard_normal((length, width)) for i in range(batch)]
        out[name] = np.stack(rows).astype(np.float32)
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
        boxes = task.inputs.get("bbox")  # layout encoders: "page" (0..1000 ints) or "unit" ([0, 1] floats)
        if boxes in ("page", "unit"):
            cand["bbox"] = page_boxes(*ids.shape)
            if boxes == "unit":
                cand["bbox"] = (cand["bbox"] / 1000.0).astype(np.float32)
        type_sizes = getattr(built.config, "type_vocab_sizes", None)
        if isinstance(type_sizes, list | tuple) and type_sizes:
            # TAPAS: one token-type id per table channel (segment, column, row, rank...): all 0 is
            # a question with an empty table
            cand["token_type_ids"] = np.zeros((*ids.shape, len(type_sizes)), dtype=ids.dtype)
        if encoder_decoder:
            cand["decoder_input_ids"] = shift_right(ids, decoder_start_id(built))
        if task.task == "multiple-choice":  # (batch, choices, length): each choice its own row
            cand = {k: np.stack([v, np.roll(v, 1, axis=1)], axis=1) for k, v in cand.items()}
        cand.update(required_states(built, task, batch, length, cand))
        return accepted(built.model, cand)

    def expected(self, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> dict[str, tuple]:
        length = (inputs["input_ids"] if "input_ids" in inputs else next(iter(inputs.values()))).shape[-1 if "input_ids" in inputs else 1]
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

    def check(self, outputs: Outputs, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> None:
        if self.check_unnamed_states(outputs, task, batch):  # DPR's pooled embedding, LXMERT's two streams
            return
        super().check(outputs, built, task, batch, inputs)


SKILL = TextSkill()
