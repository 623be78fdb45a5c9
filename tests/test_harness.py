"""The execution core's own guarantees: determinism, readable expected-results diffs, honest
statuses (failed / skipped / strict xfail), and comparisons that can fail."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from ipfs_accelerate import registry
from ipfs_accelerate.harness import compare, fingerprint
from ipfs_accelerate.harness.case import Case, Settings


@pytest.fixture
def extra_models(monkeypatch):
    """Register extra (deliberately odd) registry entries for one test."""
    models = dict(registry.load())

    def add(name: str, base: str, **changes):
        models[name] = dataclasses.replace(registry.get(base), **changes)

    monkeypatch.setattr(registry, "load", lambda: models)
    return add


FP_SCRIPT = """
import json
from ipfs_accelerate.harness.case import Case
c = Case("gpt2", "cpu")
print(json.dumps(c.fingerprint().model_dump(), sort_keys=True))
"""


def test_fingerprint_identical_across_processes():
    outs = [subprocess.run([sys.executable, "-c", FP_SCRIPT], capture_output=True, text=True, check=True).stdout for _ in range(2)]
    assert outs[0] == outs[1]
    fp = json.loads(outs[0])
    assert fp["tokens"] and len(fp["tokens"][0]) == 8


def test_fingerprint_identical_twice_in_process():
    a = Case("bert", "cpu").fingerprint()
    b = Case("bert", "cpu").fingerprint()
    assert a == b


def test_seeded_init_does_not_use_transformers_init():
    import torch

    from ipfs_accelerate.harness.build import build_tiny

    spec = registry.get("bert")
    built = build_tiny(spec, spec.default, seed=0)
    name, param = next((n, p) for n, p in built.model.named_parameters() if p.dim() == 2)
    import zlib

    gen = torch.Generator().manual_seed(zlib.crc32(f"0:{name}".encode()))
    expected = torch.randn(param.shape, generator=gen) * param[0].numel() ** -0.5
    assert torch.equal(param.detach(), expected)
    other = build_tiny(spec, spec.default, seed=1)
    assert not torch.equal(dict(other.model.named_parameters())[name], param)


def test_expected_results_mismatch_gives_readable_diff(tmp_path):
    settings = Settings(expected_dir=tmp_path, update_expected=True)
    assert Case("gpt2", "cpu", settings=settings).check_expected()[0] == "updated"
    path = fingerprint.path_for(tmp_path, "gpt2", "text-generation")
    data = json.loads(path.read_text())
    data["outputs"]["logits"]["mean"] += 0.5
    data["tokens"][0][0] = (data["tokens"][0][0] + 1) % 1000
    path.write_text(json.dumps(data))
    result = Case("gpt2", "cpu", settings=Settings(expected_dir=tmp_path)).run()
    assert result.status == "failed" and result.expected == "mismatch"
    assert "output 'logits': mean" in result.expected_diff
    assert "tokens" in result.expected_diff
    assert json.loads(path.read_text()) == data, "a mismatch must never rewrite the expected file"


def test_missing_expected_results_fail(tmp_path):
    result = Case("gpt2", "cpu", settings=Settings(expected_dir=tmp_path)).run()
    assert result.expected == "missing" and result.status == "failed"
    assert "--update-expected" in result.reason
    assert not list(tmp_path.iterdir())


def test_unknown_model_suggests():
    with pytest.raises(registry.UnknownNameError) as err:
        Case("bertt", "cpu")
    assert "bert" in err.value.suggestions
    with pytest.raises(registry.UnknownNameError, match="unknown task"):
        Case("bert", "cpu", task="text-to-audio")


def test_cli_case_unknown_model_exit_2(capsys):
    from ipfs_accelerate.cli import main

    assert main(["case", "gtp2", "--hardware", "cpu"]) == 2
    assert "did you mean: gpt2" in capsys.readouterr().err


def test_build_failure_is_recorded_not_raised(extra_models):
    extra_models("broken_bert", "bert", tasks={"fill-mask": dataclasses.replace(registry.get("bert").default, head="NoSuchHeadClass")})
    result = Case("broken_bert", "cpu").run()
    assert result.status == "failed"
    assert "NoSuchHeadClass" in result.reason


def test_missing_requirement_is_skip_with_reason(extra_models):
    extra_models("needs_dep", "bert", requires=("definitely_not_installed_pkg",))
    result = Case("needs_dep", "cpu").run()
    assert result.status == "skipped" and "definitely_not_installed_pkg" in result.reason


def test_declared_incompatibility_that_works_is_xpassed(extra_models):
    pytest.importorskip("openvino")
    extra_models("gpt2", "gpt2", known_incompatible={"openvino": "pretend converter gap"})
    result = Case("gpt2", "openvino").run()
    assert result.status == "xpassed"
    assert "no longer reproduces" in result.reason


def test_tolerance_override_carries_reason(extra_models):
    extra_models("loose", "bert", tolerances={"openvino": registry.Tolerance(atol=1e-3, rtol=1e-2, reason="because")})
    assert compare.tolerance(registry.get("loose"), "openvino", "fp32") == (1e-3, 1e-2, 0.99999, "because")
    assert compare.tolerance(registry.get("bert"), "openvino", "fp32")[3] == ""


def test_parity_detects_difference_and_token_mismatch():
    ref = {"x": np.linspace(-1, 1, 100, dtype=np.float32)}
    tol = compare.tolerance(registry.get("bert"), "openvino", "fp32")
    assert compare.parity(ref, ref, np.array([[1, 2]]), np.array([[1, 2]]), tol).ok
    off = {"x": ref["x"] + 1e-3}
    assert not compare.parity(off, ref, None, None, tol).ok
    assert not compare.parity(ref, ref, np.array([[1, 3]]), np.array([[1, 2]]), tol).ok
    assert not compare.parity({"x": ref["x"][:50]}, ref, None, None, tol).ok


def test_batch_vs_single_catches_row_mixing_and_flags_flat():
    rows = [{"y": np.full((1, 4), float(i), np.float32)} for i in range(2)]
    good = {"y": np.concatenate([r["y"] for r in rows])}
    assert compare.batch_vs_single(good, rows, None, [None, None]).ok
    swapped = {"y": good["y"][::-1]}
    assert not compare.batch_vs_single(swapped, rows, None, [None, None]).ok
    flat = {"y": np.zeros((2, 4), np.float32)}
    check = compare.batch_vs_single(flat, [{"y": np.zeros((1, 4), np.float32)}] * 2, None, [None, None])
    assert check.ok and check.flat_outputs == ["y"]


def test_openvino_parity_and_generation_tokens():
    pytest.importorskip("openvino")
    result = Case("gpt2", "openvino").run()
    assert result.status == "passed", result.reason
    assert result.parity.tokens_match is True
    assert result.parity.outputs[0].max_abs < 1e-4
    assert result.metrics.prepare_s > 0 and result.metrics.latency.p50_ms > 0


# ---- the derived entries' generic shrink ---------------------------------------------------------
def test_shrink_more_nests_resizes_and_keeps_token_ids_in_vocab():
    from ipfs_accelerate.harness.build import shrunk_more

    defaults = {
        "vocab_size": 150000,
        "hidden_size": 4096,
        "num_hidden_layers": 6,
        "num_key_value_heads": 8,
        "pad_token_id": None,
        "bos_token_id": None,
        "image_token_id": 151655,
        "video_token_id": 151656,
        "layer_types": ["sliding_attention"] * 5 + ["full_attention"],
        "hidden_sizes": [256, 512, 1024, 2048],
        "depths": [3, 4, 6, 3],
        "num_attention_heads": [3, 6, 12, 24],
        "use_timm_backbone": True,
        "sliding_window": None,
        "rope_parameters": {"rope_type": "default", "mrope_section": [24, 20, 20]},
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "image_size": 384, "patch_size": 14},
    }
    out = shrunk_more(defaults)
    assert out["vocab_size"] == 1000 and out["hidden_size"] == 32 and out["num_hidden_layers"] == 2
    assert out["num_key_value_heads"] == 4
    assert out["pad_token_id"] == 0 and "bos_token_id" not in out  # pad is needed for batched classification
    assert {out["image_token_id"], out["video_token_id"]} == {999, 998}
    assert out["layer_types"] == ["sliding_attention", "full_attention"]  # both kinds survive the cut
    assert out["hidden_sizes"] == [32, 64, 128, 256] and out["depths"] == [1, 1, 1, 1]
    assert out["num_attention_heads"] == [4, 4, 4, 4]
    assert out["use_timm_backbone"] is False and "sliding_window" not in out
    assert out["rope_parameters"] == {"rope_type": "default", "mrope_section": [2, 1, 1]}
    assert out["vision_config"] == {"model_type": "siglip_vision_model", "hidden_size": 32, "image_size": 32, "patch_size": 4}


def test_hand_entries_keep_the_original_shrink():
    """Their committed fingerprints were made with SHRINK alone; derived entries get more."""
    from ipfs_accelerate.harness.build import tiny_config

    assert tiny_config(registry.get("llama")).intermediate_size == 37
    derived = registry.get("olmo2")
    assert derived.derived
    cfg = tiny_config(derived, derived.default)
    assert cfg.intermediate_size == 32 and cfg.num_key_value_heads == 4 and cfg.model_type == "olmo2"
