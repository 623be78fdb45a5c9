"""Model patches for audio models (see patches/__init__.py)."""

from __future__ import annotations

import functools
from typing import Any


def drop_training_loss(model: Any, config: Any) -> Any:
    """DAC's forward always returns its VQ training loss: an MSE averaged over the whole batch and
    broadcast to shape (batch,), so row i of a batch can never equal a single run of row i. Drop
    that field from the returned output (inference does not use it); every other output — codes,
    latents, reconstruction — is the stock forward's, unchanged."""
    original = model.forward

    @functools.wraps(original)
    def forward(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        if isinstance(out, tuple):
            return out[1:]
        return type(out)(**{k: v for k, v in out.items() if k != "loss"})

    model.forward = forward
    return model


def length_mask_without_index_put(model: Any, config: Any) -> Any:
    """Speech2Text builds the subsampled frame mask with ``mask[(arange(b), lengths - 1)] = 1``
    followed by flip/cumsum/flip; OpenVINO's TorchScript frontend converts that index_put
    wrongly (every mask value differs). ``arange(L) < lengths[:, None]`` is the same mask for
    every valid length, so swap it in on each module that owns the method."""
    import types

    import torch

    def mask(self: Any, feature_vector_length: int, attention_mask: torch.Tensor) -> torch.Tensor:
        if len(attention_mask.shape) > 2:
            attention_mask = attention_mask[:, :, -1]
        lengths = self._get_feat_extract_output_lengths(attention_mask.sum(-1))
        positions = torch.arange(feature_vector_length, device=attention_mask.device)
        return (positions[None, :] < lengths[:, None]).long()

    for module in model.modules():
        if hasattr(module, "_get_feature_vector_attention_mask"):
            module._get_feature_vector_attention_mask = types.MethodType(mask, module)
    return model


def mimi_explicit_attention_mask(model: Any, config: Any) -> Any:
    """Mimi calls its encoder/decoder transformers without an attention mask; transformers then
    probes position_ids for packed sequences with ``torch.diff``, which OpenVINO's TorchScript
    frontend cannot convert (and torch.export stops on the conv padding's data-dependent sizes).
    Passing the all-ones mask that "no mask" means skips the probe; the causal sliding-window
    mask, and so every output, is unchanged."""
    import torch

    for name in ("encoder_transformer", "decoder_transformer"):
        sub = getattr(model, name)
        original = sub.forward

        @functools.wraps(original)
        def forward(hidden_states: Any = None, attention_mask: Any = None, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if attention_mask is None and hidden_states is not None:
                attention_mask = torch.ones(hidden_states.shape[:2], dtype=torch.long, device=hidden_states.device)
            return _original(hidden_states, attention_mask, *args, **kwargs)

        sub.forward = forward
    return model


def seed_codebooks(model: Any, config: Any) -> Any:
    """Initialisation, not convertibility: EnCodec/Mimi keep their VQ codebooks in buffers
    (learned by EMA, not by gradients), so the harness's seeded *parameter* init leaves them
    all-zero and every frame quantizes to code 0 — a codec test would then compare constant
    codes. Fill each codebook from N(0, 1) with a generator seeded by the buffer's name (as
    `seeded_init` does for parameters), keeping EMA state consistent (cluster sizes 1, so the
    effective codebook is exactly the drawn one). Changes outputs by design: codes become real."""
    import zlib

    import torch

    seeded = 0
    with torch.no_grad():
        for name, module in model.named_modules():
            if type(module).__name__ not in ("EncodecEuclideanCodebook", "MimiEuclideanCodebook"):
                continue
            key = "embed" if hasattr(module, "embed_avg") else "embed_sum"
            target = getattr(module, key)
            gen = torch.Generator().manual_seed(zlib.crc32(f"codebook:{name}".encode()))
            value = torch.randn(target.shape, generator=gen, dtype=torch.float32)
            target.copy_(value)
            if key == "embed":  # EnCodec: embed == embed_avg / cluster_size
                module.embed_avg.copy_(value)
                module.cluster_size.fill_(1.0)
            else:  # Mimi: embed == embed_sum / cluster_usage, cached on first use
                module.cluster_usage.fill_(1.0)
                module._embed = None
            seeded += 1
    if not seeded:
        raise ValueError(f"seed_codebooks: no Euclidean codebook in {type(model).__name__}")
    return model


def vae_mean(model: Any, config: Any) -> Any:
    """VibeVoice's acoustic tokenizer samples its latents (``sample=True``: mean + N(0, vae_std)
    noise, unseeded) unless told not to: a batch row would never equal its single run. Call it
    with ``sample=False``, the documented deterministic mode (the VAE mean), keeping every
    other argument as given."""
    original = model.forward

    @functools.wraps(original)
    def forward(*args: Any, sample: bool = False, **kwargs: Any) -> Any:
        return original(*args, sample=sample, **kwargs)

    model.forward = forward
    return model


PATCHES: dict = {
    "vae_mean": vae_mean,
    "seed_codebooks": seed_codebooks,
    "mimi_explicit_attention_mask": mimi_explicit_attention_mask,
    "drop_training_loss": drop_training_loss,
    "length_mask_without_index_put": length_mask_without_index_put,
}
