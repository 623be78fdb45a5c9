"""Multimodal inputs read from the model's signatures: each rule proved on a real tiny model.

What is proved here: NaFlex / Pix2Struct patches are in the order transformers' own processors
make them; extra image inputs are made only where a model requires them (a passing family's
inputs stay what they were); the Idefics-style tile mask layout is probed per family; encoder-
decoder image-text-to-text decodes the same tokens as transformers' ``generate``; the Llama-4
patch only adds the output field the stock forward reads (same logits as its tuple path).
"""

from __future__ import annotations

import numpy as np
import pytest

from ipfs_accelerate import registry
from ipfs_accelerate.harness import packed
from ipfs_accelerate.harness.build import build_tiny
from ipfs_accelerate.harness.case import Case
from ipfs_accelerate.skills import multimodal

torch = pytest.importorskip("torch")


def tensors(arrays: dict[str, np.ndarray]) -> dict:
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def test_naflex_patches_match_the_siglip2_processor_order():
    from transformers.models.siglip2.image_processing_pil_siglip2 import convert_image_to_patches

    images = np.random.default_rng(0).normal(size=(2, 3, 8, 12)).astype(np.float32)
    ours = packed.naflex(images, 4)
    assert ours.shape == (2, 6, 48)
    for i in range(2):
        np.testing.assert_array_equal(ours[i], convert_image_to_patches(images[i], 4))


def test_pix2struct_flattened_patches_carry_row_and_column_ids():
    from transformers.models.pix2struct.image_processing_pil_pix2struct import torch_extract_patches

    case = Case("pix2struct", "cpu")
    flat = case.single_inputs["flattened_patches"]
    vision = case.built.config.vision_config
    patch = int(round((vision.patch_embed_hidden_size // 3) ** 0.5))
    rows = cols = 32 // patch
    assert flat.shape == (1, rows * cols, 2 + vision.patch_embed_hidden_size)
    np.testing.assert_array_equal(flat[0, :, 0], np.repeat(np.arange(1, rows + 1), cols))  # 1-based, row-major
    np.testing.assert_array_equal(flat[0, :, 1], np.tile(np.arange(1, cols + 1), rows))
    pv = multimodal.pixel_values(case.built, case.task, 1)
    theirs = torch_extract_patches(torch.from_numpy(pv), patch, patch).reshape(1, rows * cols, -1).numpy()
    np.testing.assert_array_equal(flat[..., 2:], theirs)


def test_image_extras_only_where_the_model_requires_them():
    llava = Case("llava", "cpu")  # a passing family: nothing added
    pv = llava.single_inputs["pixel_values"]
    assert multimodal.image_extras(llava.built, llava.task, 1, pv) == {}
    ocr = Case("lighton_ocr", "cpu")  # get_image_features(pixel_values, image_sizes)
    pv = ocr.single_inputs["pixel_values"]
    np.testing.assert_array_equal(ocr.single_inputs["image_sizes"], [list(pv.shape[-2:])])
    blip = Case("instructblip", "cpu")  # forward requires the Q-Former's instruction
    assert blip.single_inputs["qformer_input_ids"].shape == blip.single_inputs["qformer_attention_mask"].shape
    hybrid = Case("deepseek_vl_hybrid", "cpu")  # the SAM tower's pixels at its own size
    size = hybrid.built.config.high_res_vision_config.image_size
    assert hybrid.single_inputs["high_res_pixel_values"].shape == (1, 3, size, size)


@pytest.mark.parametrize(("name", "mask_shape", "dtype"), [("smolvlm", (2, 1, 32, 32), np.int64), ("granite_docling", (2, 1), np.bool_)])
def test_tile_mask_layout_is_probed_per_family(name, mask_shape, dtype):
    case = Case(name, "cpu")
    inputs = case.batch_inputs
    assert inputs["pixel_values"].ndim == 5 and inputs["pixel_values"].shape[:2] == (2, 1)
    assert inputs["pixel_attention_mask"].shape == mask_shape and inputs["pixel_attention_mask"].dtype == dtype
    assert case.check_batch().ok


@pytest.mark.parametrize("name", ["vision-encoder-decoder", "udop"])
def test_encoder_decoder_greedy_tokens_match_generate(name):
    case = Case(name, "cpu")
    out = case.check_single()
    feed = tensors(case.single_inputs)
    feed.pop("decoder_attention_mask", None)
    prompt = feed["decoder_input_ids"].shape[1]
    start = int(feed["decoder_input_ids"][0, 0])
    with torch.no_grad():
        gen = case.built.model.generate(
            **feed, max_new_tokens=8, min_new_tokens=8, do_sample=False, use_cache=False, eos_token_id=None, pad_token_id=0,
            decoder_start_token_id=start,
        )
    np.testing.assert_array_equal(out.tokens, gen[:, prompt:].numpy())


def test_llama4_patch_only_adds_the_missing_output_field():
    import dataclasses

    spec = registry.get("llama4")
    assert "llama4_text_output_fields" in spec.patches
    inputs = Case("llama4", "cpu").single_inputs
    plain = build_tiny(dataclasses.replace(spec, patches=()), spec.default)
    patched = build_tiny(spec, spec.default)
    seen = []  # the stock text model's logits, captured before the stock forward fails
    plain.model.language_model.register_forward_hook(lambda mod, args, out: seen.append(out.logits))
    with torch.no_grad():
        with pytest.raises(AttributeError, match="image_outputs"):
            plain.model(**tensors(inputs))
        ours = patched.model(**tensors(inputs)).logits
    assert len(seen) == 1 and torch.equal(ours, seen[0])


def test_video_conditioned_embeddings_are_compared_on_the_diagonal():
    """X-CLIP's text embeddings are (videos, texts, dim): pair i alone is entry (i, i) of the batch."""
    from ipfs_accelerate.harness import compare

    batch = np.random.default_rng(0).normal(size=(2, 2, 4)).astype(np.float32)
    singles = [{"text_embeds": batch[i : i + 1, i : i + 1]} for i in range(2)]
    assert compare.batch_vs_single({"text_embeds": batch}, singles, None, [None, None]).ok
    singles[1] = {"text_embeds": batch[1:2, 0:1]}  # video 1 with text 0: not what row 1 ran
    assert not compare.batch_vs_single({"text_embeds": batch}, singles, None, [None, None]).ok


def test_packed_vlm_with_a_height_width_grid():
    """Nemotron-H Omni takes packed patches with (h, w) rows: the wrapper drops its t column."""
    case = Case("nemotron_h_omni", "cpu")
    assert packed.packed_kind(case.built.model) == "vlm"
    grid = case.single_inputs["image_grid_thw"]
    kw = case.built.model._image_kw(torch.from_numpy(case.single_inputs["pixel_values"]), torch.from_numpy(grid),
                                    {"pixel_values": None, "image_grid_hw": None})
    np.testing.assert_array_equal(kw["image_grid_hw"].numpy(), grid[:, 1:])
    assert case.check_batch().ok


def test_idefics_text_cross_attends_to_its_image():
    """IDEFICS has no placeholders: one image per sample, and a per-token mask that grows with the text."""
    case = Case("idefics", "cpu")
    inputs = case.single_inputs
    assert inputs["pixel_values"].ndim == 5 and inputs["pixel_values"].shape[1] == 1
    assert inputs["image_attention_mask"].shape == (*inputs["input_ids"].shape, 1)
    with torch.no_grad():
        a = case.built.model(**tensors(inputs)).logits
        other = dict(inputs, pixel_values=np.ascontiguousarray(inputs["pixel_values"][..., ::-1]))  # mirrored picture
        b = case.built.model(**tensors(other)).logits
    assert not torch.allclose(a, b)
    assert case.check_batch().ok
