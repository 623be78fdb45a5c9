"""The denoising loop, written once over backend-neutral sub-model callables.

`run` takes one prepared callable per role (CPU eager, CUDA, or a compiled OpenVINO graph; each
maps named numpy arrays to named numpy arrays) and follows diffusers' StableDiffusionPipeline /
StableDiffusionXLPipeline step for step: prompt encoding, classifier-free guidance, a seeded
scheduler and generator, VAE decode and the same [0, 1] post-processing. Swapping the callables
is all that changes between backends, so parity compares like with like.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..hardware.backends import Arrays
from .build import Built

Run = Callable[[Arrays], Arrays]


@dataclass
class Result:
    arrays: dict[str, np.ndarray]
    tokens: np.ndarray | None = None


def _ids(built: Built, text: str) -> np.ndarray:
    tok = built.tokenizer
    enc = tok([text], padding="max_length", max_length=tok.model_max_length, truncation=True)
    return np.asarray(enc["input_ids"], dtype=np.int64)


def encode_prompt(built: Built, parts: Mapping[str, Run], text: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(prompt embeddings, pooled embedding or None, input ids). SDXL concatenates both encoders'
    penultimate hidden states and takes the pooled projection from the second."""
    ids = _ids(built, text)
    first = parts["text_encoder"]({"input_ids": ids})["0"]
    if built.spec.style != "sdxl":
        return first, None, ids
    second = parts["text_encoder_2"]({"input_ids": ids})
    return np.concatenate([first, second["0"]], axis=-1), second["1"], ids


def scheduler(built: Built):
    import diffusers

    spec = built.spec
    return getattr(diffusers, spec.scheduler).from_config(spec.scheduler_config)


def initial_latents(built: Built, generator) -> np.ndarray:
    import torch

    unet = built.modules[built.spec.unet]
    lat = built.spec.latent_size
    return torch.randn((1, unet.config.in_channels, lat, lat), generator=generator, dtype=torch.float32)


def run_pipeline(built: Built, parts: Mapping[str, Run], latents=None) -> Result:
    """Text to image in `spec.steps` steps; `latents` overrides the seeded initial noise."""
    import torch

    spec = built.spec
    generator = torch.Generator("cpu").manual_seed(spec.seed)
    cond, pooled, ids = encode_prompt(built, parts, spec.prompt)
    uncond, pooled_neg, _ = encode_prompt(built, parts, spec.negative_prompt)
    cfg = spec.guidance_scale > 1.0
    embeds = np.concatenate([uncond, cond]) if cfg else cond
    sched = scheduler(built)
    sched.set_timesteps(spec.steps)
    if latents is None:
        latents = initial_latents(built, generator)
    latents = latents * sched.init_noise_sigma
    extra: Arrays = {}
    if spec.style == "sdxl":
        size = spec.latent_size * built.vae_scale
        time_ids = np.asarray([[size, size, 0, 0, size, size]], dtype=np.float32)  # original, crop, target
        extra["text_embeds"] = np.concatenate([pooled_neg, pooled]) if cfg else pooled
        extra["time_ids"] = np.concatenate([time_ids, time_ids]) if cfg else time_ids
    unet = parts["unet"]
    for t in sched.timesteps:
        x = torch.cat([latents] * 2) if cfg else latents
        x = sched.scale_model_input(x, t)
        feed = {"sample": x.numpy(), "timestep": np.full((x.shape[0],), float(t), dtype=np.float32), "encoder_hidden_states": embeds, **extra}
        noise = torch.from_numpy(unet(feed)["0"])
        if cfg:
            noise_uncond, noise_text = noise.chunk(2)
            noise = noise_uncond + spec.guidance_scale * (noise_text - noise_uncond)
        latents = sched.step(noise, t, latents, generator=generator, return_dict=False)[0]
    vae = built.modules[spec.vae]
    final = latents.numpy().astype(np.float32)
    decoded = parts["vae_decoder"]({"latent_sample": final / np.float32(vae.config.scaling_factor)})["0"]
    image = np.clip(decoded / 2 + 0.5, 0.0, 1.0).transpose(0, 2, 3, 1)  # diffusers' "np" output
    return Result({"prompt_embeds": cond, "latents": final, "image": image}, tokens=ids)


def run(built: Built, parts: Mapping[str, Run], inputs: Arrays | None = None) -> Result:
    """One case's outputs: the whole pipeline, or a standalone UNet / VAE on `inputs` (default:
    the seeded example the sub-model was built with)."""
    kind = built.spec.kind
    if kind == "pipeline":
        return run_pipeline(built, parts)
    role = "unet" if kind == "unet" else "vae"
    feed = inputs if inputs is not None else built.parts[role].example
    out = parts[role](feed)
    if kind == "unet":
        return Result({"noise_pred": out["0"]})
    return Result({"latent_mean": out["0"], "reconstruction": out["1"]})


def image_uint8(image: np.ndarray) -> np.ndarray:
    """The picture a user would save (diffusers' numpy_to_pil rounding)."""
    return (image * 255).round().astype(np.uint8)
