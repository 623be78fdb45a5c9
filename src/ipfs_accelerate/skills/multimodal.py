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
LABELS = 3  # zero-shot candidates: != the default batch of 2, so label-leading outputs are not rows


def text_config(built: Any) -> Any:
    return getattr(built.config, "text_config", None) or built.config


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

        kw = {
            k: torch.from_numpy(inputs[k][:1])
            for k in ("pixel_values", "image_sizes", "image_grid_thw")
            if k in inputs
        }
        owner = built.model if hasattr(built.model, "get_image_features") else built.model.model
        with torch.no_grad():
            feats = owner.get_image_features(**kw)
        if isinstance(feats, list | tuple):  # one tensor per image
            feats = feats[0][None]
        feats = getattr(feats, "pooler_output", feats)
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
                col = nxt if name == "input_ids" else np.full_like(feed[name][:, :1], fill)
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
        else:
            cand.update(self._images(built, task, batch))
        if t in GENERATIVE or (t == "feature-extraction" and _has_image_token(built)):
            n_image = image_tokens(built, task, cand) if t != "image-to-text" else 0
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
        return accepted(built.model, cand)

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
        if frames := video_frames(built):  # X-CLIP, VideoPrism: clips of frames
            return video_inputs(built, task, batch, frames)
        pv = pixel_values(built, task, batch)
        out: Arrays = {"pixel_values": pv}
        out["pixel_mask"] = np.ones((batch, pv.shape[-2], pv.shape[-1]), dtype=np.int64)
        return out

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
            }
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
            expected = {k: (batch, ANY) for k in ("image_embeds", "video_embeds") if k in outputs.arrays} or expected
        check_shapes(expected, outputs, task.task)
        for name, value in outputs.arrays.items():
            if value.dtype.kind == "f":
                assert np.isfinite(value).all(), f"{task.task}: output {name!r} has NaN/inf"


SKILL = MultimodalSkill()
