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
from functools import cache
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
# Derived entries (types only the Auto mappings name) get a broader shrink on top: MoE / MLA /
# Mamba sizes, intermediate sizes the grouped-mm expert kernel accepts (multiples of 4 in fp32),
# image sizes, per-stage lists, every nested sub-config, per-layer lists resized to the new depth.
# Hand-written entries keep SHRINK alone so their committed fingerprints stay what they are.
SHRINK_MORE: dict[str, Any] = {
    "num_key_value_heads": 4,  # plain multi-head: many families refuse grouped-query (MLA, ESMC, GLM)
    "intermediate_size": 32,
    "expand": 1,  # Mamba-2: hidden * expand == heads * head_dim (32 == 4 * 8)
    "codebook_dim": 32,
    "upsample_groups": 32,  # Mimi-style decoders: a depthwise upsampling conv over hidden_size channels
    "n_groups": 1,
    "use_timm_backbone": False,  # transformers' own (ResNet) backbone instead of timm's
    "use_pretrained_backbone": False,
    "out_hidden_size": 32,  # vision towers that project into the text width
    "audio_hidden_size": 32,  # speech-LM heads sized to the (shrunk) audio encoder
    "projection_hidden_size": 32,  # Kimi-K2.5's projector width
    "projector_hidden_size": 32,
    "text_hidden_size": 32,
    "hidden_size_global": 32,  # BLT's local encoder/decoder project into the global width
    "encoder_hash_byte_group_vocab": 1000,  # BLT's n-gram hash tables (500k rows each)
    "condition_dim": 32,
    "moe_intermediate_size": 32,
    "shared_expert_intermediate_size": 32,
    "expert_intermediate_size": 32,
    "ffn_dim": 32,
    "dim_feedforward": 32,
    "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_shared_experts": 1,
    "first_k_dense_replace": 1,
    "n_group": 1,
    "num_expert_group": 1,  # Bailing / Kimi-Linear's name for n_group
    "num_experts_per_token": 2,  # ... and for num_experts_per_tok
    "topk_group": 1,
    "kv_lora_rank": 16,
    "q_lora_rank": 16,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "v_head_dim": 8,
    "mamba_n_heads": 8,
    "mamba_d_head": 8,
    "mamba_d_state": 16,
    "mamba_d_ssm": 64,  # Falcon-H1: mamba_n_heads * mamba_d_head
    "mamba_n_groups": 1,
    "mamba_expand": 2,
    "ssm_state_size": 16,
    "state_size": 16,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 8,
    "linear_value_head_dim": 8,
    "projection_dim": 32,
    "hidden_dim": 32,
    "embed_dim": 32,
    "embedding_size": 32,
    "image_size": 32,
    "patch_size": 4,
    "num_encoder_layers": 2,
    "max_window_layers": 2,
    "sliding_window": 64,
    "mit_hidden_size": 32,  # X-CLIP's multi-frame integration transformer
    "mit_intermediate_size": 32,
    "num_frames": 4,  # video models: 4 frames (2 tubelets of 2)
    "frames_per_clip": 4,
    "hidden_sizes": None,  # per-stage list: 8, 16, 32, ... (see _stage_list)
    "depths": None,  # per-stage list: 1 each
}
TINY_RESNET: dict[str, Any] = {
    "model_type": "resnet", "embedding_size": 16, "hidden_sizes": [16, 32, 64, 128], "depths": [1, 1, 1, 1],
    "layer_type": "basic",
}
_KEEP_NESTED = ("out_features", "out_indices")
_DEPTH_KEYS = ("num_hidden_layers", "num_layers", "n_layer", "encoder_layers", "decoder_layers")
# fields whose default is a token id we must keep inside the tiny vocab (None stays None)
_TOKEN_FIELDS = {"pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"}
# None-default fields the shrink still sets: a None head_dim means "hidden // heads" to most
# families (the same 8 we set), but some read it as `getattr(config, "head_dim", ...)` and get None
_NONE_SHRINKS = _TOKEN_FIELDS | {"head_dim", "num_key_value_heads"}  # None kv heads = one per head
# ... and MoE sizes / vocabularies a config leaves None for the checkpoint to fill (DeepSeek-V2's
# top-k, dots.llm1's expert counts, ESM's vocabulary): the model cannot be built without them
_NONE_SHRINKS |= {"num_experts_per_tok", "n_routed_experts", "n_shared_experts", "vocab_size"}


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


def _sized(default: Any, value: Any) -> Any:
    """A scalar shrink value applied to a per-stage list keeps the list's length."""
    if isinstance(default, list | tuple) and default and all(isinstance(v, int) for v in default):
        return [value] * len(default)
    return value


def _stage_list(key: str, default: Any) -> Any:
    if not (isinstance(default, list | tuple) and default):
        return default
    if key == "hidden_sizes":  # 32, 64, ...: divisible by GroupNorm's usual 32 groups
        return [32 * 2**i for i in range(len(default))]
    return [1] * len(default)


def shrunk_more(defaults: dict[str, Any], nested: bool = False) -> dict[str, Any]:
    """The derived entries' shrink: SHRINK and SHRINK_MORE on every nested sub-config, token ids
    inside the tiny vocab (pad set even where the default is None: batched classification needs
    one), and per-layer lists cut to the new depth."""
    if nested and defaults.get("model_type") == "timm_backbone":  # timm is not installed: the same stages from transformers
        stages = len(defaults.get("out_indices") or [4])
        return {**TINY_RESNET, "out_features": [f"stage{i}" for i in (defaults.get("out_indices") or [4])][-stages:]}
    out: dict[str, Any] = {}
    old_depth = next((defaults[k] for k in _DEPTH_KEYS if isinstance(defaults.get(k), int)), None)
    new_depth = next((SHRINK[k] for k in _DEPTH_KEYS if k in defaults and k in SHRINK), None)
    stages = defaults.get("depths")
    if isinstance(stages, list) and len(stages) == old_depth:
        # Swin-style: the "layer" count is the stage count; stages stay (each 1 deep, see
        # _stage_list), so per-stage lists (num_heads) keep one entry per stage
        new_depth = old_depth
    for key, value in {**SHRINK, **SHRINK_MORE}.items():
        if key not in defaults or (key in _DEPTH_KEYS and new_depth == old_depth and isinstance(stages, list)):
            continue
        default = defaults[key]
        if isinstance(default, list) and old_depth and new_depth and len(default) == old_depth > 1 and not isinstance(value, list | type(None)):
            out[key] = [value] * new_depth  # one value per layer (e.g. Gemma-3n's intermediate sizes)
            continue
        if key in _TOKEN_FIELDS and defaults[key] is None and key != "pad_token_id":
            continue
        if "head_dim" in key and default == 0 and not isinstance(default, bool):
            continue  # a zero head dim switches a part off (GLM-5's NoPE attention: qk_rope_head_dim = 0)
        if value is None:
            out[key] = _stage_list(key, defaults[key])
        elif isinstance(defaults[key], bool) != isinstance(value, bool) or (defaults[key] is None and key not in _NONE_SHRINKS):
            continue
        else:
            out[key] = _sized(defaults[key], value)
    for key, value in defaults.items():
        if isinstance(value, dict) and ("model_type" in value or key in SUB_CONFIGS):
            out[key] = shrunk_more(value, nested=True)
            if "model_type" in value:  # a nested config dict is rebuilt by its model_type
                out[key].setdefault("model_type", value["model_type"])
            for stage_key in _KEEP_NESTED:  # the stages a backbone hands on (RT-DETR: 3), not its class default (1)
                if isinstance(value.get("depths"), list) and isinstance(value.get(stage_key), list) and stage_key not in out[key]:
                    # (stage backbones only: their stages survive the shrink; a ViT's "stage12" does not)
                    out[key][stage_key] = value[stage_key]
            if "encoder_in_channels" in defaults:  # a detector neck reads the backbone's channels
                out[key].update(_stage_channels(value, out[key]))
            if stages := _layer_stages(value, out[key]):
                out[key] = {**_nested_choices(value, out[key]), **out[key], **stages}
                width = value.get("hidden_size")
                for k, v in defaults.items():  # the neck's input width is the backbone's (DPT's reassemble_hidden_size)
                    if k.endswith("hidden_size") and k not in out and v == width and "hidden_size" in out[key]:
                        out[k] = out[key]["hidden_size"]
    rope = defaults.get("rope_parameters")
    if isinstance(rope, dict) and isinstance(rope.get("mrope_section"), list) and len(rope["mrope_section"]) == 3:
        out["rope_parameters"] = {**rope, "mrope_section": [2, 1, 1]}  # sums to head_dim // 2 = 4
    elif isinstance(rope, dict) and rope.get("rope_type") not in (None, "axial") and _modeling_reads(defaults.get("model_type"), '"mrope_section"'):
        out["rope_parameters"] = {**rope, "mrope_section": _mrope_section(defaults, out, rope)}
    if isinstance(defaults.get("feat_strides"), list | tuple) and isinstance(defaults.get("num_queries"), int):
        # RT-DETR family (D-FINE, DEIMv2, PP-DocLayout): the decoder takes its top num_queries (300)
        # anchors from the encoder's maps; a 32 px picture has 21 over strides 8 / 16 / 32
        out["num_queries"] = 16
    tubelet = defaults.get("tubelet_size")
    if isinstance(tubelet, list) and len(tubelet) == 3 and "patch_size" in out:  # (frames, h, w) per video patch
        out["tubelet_size"] = [min(int(tubelet[0]), 2), out["patch_size"], out["patch_size"]]
    vocab = out.get("vocab_size") or (out.get("text_config") or {}).get("vocab_size")
    special = sorted(
        k for k, v in defaults.items()
        if vocab and isinstance(v, int) and not isinstance(v, bool) and v >= vocab and k not in out
        and (k.endswith("_token_id") or k.endswith("_token_index"))
    )
    for i, key in enumerate(special):  # image / audio / video placeholders: top of the tiny vocab
        out[key] = vocab - 1 - i
    for key, value in defaults.items():
        if (
            old_depth and new_depth and key not in out and isinstance(value, list) and len(value) == old_depth
            and len(value) > new_depth and ("layer" in key or all(isinstance(v, str | bool) for v in value))
        ):
            out[key] = _keep_kinds(value, new_depth)
    return out


def _layer_stages(default: dict[str, Any], shrunk: dict[str, Any]) -> dict[str, Any]:
    """A ViT-style nested backbone (one stage per layer) that hands on several layers (DPT-style
    necks take 4): keep that many layers, and hand on the last ones, so the neck gets as many
    feature maps as it has sizes (its "stage12" does not exist in the shrunk model)."""
    indices, depth = default.get("out_indices"), shrunk.get("num_hidden_layers")
    names = default.get("stage_names")
    if not (isinstance(indices, list) and len(indices) > 1 and isinstance(depth, int) and isinstance(names, list)):
        return {}
    if isinstance(default.get("depths"), list) or len(names) != default.get("num_hidden_layers", -1) + 1:
        return {}  # stage backbones keep their stages (see _KEEP_NESTED)
    depth = max(depth, len(indices))
    keep = list(range(depth - len(indices) + 1, depth + 1))
    return {"num_hidden_layers": depth, "out_indices": keep, "out_features": [f"stage{i}" for i in keep]}


def _stage_channels(default: dict[str, Any], shrunk: dict[str, Any]) -> dict[str, Any]:
    """HGNet-V2 builds its stages from ``stage_*_channels`` but reports ``[embedding_size] +
    hidden_sizes`` as its channels (equal in real checkpoints): once the shrink cuts
    hidden_sizes, a D-FINE-style neck sized from the report gets the stages' unshrunk maps.
    The stages follow the shrunk sizes instead."""
    sizes, outs = shrunk.get("hidden_sizes"), default.get("stage_out_channels")
    if not (isinstance(sizes, list) and isinstance(outs, list) and len(outs) == len(sizes)):
        return {}
    ins = default.get("stage_in_channels") or [sizes[0]]
    return {
        "stage_out_channels": list(sizes),
        "stage_in_channels": [ins[0], *sizes[:-1]],
        "stage_mid_channels": [max(8, s // 2) for s in sizes],
    }


_UNSET = object()
_NOT_CHOICES = {"transformers_version", "architectures", "stage_names", "out_features", "out_indices", "id2label", "label2id"}


def _nested_choices(default: dict[str, Any], shrunk: dict[str, Any]) -> dict[str, Any]:
    """What a parent's default sub-config sets apart from that sub-config class's own defaults
    (Depth Anything's DINOv2 hands on un-reshaped tokens, RF-DETR's has no register tokens): a
    nested dict is rebuilt from the shrink alone, so these would silently fall back otherwise.
    (Applied with _layer_stages only: elsewhere the class defaults are what committed
    fingerprints were measured with.)"""
    own = _class_defaults(str(default.get("model_type")))
    if own is None:
        return {}
    return {
        k: v for k, v in default.items()
        if k not in shrunk and k not in _NOT_CHOICES and not isinstance(v, dict) and own.get(k, _UNSET) != v
    }


@cache
def _class_defaults(model_type: str) -> dict[str, Any] | None:
    from transformers import CONFIG_MAPPING

    try:
        return CONFIG_MAPPING[model_type]().to_dict()
    except Exception:  # noqa: BLE001 - a config that cannot default-construct has no defaults to compare
        return None


@cache
def _modeling_reads(model_type: str | None, needle: str) -> bool:
    """Whether the modeling source of ``model_type`` mentions ``needle``: M-RoPE text models read
    ``rope_parameters.get("mrope_section", <full-size default>)``, a default the config never
    shows, so the shrink must set it (read as text: importing every modeling module is slow)."""
    import importlib.util

    from transformers import CONFIG_MAPPING

    if not model_type or model_type not in CONFIG_MAPPING:
        return False
    module = CONFIG_MAPPING[model_type].__module__.replace(".configuration_", ".modeling_")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return False
    with open(spec.origin, encoding="utf-8") as fh:
        return needle in fh.read()


def _mrope_section(defaults: dict[str, Any], out: dict[str, Any], rope: dict[str, Any]) -> list[int]:
    """Three M-RoPE sections (time, height, width) summing to half the shrunk rotary width."""
    heads = out.get("num_attention_heads") or defaults.get("num_attention_heads") or 4
    head_dim = out.get("head_dim") or (out.get("hidden_size") or defaults.get("hidden_size") or 32) // heads
    factor = rope.get("partial_rotary_factor") or defaults.get("partial_rotary_factor") or 1.0
    half = int(head_dim * factor) // 2
    return [half - 2 * (half // 4), half // 4, half // 4]


def _keep_kinds(value: list[Any], n: int) -> list[Any]:
    """Cut a per-layer list to ``n`` entries, keeping one of each kind the model mixes (e.g. a
    sliding and a full attention layer) so the shrunk model still runs every layer type."""
    kinds: list[Any] = []
    for v in value:
        if v not in kinds:
            kinds.append(v)
    picked = kinds[:n]
    return picked + [value[i] for i in range(n - len(picked))]


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
    kwargs = (shrunk_more(defaults) if spec.derived else _shrunk(defaults)) if spec.shrink else {}
    kwargs = _merge(kwargs, spec.config)
    if task_spec is not None:
        kwargs = _merge(kwargs, task_spec.config)
    kwargs["use_cache"] = False
    config = cls(**kwargs)
    for sub in SUB_CONFIGS:
        subcfg = getattr(config, sub, None)
        if subcfg is not None and hasattr(subcfg, "use_cache"):
            subcfg.use_cache = False
    if config.model_type not in (spec.name, alias_of(spec.name)):
        raise AssertionError(f"registry entry {spec.name!r} built config of type {config.model_type!r}")
    return config


def alias_of(name: str) -> str:
    """The config type an alias ``model_type`` maps to (GPT-SW3 is built from GPT2Config), else itself."""
    from transformers import CONFIG_MAPPING

    return getattr(CONFIG_MAPPING[name], "model_type", name) if name in CONFIG_MAPPING else name


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
    from .packed import wrap

    model = wrap(model)
    if model.config.model_type not in (spec.name, alias_of(spec.name)):
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
    from .packed import wrap

    model = wrap(model)
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
