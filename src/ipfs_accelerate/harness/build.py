"""Build the model a case runs: a tiny seeded random model of the real architecture, or a
pretrained checkpoint from a local directory / HF cache.

Tiny models: the config class's defaults, shrunk by a generic table (only fields the config has),
then the registry's overrides, then `use_cache=False` (set before building: T5 copies its config).
Weights come from a seeded per-parameter init keyed by parameter name, so fingerprints do not
depend on transformers' `_init_weights` and stay stable across upgrades and processes.
"""

from __future__ import annotations

import copy
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from ..registry import ModelSpec, TaskSpec
from . import assets

# Generic shrink: applied to a config (and its sub-configs) only where the field exists.
SHRINK: dict[str, Any] = {
    "vocab_size": 1000,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "intermediate_size": 37,
    "max_position_embeddings": 128,
    "n_positions": 128,
    "n_embd": 32,
    "n_layer": 2,
    "n_head": 4,
    "n_inner": 37,
    "d_model": 32,
    "d_ff": 37,
    "d_kv": 8,
    "num_layers": 2,
    "num_heads": 4,
    "num_decoder_layers": 2,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 37,
    "decoder_ffn_dim": 37,
    "num_local_experts": 4,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "pad_token_id": assets.PAD,
    "bos_token_id": assets.BOS,
    "eos_token_id": assets.EOS,
    "decoder_start_token_id": assets.BOS,
}
SUB_CONFIGS = ("text_config", "vision_config", "audio_config", "encoder", "decoder", "backbone_config")
# fields whose default is a token id we must keep inside the tiny vocab (None stays None)
_TOKEN_FIELDS = {"pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"}


@dataclass
class Built:
    """A built model plus what its skill needs to make inputs."""

    model: Any
    config: Any
    tokenizer: Any = None
    processor: Any = None
    build_s: float = 0.0
    params: int = 0
    source: str = "tiny-random"
    extras: dict[str, Any] = field(default_factory=dict)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _shrunk(defaults: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in SHRINK.items():
        if key in defaults:
            if key in _TOKEN_FIELDS and defaults[key] is None:
                continue
            out[key] = value
    for sub in SUB_CONFIGS:
        if isinstance(defaults.get(sub), dict):
            out[sub] = _shrunk(defaults[sub])
    return out


def config_class(spec: ModelSpec):
    import transformers
    from transformers import CONFIG_MAPPING

    if spec.config_class:
        return getattr(transformers, spec.config_class)
    return CONFIG_MAPPING[spec.name]


def tiny_config(spec: ModelSpec, task_spec: TaskSpec | None = None):
    """Default config of `spec.name`, generically shrunk, registry overrides on top (model, then task)."""
    cls = config_class(spec)
    defaults = cls().to_dict()
    kwargs = _shrunk(defaults) if spec.shrink else {}
    kwargs = _merge(kwargs, spec.config)
    if task_spec is not None:
        kwargs = _merge(kwargs, task_spec.config)
    kwargs["use_cache"] = False
    config = cls(**kwargs)
    for sub in SUB_CONFIGS:
        subcfg = getattr(config, sub, None)
        if subcfg is not None and hasattr(subcfg, "use_cache"):
            subcfg.use_cache = False
    if config.model_type != spec.name:
        raise AssertionError(f"registry entry {spec.name!r} built config of type {config.model_type!r}")
    return config


def seeded_init(model, seed: int = 0, std: float | None = None) -> None:
    """Overwrite every parameter from a generator seeded by (seed, parameter name).

    Matrices get N(0, std) with std = 1/sqrt(fan_in) unless the registry sets one (keeps
    activations O(1) through BatchNorm/LayerNorm stacks, where 0.02 collapses outputs to ~0);
    1-D `*weight` (norm scales) get 1 + N(0, 0.02); other vectors and scalars get N(0, 0.02).
    Sinusoidal position tables (`*SinusoidalPositionalEmbedding` modules: Pegasus, Marian, time
    series) are fixed functions of the architecture, not learned weights: they keep the values
    the constructor computed (randomising them made Pegasus numerically identical to BlenderBot).
    """
    import torch

    fixed = {
        f"{mod_name}.{p_name}" if mod_name else p_name
        for mod_name, module in model.named_modules()
        if "sinusoidalpositionalembedding" in type(module).__name__.lower()
        for p_name, _ in module.named_parameters(recurse=False)
    }
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in fixed:
                continue
            gen = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{name}".encode()))
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float32)
            if param.dim() >= 2:
                fan_in = max(1, param[0].numel())
                scale = std if std is not None else fan_in**-0.5
                value = noise * scale
            elif name.endswith("weight") and param.dim() == 1:
                value = 1.0 + 0.02 * noise
            else:
                value = 0.02 * noise
            param.copy_(value.to(param.dtype))


def head_class(task_spec: TaskSpec):
    import transformers

    try:
        return getattr(transformers, task_spec.head)
    except AttributeError as exc:
        raise AttributeError(f"transformers {transformers.__version__} has no class {task_spec.head!r}") from exc


def build_tiny(spec: ModelSpec, task_spec: TaskSpec, *, seed: int = 0) -> Built:
    import torch

    start = time.perf_counter()
    config = tiny_config(spec, task_spec)
    torch.manual_seed(seed)
    model = head_class(task_spec)(config)
    seeded_init(model, seed=seed, std=spec.init_std)
    model.eval()
    if spec.patches:
        from .patches import apply

        model = apply(spec.patches, model, config)
    if model.config.model_type != spec.name:
        raise AssertionError(f"built {model.config.model_type!r}, expected {spec.name!r}")
    elapsed = time.perf_counter() - start
    return Built(
        model=model,
        config=model.config,
        tokenizer=assets.tokenizer(),
        build_s=elapsed,
        params=sum(p.numel() for p in model.parameters()),
    )


def build_pretrained(spec: ModelSpec, task_spec: TaskSpec, model_id: str) -> Built:
    """Load `model_id` (a local folder, or a repo id already in the HF cache) without network."""
    from transformers import AutoConfig, AutoTokenizer

    start = time.perf_counter()
    config = AutoConfig.from_pretrained(model_id, local_files_only=True)
    if config.model_type != spec.name:
        raise AssertionError(f"{model_id} is a {config.model_type!r} checkpoint, not {spec.name!r}")
    model = head_class(task_spec).from_pretrained(model_id, local_files_only=True, **task_spec.config)
    model.eval()
    if spec.patches:
        from .patches import apply

        model = apply(spec.patches, model, config)
    try:
        tok = AutoTokenizer.from_pretrained(model_id, local_files_only=True)
    except (OSError, ValueError):
        tok = assets.tokenizer()
    return Built(
        model=model,
        config=model.config,
        tokenizer=tok,
        build_s=time.perf_counter() - start,
        params=sum(p.numel() for p in model.parameters()),
        source=f"pretrained:{model_id}",
    )
