"""The derived shrink's backbone rules (harness/build.py), the batch check's batch-leading rule
(harness/compare.py) and the vision skill's per-picture regrouping: no model is built."""

from __future__ import annotations

import numpy as np
import pytest

from ipfs_accelerate.harness import compare
from ipfs_accelerate.harness.build import shrunk_more


def _defaults(model_type: str) -> dict:
    transformers = pytest.importorskip("transformers")
    return transformers.CONFIG_MAPPING[model_type]().to_dict()


def test_vit_backbone_hands_on_as_many_layers_as_the_neck_takes() -> None:
    """Depth Anything's DPT neck takes 4 DINOv2 layers: the shrunk backbone keeps 4 and hands on
    all of them, keeps the parent's un-reshaped tokens, and the neck's input width follows."""
    out = shrunk_more(_defaults("prompt_depth_anything"))
    backbone = out["backbone_config"]
    assert backbone["num_hidden_layers"] == 4
    assert backbone["out_indices"] == [1, 2, 3, 4]
    assert backbone["out_features"] == ["stage1", "stage2", "stage3", "stage4"]
    assert backbone["reshape_hidden_states"] is False  # the parent's choice, not DINOv2's default
    assert out["reassemble_hidden_size"] == backbone["hidden_size"] == 32


def test_single_output_vit_backbone_is_left_alone() -> None:
    """A ViT backbone handing on one layer (ViTPose) keeps the plain shrink."""
    backbone = shrunk_more(_defaults("vitpose"))["backbone_config"]
    assert backbone["num_hidden_layers"] == 2
    assert "out_indices" not in backbone


def test_hgnet_stages_follow_the_shrunk_sizes_under_a_detector_neck() -> None:
    out = shrunk_more(_defaults("d_fine"))
    backbone = out["backbone_config"]
    assert backbone["stage_out_channels"] == backbone["hidden_sizes"] == [32, 64, 128, 256]
    assert backbone["stage_in_channels"][1:] == [32, 64, 128]
    assert out["num_queries"] == 16  # top-k anchors of a 32 px picture: 21


def test_hgnet_alone_keeps_its_stages() -> None:
    """Without a neck reading its channels, HGNet-V2's stages are what its fingerprint measured."""
    assert "stage_out_channels" not in shrunk_more(_defaults("hgnet_v2"))


def test_batch_check_skips_outputs_that_are_not_batch_leading() -> None:
    """RF-DETR's per-layer states are (layers, batch, ...): with 2 layers and batch 2 the first
    dim equals the batch size by chance; a single run's first dim (2, not 1) tells them apart."""
    rng = np.random.default_rng(0)
    logits = rng.random((2, 3)).astype(np.float32)
    layers = rng.random((2, 2, 4)).astype(np.float32)
    singles = [{"logits": logits[i : i + 1], "layers": layers[:, i : i + 1]} for i in range(2)]
    check = compare.batch_vs_single({"logits": logits, "layers": layers}, singles, None, [None, None])
    assert check.ok and check.max_abs == 0.0
    bad = [{"logits": logits[i : i + 1] + 1.0, "layers": layers[:, i : i + 1]} for i in range(2)]
    assert not compare.batch_vs_single({"logits": logits, "layers": layers}, bad, None, [None, None]).ok


def test_packed_tower_outputs_are_regrouped_per_picture() -> None:
    """Pixtral's (1, batch * patches, width) and Gemma 4's flat (batch * tokens, width) outputs
    become (batch, n, width) with picture i in row i; a single picture's stays (1, n, width)."""
    from ipfs_accelerate.skills.vision import _per_picture

    packed = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 6, 4)
    rows = _per_picture(packed, 2)
    assert rows.shape == (2, 3, 4)
    assert np.array_equal(rows[1], packed[0, 3:])
    flat = packed[0]
    assert np.array_equal(_per_picture(flat, 2), rows)
    assert _per_picture(packed[:, :3], 1).shape == (1, 3, 4)
    assert _per_picture(flat[:3], 1).shape == (1, 3, 4)
