"""Build a diffusion case's tiny components offline: seeded modules from configs, a tokenizer
trained on a fixed corpus, and the thin wrappers each backend converts or runs.

Each sub-model is wrapped in a module with positional tensor inputs and a flat tuple output, so the
same object runs eagerly on CPU/CUDA and converts to OpenVINO one graph per sub-model (the way
optimum splits a pipeline): text encoder(s), UNet, VAE decoder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..hardware.backends import Arrays
from .spec import DiffusionSpec, table

SPECIAL = ["<bos>", "<pad>", "<eos>", "<unk>"]  # ids 0/1/2/3: the text configs' bos/pad/eos


def tokenizer(max_length: int | None = None) -> Any:
    """A word-level BPE trained on the table's corpus (deterministic, < 0.1 s), wrapped as a
    transformers fast tokenizer so diffusers' own pipelines can use the very same object."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    cfg = table().tokenizer
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(cfg["corpus"], trainers.BpeTrainer(vocab_size=cfg["vocab_size"], special_tokens=SPECIAL, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>", special_tokens=[("<bos>", 0), ("<eos>", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=max_length or cfg["max_length"],
    )


def component(cid: str, seed: int) -> Any:
    """One module from its config table, weights drawn after `torch.manual_seed(seed)`."""
    import torch

    cfg = dict(table().components[cid])
    cls_name = cfg.pop("class")
    if cls_name.startswith("CLIP"):
        import transformers

        config = transformers.CLIPTextConfig(**cfg)
        torch.manual_seed(seed)
        module = getattr(transformers, cls_name)(config)
    else:
        import diffusers

        torch.manual_seed(seed)
        module = getattr(diffusers, cls_name)(**cfg)
    return module.eval()


def _wrappers() -> dict[str, type]:
    import torch

    class TextEncoder(torch.nn.Module):
        """input_ids -> (hidden states[, pooled projection]); SDXL takes the penultimate layer."""

        def __init__(self, encoder: Any, penultimate: bool, pooled: bool) -> None:
            super().__init__()
            self.encoder, self.penultimate, self.pooled = encoder, penultimate, pooled

        def forward(self, input_ids):
            out = self.encoder(input_ids, output_hidden_states=self.penultimate)
            hidden = out.hidden_states[-2] if self.penultimate else out.last_hidden_state
            return (hidden, out.text_embeds) if self.pooled else (hidden,)

    class UNet(torch.nn.Module):
        def __init__(self, unet: Any) -> None:
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states):
            return (self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0],)

    class UNetTextTime(torch.nn.Module):
        """SDXL's UNet: added conditioning from the pooled text embedding and the size/crop ids."""

        def __init__(self, unet: Any) -> None:
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
            cond = {"text_embeds": text_embeds, "time_ids": time_ids}
            return (self.unet(sample, timestep, encoder_hidden_states, added_cond_kwargs=cond, return_dict=False)[0],)

    class VAEDecoder(torch.nn.Module):
        def __init__(self, vae: Any) -> None:
            super().__init__()
            self.vae = vae

        def forward(self, latent_sample):
            return (self.vae.decode(latent_sample, return_dict=False)[0],)

    class VAERoundTrip(torch.nn.Module):
        """image -> (latent mean, reconstruction): the posterior's mode, so no sampling noise."""

        def __init__(self, vae: Any) -> None:
            super().__init__()
            self.vae = vae

        def forward(self, sample):
            mean = self.vae.encode(sample).latent_dist.mode()
            return mean, self.vae.decode(mean, return_dict=False)[0]

    return {c.__name__: c for c in (TextEncoder, UNet, UNetTextTime, VAEDecoder, VAERoundTrip)}


@dataclass
class Part:
    """One convertible sub-model: the wrapper, an example input and the names of its outputs."""

    module: Any
    example: Arrays
    outputs: list[str]


@dataclass
class Built:
    spec: DiffusionSpec
    modules: dict[str, Any]  # component id -> raw diffusers/transformers module
    parts: dict[str, Part]  # role -> wrapper (text_encoder, text_encoder_2, unet, vae_decoder, vae)
    tokenizer: Any | None
    params: int
    build_s: float

    @property
    def vae_scale(self) -> int:
        vae = self.modules.get(self.spec.vae)
        return 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1


def build(spec: DiffusionSpec) -> Built:
    """Every component of the case, each seeded with the case seed (as diffusers' tests do)."""
    import torch

    start = time.perf_counter()
    w = _wrappers()
    modules = {cid: component(cid, spec.seed) for cid in spec.components}
    rng = np.random.default_rng(spec.seed)
    lat = spec.latent_size
    parts: dict[str, Part] = {}
    tok = None
    if spec.kind == "pipeline":
        tok = tokenizer()
        ids = np.asarray(tok([spec.prompt], padding="max_length", max_length=tok.model_max_length, truncation=True)["input_ids"], dtype=np.int64)
        sdxl = spec.style == "sdxl"
        roles = ["text_encoder", "text_encoder_2"]
        for role, cid in zip(roles, spec.text_encoders, strict=False):
            pooled = sdxl and role == "text_encoder_2"
            parts[role] = Part(w["TextEncoder"](modules[cid], penultimate=sdxl, pooled=pooled).eval(), {"input_ids": ids}, ["0", "1"] if pooled else ["0"])
        unet = modules[spec.unet]
        ex = {
            "sample": rng.standard_normal((2, unet.config.in_channels, lat, lat)).astype(np.float32),
            "timestep": np.full((2,), 500.0, dtype=np.float32),
            "encoder_hidden_states": rng.standard_normal((2, ids.shape[1], unet.config.cross_attention_dim)).astype(np.float32),
        }
        if sdxl:
            ex["text_embeds"] = rng.standard_normal((2, modules[spec.text_encoders[1]].config.projection_dim)).astype(np.float32)
            ex["time_ids"] = np.tile(np.asarray([[64, 64, 0, 0, 64, 64]], dtype=np.float32), (2, 1))
        parts["unet"] = Part((w["UNetTextTime"] if sdxl else w["UNet"])(unet).eval(), ex, ["0"])
        vae = modules[spec.vae]
        z = rng.standard_normal((1, vae.config.latent_channels, lat, lat)).astype(np.float32)
        parts["vae_decoder"] = Part(w["VAEDecoder"](vae).eval(), {"latent_sample": z}, ["0"])
    elif spec.kind == "unet":
        unet = modules[spec.unet]
        ex = {
            "sample": rng.standard_normal((1, unet.config.in_channels, lat, lat)).astype(np.float32),
            "timestep": np.asarray([500.0], dtype=np.float32),
            "encoder_hidden_states": rng.standard_normal((1, 16, unet.config.cross_attention_dim)).astype(np.float32),
        }
        parts["unet"] = Part(w["UNet"](unet).eval(), ex, ["0"])
    else:
        vae = modules[spec.vae]
        size = lat * 2 ** (len(vae.config.block_out_channels) - 1)
        img = rng.uniform(-1.0, 1.0, (1, vae.config.in_channels, size, size)).astype(np.float32)
        parts["vae"] = Part(w["VAERoundTrip"](vae).eval(), {"sample": img}, ["0", "1"])
    params = sum(int(p.numel()) for m in modules.values() for p in m.parameters())
    torch.manual_seed(spec.seed)  # leave the global generator as a fresh process would have it
    return Built(spec, modules, parts, tok, params, time.perf_counter() - start)
