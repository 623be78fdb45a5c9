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
        return model  # the bare encoder-decoder (feature extraction) computes no loss
    model.loss = lambda distribution, target: torch.zeros_like(target)
    original = model.forward

    @functools.wraps(original)
    def forward(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        return type(out)(**{k: v for k, v in out.items() if k != "loss"})

    model.forward = forward
    return model


def zoedepth_reassemble_by_chunks(model: Any, config: Any) -> Any:
    """ZoeDepth's reassemble stage concatenates the backbone stages along the batch and splits
    them back with ``split(batch_size)``; traced, OpenVINO turns that into a VariadicSplit whose
    lengths only work for the traced batch size (batch 1 then fails: "overflow while multiplying
    dim and stride"). ``chunk(num_stages)`` yields the same slices with a constant split count;
    the rest of the stage is the stock code, so outputs are unchanged."""
    import torch

    def forward(self: Any, hidden_states: list, patch_height: int, patch_width: int) -> list:
        batch_size = hidden_states[0].shape[0]
        hidden_states = torch.cat(hidden_states, dim=0)
        cls_token, hidden_states = hidden_states[:, 0], hidden_states[:, 1:]
        total_batch_size, sequence_length, num_channels = hidden_states.shape
        hidden_states = hidden_states.reshape(total_batch_size, patch_height, patch_width, num_channels)
        hidden_states = hidden_states.permute(0, 3, 1, 2).contiguous()
        if self.readout_type == "project":
            hidden_states = hidden_states.flatten(2).permute((0, 2, 1))
            readout = cls_token.unsqueeze(dim=1).expand_as(hidden_states)
            hidden_states = torch.cat((hidden_states, readout), -1)
        elif self.readout_type == "add":
            hidden_states = hidden_states + cls_token.unsqueeze(-1)
        out = []
        for stage_idx, hidden_state in enumerate(hidden_states.chunk(len(self.layers), dim=0)):
            if self.readout_type == "project":
                hidden_state = self.readout_projects[stage_idx](hidden_state)
            hidden_state = hidden_state.permute(0, 2, 1).reshape(batch_size, -1, patch_height, patch_width)
            out.append(self.layers[stage_idx](hidden_state))
        return out

    stage = model.neck.reassemble_stage
    if type(stage).__name__ != "ZoeDepthReassembleStage":
        raise ValueError(f"zoedepth_reassemble_by_chunks: unexpected {type(stage).__name__}")
    stage.forward = types.MethodType(forward, stage)
    return model


def _complex_as_real_mode() -> Any:
    """A TorchFunctionMode computing complex ``conj`` and ``mul`` with real ops via view_as_real."""
    import torch
    from torch.overrides import TorchFunctionMode

    conj_funcs = (torch.conj, torch.Tensor.conj)
    mul_funcs = (torch.mul, torch.Tensor.mul, torch.Tensor.__mul__)

    class ComplexAsReal(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func in conj_funcs and args[0].is_complex():
                re, im = torch.view_as_real(args[0]).unbind(-1)
                return torch.view_as_complex(torch.stack([re, -im], dim=-1))
            if func in mul_funcs and len(args) == 2 and all(isinstance(a, torch.Tensor) and a.is_complex() for a in args):
                a, b = torch.view_as_real(args[0]).unbind(-1)
                c, d = torch.view_as_real(args[1]).unbind(-1)
                return torch.view_as_complex(torch.stack([a * c - b * d, a * d + b * c], dim=-1))
            return func(*args, **kwargs)

    return ComplexAsReal


def autoformer_complex_as_real(model: Any, config: Any) -> Any:
    """Autoformer's auto-correlation is ``irfft(rfft(q) * conj(rfft(k)))``; OpenVINO's PyTorch
    frontend converts rfft/irfft but not complex ``conj``/``mul``. Inside each attention module,
    compute those two with real arithmetic on ``view_as_real`` parts (the formulas torch uses;
    CPU outputs came out bitwise identical, and the tests hold them to 1e-6)."""
    mode = _complex_as_real_mode()
    patched = 0
    for module in model.modules():
        if type(module).__name__ != "AutoformerAttention":
            continue
        original = module.forward

        @functools.wraps(original)
        def forward(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with mode():
                return _original(*args, **kwargs)

        module.forward = forward
        patched += 1
    if not patched:
        raise ValueError(f"autoformer_complex_as_real: no AutoformerAttention in {type(model).__name__}")
    return model


PATCHES: dict = {
    "autoformer_complex_as_real": autoformer_complex_as_real,
    "zoedepth_reassemble_by_chunks": zoedepth_reassemble_by_chunks,
    "positive_dim_unfold": positive_dim_unfold,
    "forecast_without_training_loss": forecast_without_training_loss,
}
