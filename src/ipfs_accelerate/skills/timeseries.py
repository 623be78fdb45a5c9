"""Time-series forecasting: patch models (PatchTSMixer, PatchTST) and the probabilistic
encoder-decoders (TimeSeriesTransformer, Informer, Autoformer).

Series are synthetic and deterministic (level + trend + two seasonal terms + seeded noise; row i
of a batch is series i), so batch rows can be compared with single runs.

- Patch models forecast the whole horizon in one forward: `prediction_outputs` is
  (batch, prediction_length, channels).
- The encoder-decoders are run as in their evaluation: the observed continuation is given as
  `future_values` (teacher forcing) and the forward returns the forecast distribution's
  parameters for every horizon step (`params.*`, e.g. Student-t df/loc/scale) plus the scaler's
  loc/scale. Their `generate()` draws random samples, which no backend can reproduce, so the
  deterministic distribution parameters are what parity and fingerprints check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..hardware.backends import Arrays
from ..registry import TaskSpec
from .base import Skill, accepted
from .text import SKILL as TEXT


def is_patch_model(cfg: Any) -> bool:
    """Patch models read a (batch, context, channels) window; the others add lags and covariates."""
    return not hasattr(cfg, "lags_sequence")


def series(length: int, index: int = 0, channels: int = 1) -> np.ndarray:
    """A (length, channels) float32 series: positive level, trend, two seasonalities, noise."""
    t = np.arange(length, dtype=np.float64)[:, None]
    c = np.arange(channels, dtype=np.float64)[None, :]
    rng = np.random.default_rng(4242 + index)
    level = 10.0 + 2.0 * index + c
    seasonal = 3.0 * np.sin(2 * np.pi * t / (7 + index) + c) + 1.5 * np.cos(2 * np.pi * t / 24 + 0.5 * c)
    values = level + 0.05 * (index + 1) * t + seasonal + rng.normal(0, 0.3, size=(length, channels))
    return values.astype(np.float32)


def time_features(start: int, length: int, count: int) -> np.ndarray:
    """(length, count) calendar-like covariates: scaled position, then sin/cos of a daily cycle."""
    t = np.arange(start, start + length, dtype=np.float64)
    cols = [t / 100.0 - 0.5]
    k = 1
    while len(cols) < count:
        cols.append(np.sin(2 * np.pi * t * k / 24))
        if len(cols) < count:
            cols.append(np.cos(2 * np.pi * t * k / 24))
        k += 1
    return np.stack(cols[:count], axis=-1).astype(np.float32)


def _text_model(built: Any) -> bool:
    """A "specialized" base model fed token ids (TAPAS' table QA encoder), not a series."""
    import inspect

    params = inspect.signature(built.model.forward).parameters
    return "input_ids" in params and "past_values" not in params


def trajectories(cfg: Any, batch: int, steps: int) -> Arrays:
    """Decision Transformer's offline-RL context: (state, action, reward, return-to-go) per step,
    seeded per row (row i from seed 5150 + i), timesteps counting up from a per-row start."""
    rows = [np.random.default_rng(5150 + i) for i in range(batch)]
    states = np.stack([r.normal(0, 1, (steps, cfg.state_dim)) for r in rows])
    actions = np.stack([np.tanh(r.normal(0, 1, (steps, cfg.act_dim))) for r in rows])
    rewards = np.stack([r.uniform(0, 1, (steps, 1)) for r in rows])
    returns = rewards[:, ::-1].cumsum(axis=1)[:, ::-1]  # reward still to come, from each step
    timesteps = np.stack([np.arange(steps) + 3 * i for i in range(batch)])
    return {
        "states": states.astype(np.float32),
        "actions": actions.astype(np.float32),
        "rewards": rewards.astype(np.float32),
        "returns_to_go": np.ascontiguousarray(returns).astype(np.float32),
        "timesteps": timesteps.astype(np.int64),
        "attention_mask": np.ones((batch, steps), dtype=np.int64),
    }


class TimeSeriesSkill(Skill):
    def inputs(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        if _text_model(built):
            return TEXT.inputs(built, task, batch)
        cfg = built.config
        if hasattr(cfg, "state_dim") and hasattr(cfg, "act_dim"):
            return accepted(built.model, trajectories(cfg, batch, int(task.inputs.get("steps", 8))))
        cfg = built.config
        if is_patch_model(cfg) and not hasattr(cfg, "num_input_channels"):
            # univariate foundation models (TimesFM): (batch, context) values, padding flags
            # (0 = observed) and a frequency id per series (0 = high frequency)
            past = np.stack([series(cfg.context_length, i)[:, 0] for i in range(batch)])
            return accepted(built.model, {
                "past_values": past,
                "past_values_padding": np.zeros(past.shape, dtype=np.int64),
                "past_observed_mask": np.ones_like(past),
                "freq": np.zeros((batch, 1), dtype=np.int64),
            })
        if is_patch_model(cfg):
            rows = [series(cfg.context_length, i, cfg.num_input_channels) for i in range(batch)]
            past = np.stack(rows)
            return accepted(built.model, {"past_values": past, "past_observed_mask": np.ones_like(past)})
        past_len = cfg.context_length + max(cfg.lags_sequence)
        horizon = cfg.prediction_length
        size = cfg.input_size
        full = np.stack([series(past_len + horizon, i, size) for i in range(batch)])
        if size == 1:
            full = full[..., 0]
        nf = cfg.num_time_features
        feats = np.repeat(time_features(0, past_len + horizon, nf)[None], batch, axis=0)
        cand = {
            "past_values": full[:, :past_len],
            "past_time_features": feats[:, :past_len],
            "past_observed_mask": np.ones_like(full[:, :past_len]),
            "future_values": full[:, past_len:],
            "future_time_features": feats[:, past_len:],
        }
        return accepted(built.model, {k: np.ascontiguousarray(v) for k, v in cand.items()})

    def expected(self, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> dict[str, tuple]:
        if _text_model(built):
            return TEXT.expected(built, task, batch, inputs)
        cfg = built.config
        if "returns_to_go" in inputs:  # one prediction per step; hidden states interleave (R, s, a)
            steps = inputs["states"].shape[1]
            return {"state_preds": (batch, steps, cfg.state_dim), "action_preds": (batch, steps, cfg.act_dim),
                    "return_preds": (batch, steps, 1), "last_hidden_state": (batch, 3 * steps, None)}
        if task.task == "feature-extraction":
            return {"last_hidden_state": (batch,) + (None,) * (inputs["past_values"].ndim if is_patch_model(cfg) else 2)}
        if is_patch_model(cfg) and not hasattr(cfg, "num_input_channels"):
            return {"mean_predictions": (batch, getattr(cfg, "horizon_length", None))}  # univariate: one forecast per series
        if is_patch_model(cfg):
            return {"prediction_outputs": (batch, cfg.prediction_length, cfg.num_input_channels)}
        # encoder-decoders: one distribution parameter tensor per horizon step (input_size 1)
        return {"params.0": (batch, cfg.prediction_length), "loc": (batch, 1), "scale": (batch, 1)}


SKILL = TimeSeriesSkill()
