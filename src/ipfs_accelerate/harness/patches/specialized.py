"""Model patches for specialized models (see patches/__init__.py)."""

from __future__ import annotations

import functools
import types
from typing import Any


def positive_dim_unfold(model: Any, config: Any) -> Any:
    """PatchTSMixer/PatchTST patchify with ``Tensor.unfold(dimension=-2, ...)``, which OpenVINO's
    converter rejects for a negative dimension. Their input is always 3-D
    (batch, sequence, channels), so dimension 1 is the same axis: same patches, same outputs."""

    def forward(self: Any, past_values: Any) -> Any:
        sequence_length = past_values.shape[-2]
        if sequence_length != self.sequence_length:
            raise ValueError(
                f"Input sequence length ({sequence_length}) doesn't match model configuration ({self.sequence_length})."
            )
        if past_values.dim() != 3:
            raise ValueError(f"expected (batch, sequence, channels), got shape {tuple(past_values.shape)}")
        output = past_values[:, self.sequence_start :, :]
        output = output.unfold(dimension=1, size=self.patch_length, step=self.patch_stride)
        return output.transpose(-2, -3).contiguous()

    patched = 0
    for module in model.modules():
        if type(module).__name__.endswith("Patchify") and hasattr(module, "sequence_start"):
            module.forward = types.MethodType(forward, module)
            patched += 1
    if not patched:
        raise ValueError(f"positive_dim_unfold: no *Patchify module in {type(model).__name__}")
    return model


def forecast_without_training_loss(model: Any, config: Any) -> Any:
    """The probabilistic forecasters (TimeSeriesTransformer, Informer, Autoformer) compute their
    training loss whenever `future_values` is given: the Student-t negative log-likelihood of the
    observed continuation, averaged over the whole batch. It is not a forecast (and its
    ``lgamma`` has no OpenVINO conversion rule), so the loss function is replaced by zeros and the
    `loss` field dropped; the forecast distribution's parameters, loc/scale and hidden states
    are the stock forward's, unchanged."""
    import torch

    if not callable(getattr(model, "loss", None)):
        raise ValueError(f"forecast_without_training_loss: {type(model).__name__} has no loss function")
    model.loss = lambda distribution, target: torch.zeros_like(target)
    original = model.forward

    @functools.wraps(original)
    def forward(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        return type(out)(**{k: v for k, v in out.items() if k != "loss"})

    model.forward = forward
    return model


PATCHES: dict = {
    "positive_dim_unfold": positive_dim_unfold,
    "forecast_without_training_loss": forecast_without_training_loss,
}
