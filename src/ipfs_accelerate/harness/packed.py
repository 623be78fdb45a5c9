"""Packed-patch vision models (Qwen2-VL style) behind a batch-first interface.

Qwen2/2.5/3-VL, GLM-4V, Kimi, HunYuan-VL, ... vision towers take every image's patches
concatenated into one ``(total_patches, C*T*P*P)`` tensor plus a ``grid_thw`` row per image, and
their vision-language models take the same packed ``pixel_values`` with ``image_grid_thw``. A
packed tensor has no batch dimension, so the framework's checks (row i of a batch equals image i
run alone) and graph conversion with a batch axis cannot see it. The wrappers here take
``pixel_values`` as ``(batch, patches_per_image, ...)``, pack it before calling the real model and
(for towers) unpack the outputs to ``(batch, tokens_per_image, dim)``. Every image in a batch has
the same grid, so the reshapes are exact; the model's own code runs unchanged in between.

Which models need it is read from the forward signature (a ``grid_thw`` / ``image_grid_thw``
argument), not from a list of types, so a new family with the same interface is covered too.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from . import assets

TOWER_GRIDS = ("grid_thw", "image_grid_thw")
VLM_GRIDS = ("image_grid_thw", "image_grid_hw")  # (t, h, w) per image, or (h, w) for still-image models (Nemotron-H Omni)
PATCH_INPUTS = ("hidden_states", "pixel_values")
# config fields, first present wins (vision_config first, then the config itself)
_CHANNELS = ("in_channels", "num_channels", "in_chans")
_TEMPORAL = ("temporal_patch_size", "patch_temporal")
_PATCH = ("patch_size", "spatial_patch_size")
_MERGE = ("spatial_merge_size", "merge_size", "merge_kernel_size")


def required(fn: Any) -> list[str]:
    """Names of ``fn``'s parameters that have no default."""
    params = inspect.signature(fn).parameters.values()
    return [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]


def kind(model: Any) -> str | None:
    """'tower' (forward requires packed patches + a grid), 'vlm' (a text model whose forward
    takes ``image_grid_thw`` / ``image_grid_hw``), or None."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    req = required(model.forward)
    if any(g in req for g in TOWER_GRIDS) and req and req[0] in PATCH_INPUTS:
        return "tower"
    if any(g in params for g in VLM_GRIDS) and "pixel_values" in params and "input_ids" in params:
        return "vlm"
    return None


def _vision_config(cfg: Any, depth: int = 0) -> Any:
    """The vision sub-config, also when nested one level down (ColQwen2's ``vlm_config``)."""
    if getattr(cfg, "vision_config", None) is not None:
        return cfg.vision_config
    if depth == 0:
        for value in vars(cfg).values():
            if hasattr(value, "to_dict") and (found := _vision_config(value, 1)) is not None:
                return found
    return None


def _field(cfg: Any, names: tuple[str, ...], default: int) -> int:
    for owner in (_vision_config(cfg), cfg):
        for name in names:
            value = getattr(owner, name, None) if owner is not None else None
            if value is not None:
                return int(value[0] if isinstance(value, list | tuple) else value)
    return default


def geometry(config: Any) -> dict[str, int]:
    """Channels, temporal patch, patch size, merge size and the patch grid of one test image
    (a multiple of the merge size, at least 4 patches a side)."""
    merge = _field(config, _MERGE, 2)
    side = merge * max(2, -(-4 // merge))
    return {
        "channels": _field(config, _CHANNELS, 3),
        "temporal": _field(config, _TEMPORAL, 1),
        "patch": _field(config, _PATCH, 14),
        "merge": merge,
        "grid_h": side,
        "grid_w": side,
    }


def patches(images: np.ndarray, geo: dict[str, int]) -> np.ndarray:
    """(B, C, H, W) pixels -> (B, patches, C*T*P*P) in the Qwen2-VL image processor's order
    (a still image repeated over the temporal patch; patches grouped by merge window)."""
    b, c, _, _ = images.shape
    t, p, m, gh, gw = geo["temporal"], geo["patch"], geo["merge"], geo["grid_h"], geo["grid_w"]
    x = np.repeat(images[:, None], t, axis=1)  # (B, T, C, H, W)
    x = x.reshape(b, t, c, gh // m, m, p, gw // m, m, p)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(b, gh * gw, c * t * p * p), dtype=np.float32)


def naflex(images: np.ndarray, patch: int) -> np.ndarray:
    """(B, C, H, W) pixels -> (B, patches, P*P*C) in the SigLIP-2 (NaFlex) processor's order:
    patches row by row, each patch's pixels row by row with channels last."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch).transpose(0, 2, 4, 3, 5, 1)
    return np.ascontiguousarray(x.reshape(b, (h // patch) * (w // patch), patch * patch * c), dtype=np.float32)


def inputs(model: Any, batch: int, offset: int = 0) -> dict[str, np.ndarray]:
    """Packed-patch inputs for ``batch`` distinct test pictures, batch first: ``pixel_values``
    (B, patches, C*T*P*P) or the layout the tower probed to accept, and a grid row per image."""
    import transformers

    geo = geometry(model.config)
    h, w = geo["grid_h"] * geo["patch"], geo["grid_w"] * geo["patch"]
    proc_cls = getattr(transformers, "ViTImageProcessorPil", None) or transformers.ViTImageProcessor
    proc = proc_cls(size={"height": h, "width": w})
    pictures = [assets.image((h + h // 2, w + w // 4), index=i + offset) for i in range(batch)]
    pv = patches(np.asarray(proc(images=pictures, return_tensors="np")["pixel_values"], dtype=np.float32), geo)
    layout = getattr(model, "patch_layout", "flat")
    if layout == "image":  # towers whose patch embedding is a conv over (C, [T,] P, P)
        shape = (geo["channels"], geo["patch"], geo["patch"]) if geo["temporal"] == 1 else (
            geo["channels"], geo["temporal"], geo["patch"], geo["patch"])
        pv = pv.reshape(batch, pv.shape[1], *shape)
    grid = np.tile(np.array([[1, geo["grid_h"], geo["grid_w"]]], dtype=np.int64), (batch, 1))
    out = {"pixel_values": pv, "image_grid_thw": grid}
    if "merge_sizes" in inspect.signature(model.forward).parameters:
        out["merge_sizes"] = np.full((batch,), geo["merge"], dtype=np.int64)
    return out


def _wrap_classes() -> tuple[type, type]:
    import torch

    class _Packed(torch.nn.Module):
        """Shared: attribute look-ups the wrapper lacks (config, generation_config, ...) go to the model."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self._modules["inner"], name)

    class PackedTower(_Packed):
        """Vision tower: (B, N, ...) patches + (B, 3) grids in; (B, tokens, dim) outputs out."""

        packed_kind = "tower"
        # tracing unrolls the tower's loop over the grid rows: an IR is only valid for these values
        static_inputs = ("image_grid_thw", "merge_sizes")

        def __init__(self, inner: Any) -> None:
            super().__init__(inner)
            params = list(inspect.signature(inner.forward).parameters)
            self.patch_arg = next(p for p in params if p in PATCH_INPUTS)
            self.grid_arg = next(p for p in params if p in TOWER_GRIDS)

        def forward(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor, merge_sizes: torch.Tensor | None = None) -> dict[str, Any]:
            batch = pixel_values.shape[0]
            kw: dict[str, Any] = {self.patch_arg: pixel_values.flatten(0, 1), self.grid_arg: image_grid_thw}
            if merge_sizes is not None:
                kw["merge_sizes"] = merge_sizes
            out = self.inner(**kw)
            items = out.items() if hasattr(out, "items") else [("last_hidden_state", out[0])]
            flat: dict[str, Any] = {}
            for name, value in items:
                values = value if isinstance(value, list | tuple) else [value]
                for i, v in enumerate(values):
                    if isinstance(v, torch.Tensor) and v.dim() >= 2 and v.numel() % batch == 0:
                        flat[name if len(values) == 1 else f"{name}.{i}"] = v.reshape(batch, -1, v.shape[-1])
            return flat

    class PackedVLM(_Packed):
        """Vision-language model: batch-first patches are packed before the model sees them."""

        packed_kind = "vlm"
        static_inputs = ("image_grid_thw",)  # see PackedTower

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor | None = None,
            pixel_values: torch.Tensor | None = None,
            image_grid_thw: torch.Tensor | None = None,
        ) -> Any:
            kw: dict[str, Any] = {}
            params = inspect.signature(self.inner.forward).parameters
            if pixel_values is not None:
                kw = self._image_kw(pixel_values, image_grid_thw, params)
            if "mm_token_type_ids" in params:  # 1 marks image placeholders (M-RoPE positions), 0 text
                kw["mm_token_type_ids"] = (input_ids == int(self.inner.config.image_token_id)).long()
            return _batch_first(self.inner(input_ids=input_ids, attention_mask=attention_mask, **kw), input_ids.shape[0])

        def _image_kw(self, pixel_values: torch.Tensor, grid: torch.Tensor, params: Any) -> dict[str, Any]:
            kw: dict[str, Any] = {"pixel_values": pixel_values.flatten(0, 1), "image_grid_thw": grid}
            if "image_grid_thw" not in params:  # a (h, w) grid: the wrapper's (t, h, w) rows without t (t = 1)
                kw["image_grid_hw"] = kw.pop("image_grid_thw")[:, 1:]
            if "image_merge_sizes" in params:  # VideoLLaMA-3: one merge size per image
                kw["image_merge_sizes"] = torch.full((grid.shape[0],), geometry(self.inner.config)["merge"], dtype=torch.long)
            return kw

        def get_image_features(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor, **kw: Any) -> Any:
            # the model itself, or the submodule that has it (.model; ColQwen2's .vlm)
            owner = next(m for m in self.inner.modules() if hasattr(m, "get_image_features"))
            return owner.get_image_features(**self._image_kw(pixel_values, image_grid_thw, inspect.signature(self.inner.forward).parameters))

    return PackedTower, PackedVLM


def _batch_first(out: Any, batch: int) -> dict[str, Any]:
    """The VLM's outputs with its packed image features regrouped per picture: top-level tensors
    (logits) are batch first already; nested ones (``image_outputs``) hold every picture's tokens
    in one (tokens, dim) block or one list entry per picture, so their names and shapes would
    depend on the batch (a graph traced on two pictures returns one more output than the same
    model run on one). Non-tensor entries (the cache) are dropped."""
    import torch

    def rows(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.reshape(batch, -1, value.shape[-1]) if value.dim() >= 2 and value.numel() % batch == 0 else None
        if isinstance(value, list | tuple) and len(value) == batch and all(isinstance(v, torch.Tensor) for v in value):
            return rows(torch.cat([v.reshape(-1, v.shape[-1]) for v in value]))  # one entry per picture
        if isinstance(value, list | tuple):  # per layer (deepstack features): each entry on its own
            value = {str(i): v for i, v in enumerate(value)}
        if hasattr(value, "items"):
            kept = {k: rows(v) for k, v in value.items()}
            return {k: v for k, v in kept.items() if v is not None} or None
        return None

    flat: dict[str, Any] = {}
    for name, value in out.items():
        kept = value if isinstance(value, torch.Tensor) else rows(value)
        if kept is not None:
            flat[name] = kept
    return flat


def packed_kind(model: Any) -> str | None:
    """'tower' / 'vlm' for a wrapped model, None for any other (skills pick their inputs by it)."""
    return getattr(type(model), "packed_kind", None)


def wrap(model: Any) -> Any:
    """The model behind a batch-first wrapper when its forward takes packed patches, else itself.
    A tower whose patch embedding wants (C, P, P) images rather than flat vectors (Kimi) is
    found by running one image both ways; the layout that runs is kept on the wrapper."""
    import torch

    which = kind(model)
    if which is None:
        return model
    tower_cls, vlm_cls = _wrap_classes()
    wrapped = (tower_cls if which == "tower" else vlm_cls)(model).eval()
    run = wrapped if which == "tower" else wrapped.get_image_features
    errors = []
    for layout in ("flat", "image"):
        wrapped.patch_layout = layout
        feed = {k: torch.from_numpy(v) for k, v in inputs(wrapped, 1).items()}
        try:
            with torch.no_grad():
                run(**feed)
            break
        except (RuntimeError, ValueError) as exc:  # ValueError: a 5-D unpack of flat patches (PaddleOCR-VL)
            errors.append(exc)
    else:
        raise errors[0]
    return wrapped
