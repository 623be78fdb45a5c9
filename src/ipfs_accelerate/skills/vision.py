"""Image tasks: classification, feature extraction, detection, segmentation, SAM mask generation.

Pixels come from the model family's real image processor (the PIL variant, built locally with
tiny sizes) applied to the deterministic `assets.image` pictures, so resizing and normalisation
are exercised too. Source pictures are deliberately not the target size. One forward per run.

Task input recipe (registry `inputs`): `image_size` (default: the config's), `processor`
(image-processor class name, default ViTImageProcessor), `processor_kwargs` (on top of the
size), `points` (SAM prompt points per image).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..hardware.backends import Arrays, Prepared
from ..harness import assets, packed
from ..registry import TaskSpec
from .base import Outputs, Skill, accepted

DEFAULT_IMAGE_SIZE = 32
ANY = ...  # in an expected shape: "this output exists and starts with the batch dim"


def image_size(built: Any, task: TaskSpec) -> tuple[int, int]:
    """Target (height, width): the recipe's `image_size`, else the (vision) config's."""
    size = task.inputs.get("image_size")
    if size is None:
        cfg = getattr(built.config, "vision_config", None) or built.config
        size = getattr(cfg, "image_size", None)
    if size is None:  # convolutional families often have no image_size: 32 px fits their strides
        size = DEFAULT_IMAGE_SIZE
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def image_processor(built: Any, task: TaskSpec):
    """The processor named by the recipe, built locally (PIL backend, no torchvision) and cached."""
    import transformers

    key = f"image_processor:{task.task}"
    if key not in built.extras:
        name = task.inputs.get("processor", "ViTImageProcessor")
        cls = getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)
        h, w = image_size(built, task)
        kwargs = {"size": {"height": h, "width": w}, **task.inputs.get("processor_kwargs", {})}
        built.extras[key] = cls(**kwargs)
    return built.extras[key]


def source_images(batch: int, size: tuple[int, int], offset: int = 0) -> list[np.ndarray]:
    """Deterministic pictures larger than the target and not square, so the processor resizes."""
    h, w = size
    return [assets.image((h + h // 2, w + w // 4), index=i + offset) for i in range(batch)]


def pixel_values(built: Any, task: TaskSpec, batch: int, offset: int = 0) -> np.ndarray:
    processor = image_processor(built, task)
    images = source_images(batch, image_size(built, task), offset)
    out = processor(images=images, return_tensors="np")
    return np.ascontiguousarray(out["pixel_values"], dtype=np.float32)


VIDEO_FRAMES = ("num_frames", "frames_per_clip")


def video_frames(built: Any) -> int | None:
    """Frames per clip when the model takes video: a ``pixel_values_videos`` input, or
    ``pixel_values`` with a frame count in its (vision) config; None for image models."""
    import inspect

    params = inspect.signature(built.model.forward).parameters
    if "pixel_values_videos" not in params and "pixel_values" not in params:
        return None
    frames = next(
        (v for cfg in (getattr(built.config, "vision_config", None), built.config) if cfg is not None
         for name in VIDEO_FRAMES if isinstance(v := getattr(cfg, name, None), int) and v > 0),
        None,
    )
    if "pixel_values_videos" in params:
        return frames or 2
    if frames is None:
        return None
    if "video-frames" not in built.extras:  # a frame count alone does not make pixel_values a clip
        built.extras["video-frames"] = frames if _runs_as_video(built, frames) else None  # (Perceiver's is its audio/video preprocessor's)
    return built.extras["video-frames"]


def _runs_as_video(built: Any, frames: int) -> bool:
    import inspect

    import torch

    h, w = image_size(built, TaskSpec(task="video-classification", head="", skill="vision"))
    channels = int(getattr(getattr(built.config, "vision_config", None) or built.config, "num_channels", 3) or 3)
    feed = {"pixel_values": torch.zeros(1, frames, channels, h, w)}
    if "input_ids" in inspect.signature(built.model.forward).parameters:  # video-text models (X-CLIP)
        feed["input_ids"] = torch.ones(1, 4, dtype=torch.long)
    try:
        with torch.no_grad():
            built.model(**feed)
        return True
    except (RuntimeError, ValueError, IndexError, TypeError):
        return False


def video_inputs(built: Any, task: TaskSpec, batch: int, frames: int) -> Arrays:
    """(batch, frames, C, H, W) clips of distinct processed pictures, under the name the forward
    takes (``pixel_values_videos`` or ``pixel_values``)."""
    import inspect

    processor = image_processor(built, task)
    images = source_images(batch * frames, image_size(built, task))
    pv = np.asarray(processor(images=images, return_tensors="np")["pixel_values"], dtype=np.float32)
    clips = np.ascontiguousarray(pv.reshape(batch, frames, *pv.shape[1:]))
    name = "pixel_values_videos" if "pixel_values_videos" in inspect.signature(built.model.forward).parameters else "pixel_values"
    return {name: clips}


def check_shapes(expected: dict[str, tuple], outputs: Outputs, task: str) -> None:
    """Like Skill.check's shape part, but a shape may be `(batch, ANY)`: only the batch dim."""
    for name, shape in expected.items():
        value = outputs.tokens if name == "tokens" else outputs.arrays.get(name)
        assert value is not None, f"{task}: output {name!r} missing (have {sorted(outputs.arrays)})"
        actual = value.shape
        if len(shape) == 2 and shape[1] is ANY:
            assert actual and actual[0] == shape[0], (
                f"{task}: output {name!r} has shape {actual}, batch {shape[0]}"
            )
            continue
        ok = len(actual) == len(shape) and all(
            e is None or e == a for e, a in zip(shape, actual, strict=True)
        )
        assert ok, f"{task}: output {name!r} has shape {tuple(actual)}, expected {shape}"


def _sigmoid_classes(cfg: Any) -> bool:
    """Whether a detector scores classes with sigmoids (no "no object" logit)."""
    return hasattr(cfg, "focal_alpha") or bool(getattr(cfg, "use_focal_loss", False)) or hasattr(cfg, "feat_strides")


def _matcher(built: Any) -> bool:
    """A keypoint-matching family (EfficientLoFTR): its base model takes picture pairs too."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES

    return getattr(built.config, "model_type", None) in MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES


def _per_picture(value: np.ndarray, batch: int) -> np.ndarray:
    """(1, batch * n, ...) or flat (batch * n, width) packed outputs -> (batch, n, ...)."""
    if value.ndim == 2 and value.shape[0] % batch == 0:
        return value.reshape(batch, value.shape[0] // batch, value.shape[1])
    if value.ndim > 2 and value.shape[0] == 1 and batch > 1 and value.shape[1] % batch == 0:
        return value.reshape(batch, value.shape[1] // batch, *value.shape[2:])
    return value


PROMPT_OFFSET = 100  # prompt pictures are other pictures than the inputs, the same for row i at any batch size


def _extra_inputs(built: Any, task: TaskSpec, batch: int, pixels: np.ndarray) -> Arrays:
    """Inputs some image models require beside the picture, chosen from the forward signature:
    MAE-style random masking gets seeded noise (row i's the same at any batch size, so batch
    rows match single runs); SegGPT's in-context prompt gets a second picture and its mask."""
    import inspect

    params = inspect.signature(built.model.forward).parameters
    cfg = getattr(built.config, "vision_config", None) or built.config
    out: Arrays = {}
    if "noise" in params and getattr(cfg, "mask_ratio", None) and getattr(cfg, "patch_size", None):
        patch = cfg.patch_size if isinstance(cfg.patch_size, int) else cfg.patch_size[0]
        h, w = pixels.shape[-2:]
        n = (h // patch) * (w // patch)
        out["noise"] = np.stack([np.random.default_rng(i).random(n) for i in range(batch)]).astype(np.float32)
    if "prompt_pixel_values" in params:
        out["prompt_pixel_values"] = pixel_values(built, task, batch, PROMPT_OFFSET)
    if "prompt_masks" in params:
        out["prompt_masks"] = pixel_values(built, task, batch, 2 * PROMPT_OFFSET)
    if "spatial_shapes" in params:  # NaFlex (SigLIP-2): flat patches, a patch mask and a grid per image
        patch = packed.geometry(built.config)["patch"]
        out["pixel_values"] = packed.naflex(pixels, patch)
        out["pixel_attention_mask"] = np.ones(out["pixel_values"].shape[:2], dtype=np.int64)
        out["spatial_shapes"] = np.tile(np.array([[pixels.shape[-2] // patch, pixels.shape[-1] // patch]], dtype=np.int64), (batch, 1))
    if "pixel_position_ids" in params:  # Gemma 4: patches and their (x, y) from its own processor
        proc = image_processor(built, task)
        got = proc(images=source_images(batch, image_size(built, task)), return_tensors="np")
        out["pixel_values"] = np.ascontiguousarray(got["pixel_values"], dtype=np.float32)
        out["pixel_position_ids"] = np.ascontiguousarray(got["image_position_ids"], dtype=np.int64)
    if "task_inputs" in params and getattr(built.config, "task_seq_len", None):
        # OneFormer: the task prompt ("the task is semantic") as token ids padded to task_seq_len
        ids = built.tokenizer("the task is semantic")["input_ids"][: built.config.task_seq_len]
        row = np.zeros(built.config.task_seq_len, dtype=np.int64)
        row[: len(ids)] = ids
        out["task_inputs"] = np.tile(row, (batch, 1))
    return out


def pixel_tokens(built: Any, batch: int) -> np.ndarray:
    """ImageGPT reads a picture as color-cluster ids, one per pixel (its processor quantizes to
    the checkpoint's clusters: here vocab_size - 1 seeded colors), at the largest square the
    position table holds."""
    import transformers

    cfg = built.config
    if "pixel-tokens" not in built.extras:
        clusters = np.random.default_rng(0).uniform(-1.0, 1.0, (cfg.vocab_size - 1, 3))
        side = int(cfg.n_positions**0.5)
        cls = getattr(transformers, "ImageGPTImageProcessorPil", None) or transformers.ImageGPTImageProcessor
        built.extras["pixel-tokens"] = (cls(clusters=clusters, size={"height": side, "width": side}), side)
    proc, side = built.extras["pixel-tokens"]
    ids = proc(images=source_images(batch, (side, side)), return_tensors="np")["input_ids"]
    return np.ascontiguousarray(ids, dtype=np.int64)


class VisionSkill(Skill):
    def inputs(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        import inspect

        if packed.packed_kind(built.model):  # Qwen2-VL-style tower: patches + grid (harness/packed.py)
            return accepted(built.model, packed.inputs(built.model, batch))
        if frames := video_frames(built):
            return accepted(built.model, video_inputs(built, task, batch, frames))
        params = inspect.signature(built.model.forward).parameters
        if "input_ids" in params and "pixel_values" not in params and hasattr(built.config, "n_positions"):
            return {"input_ids": pixel_tokens(built, batch)}  # ImageGPT
        cand: Arrays = {"pixel_values": pixel_values(built, task, batch)}
        if task.task == "keypoint-matching" or _matcher(built):  # SuperGlue / LightGlue: a pair of pictures per row
            other = pixel_values(built, task, batch + 1)[1:]
            cand["pixel_values"] = np.ascontiguousarray(np.stack([cand["pixel_values"], other], axis=1))
        if task.task == "image-matting":  # ViTMatte: RGB plus a trimap (background / unknown / foreground)
            pv = cand["pixel_values"]
            h, w = pv.shape[-2:]
            trimap = np.zeros((pv.shape[0], 1, h, w), dtype=np.float32)
            trimap[:, :, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 0.5
            trimap[:, :, 3 * h // 8 : 5 * h // 8, 3 * w // 8 : 5 * w // 8] = 1.0
            cand["pixel_values"] = np.concatenate([pv, trimap], axis=1)
        cand.update(_extra_inputs(built, task, batch, cand["pixel_values"]))
        if task.task == "mask-generation":
            # one prompt point per image, inside the (resized) picture, different per image
            h, w = image_size(built, task)
            pts = [
                [[[(0.3 + 0.4 * i / max(1, batch)) * w, (0.6 - 0.2 * i / max(1, batch)) * h]]]
                for i in range(batch)
            ]
            cand["input_points"] = np.asarray(pts, dtype=np.float32)
        return accepted(built.model, cand)

    def run(self, prepared: Prepared, inputs: Arrays, built: Any, task: TaskSpec) -> Outputs:
        out = super().run(prepared, inputs, built, task)
        pixels = inputs.get("pixel_values")
        if task.inputs.get("packed_outputs") and pixels is not None:
            # Pixtral packs every picture's patches into one sequence (block-diagonal attention),
            # Gemma 4's tower returns its pooled tokens flat: regrouped as (batch, tokens, ...)
            b = len(pixels)
            out.arrays = {k: _per_picture(v, b) for k, v in out.arrays.items()}
        return out

    def expected(self, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> dict[str, tuple]:
        cfg = built.config
        t = task.task
        if t in ("image-classification", "video-classification"):
            return {"logits": (batch, cfg.num_labels)}
        if t == "image-feature-extraction":
            return {"last_hidden_state": (batch, ANY)}
        if t == "object-detection":
            queries = getattr(cfg, "num_queries", None) or getattr(
                cfg, "num_detection_tokens", None
            )
            if queries is None:  # segmentation-style text detectors (PP-OCR DB heads): a probability map
                return {"last_hidden_state": (batch, ANY)}
            return {
                # softmax heads add a "no object" class; sigmoid/focal ones (Conditional DETR, the
                # RT-DETR family: anchors over feat_strides) do not
                "logits": (batch, queries, cfg.num_labels + (0 if _sigmoid_classes(cfg) else 1)),
                "pred_boxes": (batch, queries, getattr(cfg, "num_coords", 4)),  # PP-DocLayout-V4: 10 (box + quad)
            }
        if t == "semantic-segmentation":
            return {"logits": (batch, cfg.num_labels, None, None)}
        if t == "mask-generation":
            return {"iou_scores": (batch, 1, None), "pred_masks": (batch, 1, None, None, None)}
        return {}

    def check(
        self, outputs: Outputs, built: Any, task: TaskSpec, batch: int, inputs: Arrays
    ) -> None:
        check_shapes(self.expected(built, task, batch, inputs), outputs, task.task)
        for name, value in outputs.arrays.items():
            if value.dtype.kind == "f":
                assert np.isfinite(value).all(), f"{task.task}: output {name!r} has NaN/inf"


SKILL = VisionSkill()
