"""Framework tests of the vision and multimodal skills: real tiny models on CPU, checked numbers.

What is proved here: inputs are deterministic and go through the real image processors; each
batch row equals its image run alone; our greedy loops give the same tokens as transformers' own
`generate`; the LLaVA patch and the LLaVA-NeXT two-part run give the same numbers as the stock
one-call forward; a missing dependency is a skip with its reason; shape checks can fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from ipfs_accelerate import registry
from ipfs_accelerate.harness import assets
from ipfs_accelerate.harness.build import build_tiny
from ipfs_accelerate.harness.case import Case
from ipfs_accelerate.skills.base import Outputs, get_skill
from ipfs_accelerate.skills.multimodal import MultimodalSkill, label_ids
from ipfs_accelerate.skills.vision import check_shapes, pixel_values

torch = pytest.importorskip("torch")


def built_for(name: str, task: str | None = None):
    spec = registry.get(name)
    ts = spec.task_spec(task)
    return spec, ts, build_tiny(spec, ts)


def tensors(arrays: dict[str, np.ndarray]) -> dict:
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


# ---- registry -------------------------------------------------------------------------------
def test_registry_breadth_and_skill_routing():
    vision = [m for m in registry.list_models(category="vision") if not m.derived]  # hand-written tables
    multimodal = [m for m in registry.list_models(category="multimodal") if not m.derived]
    assert len(vision) >= 16 and len(multimodal) >= 9
    for name in (
        "clip",
        "vit",
        "deit",
        "detr",
        "sam",
        "segformer",
        "visual_bert",
        "mobilevit",
        "upernet",
    ):
        assert registry.get(name).category == "vision"
    for name in ("layoutlmv2", "blip", "llava", "llava_next"):
        assert registry.get(name).category == "multimodal"
    for spec in vision + multimodal:
        assert spec.default.skill in ("vision", "multimodal"), spec.name
        get_skill(spec.default.skill)  # importable


# ---- inputs ---------------------------------------------------------------------------------
def test_pixels_come_from_the_real_processor_and_are_deterministic():
    spec, ts, built = built_for("convnext")
    a = pixel_values(built, ts, 3)
    b = pixel_values(built, ts, 3)
    assert a.shape == (3, 3, 32, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], a[1])  # each row is a different picture
    # the processor resized a 48x40 picture and normalised it with ImageNet statistics
    src = assets.image((48, 40), 0)
    assert src.shape == (48, 40, 3)
    assert -3.0 < a.min() < 0.0 < a.max() < 3.0


def test_zero_shot_labels_are_fixed_and_end_with_eos():
    spec, ts, built = built_for("clip")
    ids = label_ids(built, ts)
    assert ids.shape == (3, 8)
    assert (ids[:, -1] == built.config.text_config.eos_token_id).all()
    np.testing.assert_array_equal(ids, label_ids(built, ts))


def test_document_boxes_are_valid_page_coordinates():
    boxes = MultimodalSkill._boxes((2, 12))
    assert boxes.shape == (2, 12, 4)
    assert boxes.min() >= 0 and boxes.max() <= 1000
    assert (boxes[..., 2] > boxes[..., 0]).all() and (boxes[..., 3] > boxes[..., 1]).all()


def test_shape_check_can_fail():
    out = Outputs(arrays={"logits": np.zeros((2, 7), dtype=np.float32)})
    check_shapes({"logits": (2, 7)}, out, "image-classification")
    with pytest.raises(AssertionError, match="expected"):
        check_shapes({"logits": (2, 5)}, out, "image-classification")
    with pytest.raises(AssertionError, match="missing"):
        check_shapes({"pred_boxes": (2, None, 4)}, out, "object-detection")


# ---- batch rows -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["clip", "owlvit", "detr"])
def test_batch_rows_equal_single_images(name):
    case = Case(name, "cpu")
    check = case.check_batch()
    assert check.ok, check.max_abs
    assert not check.flat_outputs


# ---- generation matches transformers' generate ------------------------------------------------
@pytest.mark.parametrize("name", ["llava", "paligemma", "git"])
def test_greedy_tokens_match_generate(name):
    case = Case(name, "cpu")
    out = case.check_single()
    feed = tensors(case.single_inputs)
    feed.pop("image_embeds_position_mask", None)
    with torch.no_grad():
        gen = case.built.model.generate(
            **feed,
            max_new_tokens=8,
            min_new_tokens=8,
            do_sample=False,
            use_cache=False,
            eos_token_id=None,
            pad_token_id=0,
        )
    new = gen[:, -8:].numpy()
    np.testing.assert_array_equal(out.tokens, new)


# ---- patches and the two-part run keep the numbers --------------------------------------------
def test_llava_patch_keeps_outputs_identical():
    spec = registry.get("llava")
    patched = build_tiny(spec, spec.default)
    import dataclasses

    plain = build_tiny(dataclasses.replace(spec, patches=()), spec.default)
    inputs = Case("llava", "cpu").batch_inputs
    with torch.no_grad():
        a = patched.model(**tensors(inputs))
        b = plain.model(**tensors(inputs))
    assert torch.equal(a.logits, b.logits)
    stock = b.image_outputs.pooler_output  # one (tokens, dim) tensor per image
    (flat,) = a.image_outputs.pooler_output  # one (images*tokens, dim) tensor
    assert len(stock) == 2
    assert torch.equal(flat, torch.cat(stock))


def test_llava_next_two_part_equals_one_call_forward():
    case = Case("llava_next", "cpu")
    two_part = case.outputs["batch"].arrays["logits"]
    with torch.no_grad():
        full = case.built.model(**tensors(case.batch_inputs)).logits.numpy()
    assert two_part.shape == full.shape and full.shape[1] > 72  # 72 image tokens + the prompt
    np.testing.assert_allclose(two_part, full, rtol=0, atol=1e-6)


# ---- honest gating --------------------------------------------------------------------------
def test_layoutlmv2_is_skipped_for_detectron2():
    result = Case("layoutlmv2", "cpu").run()
    assert result.status == "skipped"
    assert "detectron2" in result.reason


def test_visual_bert_region_features_differ_per_image():
    case = Case("visual_bert", "cpu")
    feats = case.batch_inputs["visual_embeds"]
    assert feats.shape == (2, 4, 16)
    assert not np.allclose(feats[0], feats[1])
    np.testing.assert_array_equal(feats[:1], case.single_inputs["visual_embeds"])
