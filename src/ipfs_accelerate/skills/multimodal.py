"""Image + text tasks: CLIP-style zero-shot classification and detection, captioning, VQA,
document QA and LLaVA-style image-text-to-text generation.

Batch rows are images (or image+question pairs); whatever every row shares is added in `run`:
zero-shot label texts are a fixed candidate set scored against each image, as the zero-shot
pipelines do, so row i of a batch must equal image i run alone.

Generation (captioning, image-text-to-text) is a greedy loop of full forwards, as in
`skills/generation.py`: the image inputs stay fixed, the token inputs grow by one each step, and
greedy tokens must match CPU exactly on every backend.

Task input recipe (registry `inputs`), beyond the vision ones (`image_size`, `processor`, ...):
`seq_len` (text length), `prompt_len` (text tokens after the image tokens), `new_tokens`,
`labels` (zero-shot candidates), `image_tokens` (placeholders per image, or "model": ask the model),
`image_first` (placeholders before BOS, PaliGemma style), `regions` (visual_bert region features),
`split = "vision-language"` (the two-part run below).

Two-part run (LLaVA-NeXT): its any-resolution step (how many tiles each image has, unpadding the
feature grid, newline tokens) depends on the *values* of `image_sizes`, so the whole model does
not convert to one graph (TorchScript: `Tensor.__round__`; torch.export: a guard on a
data-dependent expression). As optimum-intel does, the vision tower + projector runs as one
prepared graph (tiles -> features), the model's own `pack_image_features` and the placeholder
scatter run eagerly in between, and the model itself runs from `inputs_embeds` as the case's
prepared graph. CPU runs the same split eagerly; a test checks it equals the one-call forward.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ..hardware.backends import Arrays, Prepared
from ..harness import assets, packed
from ..registry import TaskSpec
from .base import Outputs, Skill, accepted
from .vision import (
    ANY,
    check_shapes,
    image_processor,
    image_size,
    pixel_values,
    source_images,
    video_frames,
    video_inputs,
)

ZERO_SHOT = {"zero-shot-image-classification", "zero-shot-object-detection"}
GENERATIVE = {"image-to-text", "image-text-to-text"}
# inputs image_extras may add: the image-token count is asked of the model with them too
IMAGE_EXTRAS = ("pixel_attention_mask", "spatial_shapes", "qformer_attention_mask")
LABELS = 3  # zero-shot candidates: != the default batch of 2, so label-leading outputs are not rows


def text_config(built: Any) -> Any:
    """The config of the part that writes text: ``text_config``, an encoder-decoder's decoder, or the config."""
    cfg = built.config
    return getattr(cfg, "text_config", None) or getattr(cfg, "decoder", None) or cfg


def image_token_id(built: Any, task: TaskSpec | None = None) -> int:
    """The placeholder id: the recipe's `image_token` (models that mark positions with a mask
    instead, e.g. Kosmos-2), else the config's image token id."""
    if task is not None and "image_token" in task.inputs:
        return int(task.inputs["image_token"])
    cfg = built.config
    for name in ("image_token_id", "image_token_index"):
        value = getattr(cfg, name, None)
        if value is not None:
            return int(value)
    raise ValueError(
        f"{cfg.model_type}: config has no image token id; set image_token_index in the registry"
    )


def _towerless(built: Any) -> bool:
    """A vision-language family built without its vision tower (EmbeddingGemma-2's default
    config has ``vision_config = None``): it reads text only."""
    return hasattr(built.config, "vision_config") and built.config.vision_config is None


def _cross_attends(built: Any) -> bool:
    """Flamingo-style models (IDEFICS): text cross-attends to the images through a per-token
    image mask instead of holding image placeholders; no get_image_features to count them."""
    params = inspect.signature(built.model.forward).parameters
    return "image_attention_mask" in params and image_features_fn(built.model) is None


def _sees_images(built: Any) -> bool:
    """Whether the model reads pictures at all: a tower, and an image input in its forward (the
    Auto mappings list some text-only heads, e.g. Mistral-4's causal LM, as image-text-to-text)."""
    params = inspect.signature(built.model.forward).parameters
    return not _towerless(built) and any("pixel" in p or p == "flattened_patches" for p in params)


def _has_image_token(built: Any) -> bool:
    """A vision-language model whose text holds image placeholder tokens (its base model too)."""
    return any(getattr(built.config, n, None) is not None for n in ("image_token_id", "image_token_index"))


def label_ids(built: Any, task: TaskSpec) -> np.ndarray:
    """The fixed zero-shot candidate texts: `labels` rows of `seq_len` tokens ending with EOS
    (CLIP-style text towers pool at EOS)."""
    n = int(task.inputs.get("labels", LABELS))
    length = int(task.inputs.get("seq_len", 8))
    ids = assets.token_ids(n, length - 1, offset=1, tok=built.tokenizer)
    eos = getattr(text_config(built), "eos_token_id", None)  # some text configs have no such field
    eos = assets.EOS if eos is None else eos
    return np.concatenate([ids, np.full((n, 1), eos, dtype=np.int64)], axis=1)


def image_tokens(built: Any, task: TaskSpec, inputs: Arrays) -> int:
    """Image placeholder tokens per image: the recipe's number, or counted by the model itself."""
    n = task.inputs.get("image_tokens", "model")
    if n != "model":
        return int(n)
    key = "image_tokens"
    if key not in built.extras:
        import torch

        fn = image_features_fn(built.model)
        if fn is None:
            raise ValueError(f"{built.config.model_type}: no get_image_features to count image tokens; set image_tokens in the registry")
        params = inspect.signature(fn).parameters
        names = {"pixel_values", "image_sizes", "image_grid_thw", *IMAGE_EXTRAS, *_needed(built)}
        kw = {k: torch.from_numpy(v[:1]) for k, v in inputs.items() if k in params and k in names}
        with torch.no_grad():
            feats = fn(**kw)
        if isinstance(feats, list | tuple):  # one tensor per image
            feats = feats[0][None]
        pooled = getattr(feats, "pooler_output", feats)
        feats = feats.last_hidden_state if pooled is None else pooled  # (Llama-4: no pooled output)
        built.extras[key] = int(feats[0].shape[0])
    return built.extras[key]


def prompt(built: Any, task: TaskSpec, batch: int, n_image: int) -> np.ndarray:
    """[BOS] [IMG]*n text... (or [IMG]*n [BOS] text... with `image_first`): one row per image."""
    text = assets.token_ids(batch, int(task.inputs.get("prompt_len", 4)), tok=built.tokenizer)
    bos_id = getattr(text_config(built), "bos_token_id", None)
    bos = np.full((batch, 1), assets.BOS if bos_id is None else bos_id, dtype=np.int64)
    parts = [bos, text]
    if n_image:
        img = np.full((batch, n_image), image_token_id(built, task), dtype=np.int64)
        parts = [img, bos, text] if task.inputs.get("image_first") else [bos, img, text]
    return np.concatenate(parts, axis=1)


def seq2seq(built: Any) -> bool:
    """An encoder-decoder whose decoder writes the text and whose input holds no image
    placeholders (VisionEncoderDecoder, Pix2Struct, UDOP, PP-FormulaNet)."""
    params = inspect.signature(built.model.forward).parameters
    return "decoder_input_ids" in params and image_features_fn(built.model) is None and not _has_image_token(built)


def image_features_fn(model: Any) -> Any:
    """The model's ``get_image_features`` (its own, or its inner ``.model``'s), or None."""
    for owner in (model, getattr(model, "model", None)):
        if owner is not None and callable(getattr(owner, "get_image_features", None)):
            return owner.get_image_features
    return None


def _needed(built: Any) -> list[str]:
    """Image-side arguments the model cannot run without: the required parameters of its
    ``get_image_features`` and of its forward (beyond pixels and token ids)."""
    names: list[str] = []
    for fn in (image_features_fn(built.model), built.model.forward):
        if fn is not None:
            names += [n for n in packed.required(fn) if n not in names]
    return [n for n in names if n not in ("pixel_values", "input_ids")]


def _image_params(built: Any, forward: bool = True) -> set[str]:
    """Parameter names of the model's ``get_image_features`` (and, with ``forward``, its forward)."""
    fns = [image_features_fn(built.model)] + ([built.model.forward] if forward else [])
    return {n for fn in fns if fn is not None for n in inspect.signature(fn).parameters}


def _tile_mask(built: Any, pv: np.ndarray) -> np.ndarray:
    """All-real mask for one tile per sample: per pixel (Idefics-3) or per tile (boolean)."""
    import torch

    masks = (np.ones((len(pv), 1, *pv.shape[-2:]), dtype=np.int64), np.ones((len(pv), 1), dtype=bool))
    if "tile-mask" not in built.extras:
        fn = image_features_fn(built.model)
        built.extras["tile-mask"] = 0
        for i, mask in enumerate(masks):
            try:
                with torch.no_grad():
                    fn(pixel_values=torch.from_numpy(pv[:1, None]), pixel_attention_mask=torch.from_numpy(mask[:1]))
                built.extras["tile-mask"] = i
                break
            except (RuntimeError, IndexError, ValueError):
                continue
    return masks[built.extras["tile-mask"]]


def image_extras(built: Any, task: TaskSpec, batch: int, pv: np.ndarray) -> Arrays:
    """What the processor of a vision-language family hands over next to ``pixel_values``, made
    only where the model requires it (read from the signatures, so passing families keep their
    inputs): each image's size, pixels for a second (high-resolution) tower at that tower's
    size, the Q-Former's instruction tokens."""
    cfg = built.config
    out: Arrays = {}
    params = _image_params(built)
    if "spatial_shapes" in params:  # NaFlex (SigLIP-2): flat patches, a patch mask and a grid per image
        patch = packed.geometry(cfg)["patch"]
        out["pixel_values"] = packed.naflex(pv, patch)
        out["pixel_attention_mask"] = np.ones(out["pixel_values"].shape[:2], dtype=np.int64)
        out["spatial_shapes"] = np.tile(np.array([[pv.shape[-2] // patch, pv.shape[-1] // patch]], dtype=np.int64), (batch, 1))
    elif "pixel_attention_mask" in params and "pixel_attention_mask" in _image_params(built, forward=False):
        # Idefics-2/3 style: (batch, images per sample, C, H, W) and a pixel mask per image, or
        # (Granite-Docling) a real-tile mask per sample: the layout that runs is probed once
        out["pixel_values"] = pv[:, None]
        out["pixel_attention_mask"] = _tile_mask(built, pv)
    for name in _needed(built):
        if name == "qformer_input_ids":  # InstructBLIP: the instruction, also read by the Q-Former
            ids = assets.token_ids(batch, int(task.inputs.get("seq_len", 8)), tok=built.tokenizer)
            out.update(qformer_input_ids=ids, qformer_attention_mask=np.ones_like(ids))
        elif name == "image_sizes":
            out[name] = np.tile(np.array([pv.shape[-2:]], dtype=np.int64), (batch, 1))
        elif name.endswith("_pixel_values") and (sub := getattr(cfg, name[: -len("pixel_values")] + "vision_config", None)):
            size = int(sub.image_size)
            proc = image_processor(built, TaskSpec(task=f"{task.task}:{name}", head="", skill="multimodal", inputs={"image_size": size}))
            images = source_images(batch, image_size(built, task))
            out[name] = np.ascontiguousarray(proc(images=images, return_tensors="np")["pixel_values"], dtype=np.float32)
    return out


def greedy(prepared: Prepared, feed: Arrays, steps: int, grow: dict[str, int]) -> Outputs:
    """`steps` greedy forwards; `input_ids` takes the argmax, other `grow` inputs take their fill."""
    feed = dict(feed)
    first: Arrays | None = None
    chosen = []
    for _ in range(steps):
        out = prepared(feed)
        if first is None:
            first = out
        nxt = out["logits"][:, -1, :].argmax(-1).astype(np.int64)[:, None]
        chosen.append(nxt)
        for name, fill in grow.items():
            if name in feed:
                col = nxt if name in ("input_ids", "decoder_input_ids") else np.full_like(feed[name][:, :1], fill)
                feed[name] = np.concatenate([feed[name], col], axis=1)
    assert first is not None
    return Outputs(arrays=first, tokens=np.concatenate(chosen, axis=1))


def vision_part(model: Any) -> Any:
    """LLaVA-NeXT's vision tower + feature selection + projector as a module: tiles -> features."""
    import torch

    cfg = model.config
    inner = model.model

    class VisionPart(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tower = inner.vision_tower
            self.projector = inner.multi_modal_projector

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            out = self.tower(pixel_values, output_hidden_states=True, return_dict=True)
            layers = cfg.vision_feature_layer
            layers = [layers] if isinstance(layers, int) else layers
            feats = torch.cat([out.hidden_states[i] for i in layers], dim=-1)
            if cfg.vision_feature_select_strategy == "default":
                feats = feats[:, 1:]
            return self.projector(feats)

    return VisionPart().eval()


class TwoPart:
    """The LLaVA-NeXT split (see the module docstring): vision graph, eager glue, LM graph."""

    def __init__(self, built: Any) -> None:
        self.built = built
        self.example_raw: Arrays = {}  # batch-2 raw inputs: the vision graph is traced on their tiles

    def vision(self, backend: str, precision: str) -> Prepared:
        """The vision part prepared on `backend` (cached per backend and precision)."""
        import torch

        from ..hardware.backends import get_backend

        key = ("vision-part", backend, precision)
        if key not in self.built.extras:
            part = vision_part(self.built.model)
            tiles = self._tiles(self.example_raw)
            prepared = get_backend(backend, precision=precision, threads=torch.get_num_threads())
            self.built.extras[key] = prepared.prepare(part, {"pixel_values": tiles}, ["output"])
        return self.built.extras[key]

    def _counts(self, sizes: np.ndarray) -> list[int]:
        from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

        cfg = self.built.config
        return [
            image_size_to_num_patches(
                image_size=s,
                grid_pinpoints=cfg.image_grid_pinpoints,
                patch_size=cfg.vision_config.image_size,
            )
            for s in sizes.tolist()
        ]

    def _tiles(self, raw: Arrays) -> np.ndarray:
        """Each image's real tiles (padding tiles dropped), stacked: (tiles, C, H, W)."""
        counts = self._counts(raw["image_sizes"])
        return np.concatenate([raw["pixel_values"][i, :n] for i, n in enumerate(counts)])

    def embed(self, ids: np.ndarray) -> np.ndarray:
        import torch

        table = self.built.model.get_input_embeddings()
        with torch.inference_mode():
            return table(torch.from_numpy(ids).to(table.weight.device)).float().cpu().numpy()

    def embeds(self, raw: Arrays, vision: Prepared) -> np.ndarray:
        """inputs_embeds: token embeddings with the packed image features scattered in."""
        import torch

        model = self.built.model
        cfg = model.config
        feats = next(iter(vision({"pixel_values": self._tiles(raw)}).values()))
        newline = model.model.image_newline  # its device/dtype: where the glue runs (cuda, fp16)
        with torch.inference_mode():
            per_image = torch.split(
                torch.from_numpy(feats).to(newline.device, newline.dtype),
                self._counts(raw["image_sizes"]),
                dim=0,
            )
            packed, _ = model.model.pack_image_features(
                per_image,
                torch.from_numpy(raw["image_sizes"]).to(newline.device),
                vision_feature_select_strategy=cfg.vision_feature_select_strategy,
                image_newline=model.model.image_newline,
            )
            packed = torch.cat(packed, dim=0).float().cpu().numpy()
        emb = self.embed(raw["input_ids"])
        mask = raw["input_ids"] == image_token_id(self.built)
        if int(mask.sum()) != packed.shape[0]:
            raise ValueError(
                f"{int(mask.sum())} image placeholders for {packed.shape[0]} image features"
            )
        emb[mask] = packed
        return emb


class MultimodalSkill(Skill):
    def new_tokens(self, task: TaskSpec) -> int:
        return int(task.inputs.get("new_tokens", 8))

    # ---- inputs ---------------------------------------------------------------------------
    def inputs(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        t = task.task
        cand: Arrays = {}
        if t == "visual-question-answering" and "regions" in task.inputs:
            cand.update(self._regions(built, task, batch))
        elif not _towerless(built):
            cand.update(self._images(built, task, batch))
        if t in GENERATIVE and seq2seq(built):
            cand.update(self._decoder_prompt(built, task, batch))
        elif t in GENERATIVE or (t == "feature-extraction" and _has_image_token(built)):
            n_image = image_tokens(built, task, cand) if t != "image-to-text" and _sees_images(built) and not _cross_attends(built) else 0
            ids = prompt(built, task, batch, n_image)
            cand["input_ids"] = ids
            cand["attention_mask"] = np.ones_like(ids)
            if n_image:  # Kosmos-2 marks the placeholder positions explicitly (others drop it)
                cand["image_embeds_position_mask"] = (ids == image_token_id(built, task)).astype(
                    np.int64
                )
            # PaliGemma's prefix-LM mask, as its processor makes it: 0 = prefix (image + prompt,
            # bidirectional), 1 = generated suffix (causal); the loop appends 1s
            cand["token_type_ids"] = np.zeros_like(ids)
        elif t not in ZERO_SHOT:  # questions / document words: one text row per image
            ids = assets.token_ids(batch, int(task.inputs.get("seq_len", 8)), tok=built.tokenizer)
            cand.update(
                input_ids=ids, attention_mask=np.ones_like(ids), token_type_ids=np.zeros_like(ids)
            )
            if t == "document-question-answering":
                cand["bbox"] = self._boxes(ids.shape)
        if _cross_attends(built) and "input_ids" in cand and cand.get("pixel_values", np.empty(0)).ndim == 4:
            # IDEFICS: images per sample (one here), and which images each text token may attend to
            cand["pixel_values"] = cand["pixel_values"][:, None]
            cand["image_attention_mask"] = np.ones((*cand["input_ids"].shape, 1), dtype=np.int64)
        return accepted(built.model, cand)

    def _decoder_prompt(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        """Encoder-decoder captioners: the prompt is the decoder's (from its start token); an
        encoder that reads text too (UDOP) gets its own words (and their boxes)."""
        ids = prompt(built, task, batch, 0)
        start = next((v for c in (built.config, getattr(built.config, "decoder", None), text_config(built))
                      if c is not None and (v := getattr(c, "decoder_start_token_id", None)) is not None), None)
        if start is not None:
            ids[:, 0] = start
        words = assets.token_ids(batch, int(task.inputs.get("seq_len", 8)), tok=built.tokenizer)
        return {"decoder_input_ids": ids, "decoder_attention_mask": np.ones_like(ids), "input_ids": words,
                "attention_mask": np.ones_like(words), "bbox": self._boxes(words.shape)}

    def _images(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        name = task.inputs.get("processor", "ViTImageProcessor")
        if name in ("LlavaNextImageProcessor", "LlavaOnevisionImageProcessor"):
            out = image_processor(built, task)(
                images=source_images(batch, image_size(built, task)), return_tensors="np"
            )
            return {
                "pixel_values": out["pixel_values"].astype(np.float32),
                "image_sizes": out["image_sizes"].astype(np.int64),
            }
        if packed.packed_kind(built.model):  # Qwen2-VL style: patches + grid (harness/packed.py)
            return packed.inputs(built.model, batch)
        if seq2seq(built) and "flattened_patches" in inspect.signature(built.model.forward).parameters:
            return {"flattened_patches": self._flattened(built, task, batch)}
        params = inspect.signature(built.model.forward).parameters
        both = "pixel_values" in params and "pixel_values_videos" in params  # image models that also take video
        if not both and (frames := video_frames(built)):  # X-CLIP, VideoPrism: clips of frames
            return video_inputs(built, task, batch, frames)
        pv = pixel_values(built, task, batch)
        out: Arrays = {"pixel_values": pv}
        out["pixel_mask"] = np.ones((batch, pv.shape[-2], pv.shape[-1]), dtype=np.int64)
        out.update(image_extras(built, task, batch, pv))
        return out

    @staticmethod
    def _flattened(built: Any, task: TaskSpec, batch: int) -> np.ndarray:
        """Pix2Struct's variable-resolution input: each patch's (row, column), 1-based, then its
        pixels (the patch side is what the patch projection takes: C * P * P inputs)."""
        vision = getattr(built.config, "vision_config", None) or built.config
        channels = int(getattr(vision, "num_channels", 3) or 3)
        patch = int(round((int(vision.patch_embed_hidden_size) // channels) ** 0.5))
        pv = pixel_values(built, task, batch)
        rows, cols = pv.shape[-2] // patch, pv.shape[-1] // patch
        pixels = packed.naflex(pv[..., : rows * patch, : cols * patch], patch)
        r, c = np.meshgrid(np.arange(1, rows + 1), np.arange(1, cols + 1), indexing="ij")
        ids = np.tile(np.stack([r.ravel(), c.ravel()], axis=-1)[None].astype(np.float32), (batch, 1, 1))
        return np.ascontiguousarray(np.concatenate([ids, pixels], axis=-1))

    def _regions(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        """visual_bert's region features. Real ones come from an object detector that is not
        available offline; these are seeded stand-ins, one distinct set per image."""
        n = int(task.inputs["regions"])
        dim = built.config.visual_embedding_dim
        feats = np.stack(
            [np.random.default_rng(500 + i).normal(0, 1, (n, dim)) for i in range(batch)]
        ).astype(np.float32)
        return {
            "visual_embeds": feats,
            "visual_attention_mask": np.ones((batch, n), dtype=np.int64),
            "visual_token_type_ids": np.ones((batch, n), dtype=np.int64),
        }

    @staticmethod
    def _boxes(shape: tuple[int, ...]) -> np.ndarray:
        """Word boxes in LayoutLM's 0..1000 page coordinates: words laid out left to right in lines."""
        batch, length = shape
        i = np.arange(length)
        x0 = (i % 6) * 160 + 10
        y0 = (i // 6) * 90 + 20
        box = np.stack([x0, y0, x0 + 140, y0 + 60], axis=-1)
        rows = [box + 7 * b for b in range(batch)]
        return np.clip(np.stack(rows), 0, 1000).astype(np.int64)

    def _shared(self, built: Any, task: TaskSpec, inputs: Arrays) -> Arrays:
        """Inputs every row shares (zero-shot candidate texts), sized for this batch."""
        if task.task not in ZERO_SHOT:
            return {}
        ids = label_ids(built, task)
        if task.task == "zero-shot-object-detection":  # OWL-ViT: queries per image, flattened
            ids = np.tile(ids, (inputs["pixel_values"].shape[0], 1))
        return accepted(built.model, {"input_ids": ids, "attention_mask": np.ones_like(ids)})

    def example(self, built: Any, task: TaskSpec) -> Arrays:
        ex = self.inputs(built, task, 2)
        if task.inputs.get("split") == "vision-language":  # the case's graph is the LM part
            two = self._two_part(built)
            two.example_raw = ex
            return {
                "inputs_embeds": two.embeds(ex, two.vision("cpu", "fp32")),
                "attention_mask": ex["attention_mask"],
            }
        return {**ex, **self._shared(built, task, ex)}

    @staticmethod
    def _two_part(built: Any) -> TwoPart:
        if "two-part" not in built.extras:
            built.extras["two-part"] = TwoPart(built)
        return built.extras["two-part"]

    # ---- run ------------------------------------------------------------------------------
    def run(self, prepared: Prepared, inputs: Arrays, built: Any, task: TaskSpec) -> Outputs:
        if task.inputs.get("split") == "vision-language":
            return self._run_two_part(prepared, inputs, built, task)
        feed = {**inputs, **self._shared(built, task, inputs)}
        if task.task in GENERATIVE:
            grow = {
                "input_ids": 0,
                "attention_mask": 1,
                "image_embeds_position_mask": 0,
                "token_type_ids": 1,
                "image_attention_mask": 1,
            }
            if "decoder_input_ids" in feed:  # encoder-decoder: only the decoder's text grows
                grow = {"decoder_input_ids": 0, "decoder_attention_mask": 1}
            return greedy(prepared, feed, self.new_tokens(task), grow)
        return Outputs(arrays=prepared(feed))

    def _run_two_part(
        self, prepared: Prepared, inputs: Arrays, built: Any, task: TaskSpec
    ) -> Outputs:
        two = self._two_part(built)
        if not two.example_raw:
            two.example_raw = self.inputs(built, task, 2)
        vision = two.vision(prepared.backend, prepared.precision.split("(")[0])
        feed = {
            "inputs_embeds": two.embeds(inputs, vision),
            "attention_mask": inputs["attention_mask"],
        }
        first: Arrays | None = None
        chosen = []
        for _ in range(self.new_tokens(task)):
            out = prepared(feed)
            if first is None:
                first = out
            nxt = out["logits"][:, -1, :].argmax(-1).astype(np.int64)[:, None]
            chosen.append(nxt)
            feed["inputs_embeds"] = np.concatenate([feed["inputs_embeds"], two.embed(nxt)], axis=1)
            feed["attention_mask"] = np.concatenate(
                [feed["attention_mask"], np.ones_like(nxt)], axis=1
            )
        assert first is not None
        return Outputs(arrays=first, tokens=np.concatenate(chosen, axis=1))

    # ---- checks ---------------------------------------------------------------------------
    def expected(self, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> dict[str, tuple]:
        t = task.task
        cfg = built.config
        if t == "zero-shot-image-classification":
            return {"logits_per_image": (batch, int(task.inputs.get("labels", LABELS)))}
        if t == "zero-shot-object-detection":
            return {
                "logits": (batch, None, int(task.inputs.get("labels", LABELS))),
                "pred_boxes": (batch, None, 4),
            }
        if t in GENERATIVE:
            return {
                "logits": (batch, None, text_config(built).vocab_size),
                "tokens": (batch, self.new_tokens(task)),
            }
        if t == "visual-question-answering":
            return {"logits": (batch, cfg.num_labels)}
        if t == "document-question-answering":  # LayoutLMv3 scores text and image positions
            return {"start_logits": (batch, None), "end_logits": (batch, None)}
        return {"last_hidden_state": (batch, ANY)}

    def check(
        self, outputs: Outputs, built: Any, task: TaskSpec, batch: int, inputs: Arrays
    ) -> None:
        expected = self.expected(built, task, batch, inputs)
        if "logits_per_image" in expected and "logits_per_video" in outputs.arrays:  # video-text CLIPs
            expected["logits_per_video"] = expected.pop("logits_per_image")
        if task.task == "feature-extraction" and "last_hidden_state" not in outputs.arrays:
            # dual encoders (CLIP-likes) return one embedding per image (video) and per text instead
            # (two-tower fusion models, BridgeTower: pooled image and text features; promptable
            # detectors whose base model ends in its heads, SAM-3: per-query logits)
            names = ("image_embeds", "video_embeds", "image_features", "pred_logits")
            expected = {k: (batch, ANY) for k in names if k in outputs.arrays} or expected
        check_shapes(expected, outputs, task.task)
        for name, value in outputs.arrays.items():
            if value.dtype.kind == "f":
                assert np.isfinite(value).all(), f"{task.task}: output {name!r} has NaN/inf"


SKILL = MultimodalSkill()
