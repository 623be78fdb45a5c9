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


def test_openvino_pass_that_needed_per_shape_irs_is_flagged():
    """TimesFM's dynamic IR, traced on two series, answers one series wrongly (two rows, no positions): the screen
    catches it, the single series gets its own IR, parity holds, and the verdict says how."""
    pytest.importorskip("openvino")
    result = Case("timesfm", "openvino").run()
    assert result.status == "passed", result.reason
    assert result.conversion == "convert_model+per-shape"
    (flag,) = [f for f in result.flags if f.startswith("dynamic-shape IR wrong")]
    assert "last_hidden_state: shape (2, 0, 32), PyTorch (1, 16, 32)" in flag
    assert max(o.max_abs for o in result.parity.outputs) < 1e-4


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


def test_shrink_more_swin_stages_keep_one_entry_per_stage():
    """Swin-style configs count stages as layers: the stages stay (1 block each), so per-stage
    lists keep one entry per stage (cutting num_heads to 2 broke Swin-V2 / MaskFormer)."""
    from ipfs_accelerate.harness.build import shrunk_more

    out = shrunk_more({"num_layers": 4, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "embed_dim": 96})
    assert out["depths"] == [1, 1, 1, 1] and out["num_heads"] == [4, 4, 4, 4] and out["embed_dim"] == 32
    assert "num_layers" not in out


def test_shrink_more_none_and_zero_head_dims():
    """A None head_dim / kv-head count means the default width (we set it: some families read the
    None); a zero head dim switches a part off (GLM-5's NoPE attention) and stays zero."""
    from ipfs_accelerate.harness.build import shrunk_more

    out = shrunk_more({"hidden_size": 4096, "num_attention_heads": 32, "head_dim": None, "num_key_value_heads": None, "qk_rope_head_dim": 0})
    assert out["head_dim"] == 8 and out["num_key_value_heads"] == 4 and "qk_rope_head_dim" not in out


def test_shrink_more_sizes_mrope_sections_the_modeling_code_defaults():
    """Qwen2-VL's text config has no mrope_section; its modeling code defaults to [16, 24, 24]
    (half of head_dim 128). The shrink sets three sections summing to half the tiny head dim."""
    from transformers import CONFIG_MAPPING

    from ipfs_accelerate.harness.build import shrunk_more

    out = shrunk_more(CONFIG_MAPPING["qwen2_vl_text"]().to_dict())
    assert sum(out["rope_parameters"]["mrope_section"]) == 32 // 4 // 2


def test_batch_vs_single_compares_pairwise_logits_on_the_diagonal():
    """Dual encoders score text i against image j: a batch's (n, n) matrix holds each single
    run's (1, 1) score on its diagonal; the off-diagonal pairs have no single run."""
    scores = np.array([[1.0, 5.0], [7.0, 2.0]], np.float32)
    singles = [{"logits_per_image": np.array([[1.0]], np.float32)}, {"logits_per_image": np.array([[2.0]], np.float32)}]
    assert compare.batch_vs_single({"logits_per_image": scores}, singles, None, [None, None]).ok
    wrong = [singles[0], {"logits_per_image": np.array([[7.0]], np.float32)}]
    assert not compare.batch_vs_single({"logits_per_image": scores}, wrong, None, [None, None]).ok


def test_batch_vs_single_reads_text_pair_logits_on_the_diagonal():
    """PE Audio names its (n, n) audio x text scores logits_audio_text: pairwise like logits_per_*;
    a (n, n) output with another name is compared row by row."""
    scores = np.array([[1.0, 5.0], [7.0, 2.0]], np.float32)
    singles = [{"logits_audio_text": np.array([[1.0]], np.float32)}, {"logits_audio_text": np.array([[2.0]], np.float32)}]
    assert compare.batch_vs_single({"logits_audio_text": scores}, singles, None, [None, None]).ok
    rows = [{"logits_audio": scores[i : i + 1]} for i in range(2)]
    assert compare.batch_vs_single({"logits_audio": scores}, rows, None, [None, None]).ok


def test_batch_vs_single_skips_outputs_that_are_not_batch_leading():
    """Per-layer states whose first dim only equals the batch size by chance are not rows."""
    rows = [{"y": np.full((1, 3), float(i), np.float32), "states": np.full((2, 5), 10.0 * i, np.float32)} for i in range(2)]
    batch = {"y": np.stack([np.zeros(3), np.ones(3)]).astype(np.float32), "states": np.full((2, 5), 99.0, np.float32)}
    assert compare.batch_vs_single(batch, rows, None, [None, None]).ok
    leading = [{**r, "states": r["states"][:1]} for r in rows]  # batch-leading after all: compared, and differs
    assert not compare.batch_vs_single(batch, leading, None, [None, None]).ok


def test_packed_patches_follow_the_qwen2_vl_processor_order():
    """Patch k of the packed tensor is the pixels of its merge-window position, (C, T, P, P) flat."""
    from ipfs_accelerate.harness.packed import patches

    geo = {"channels": 3, "temporal": 2, "patch": 2, "merge": 2, "grid_h": 4, "grid_w": 4}
    images = np.arange(2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 3, 8, 8)
    out = patches(images, geo)
    assert out.shape == (2, 16, 3 * 2 * 2 * 2)
    # second patch = first merge window, row 0, column 1: pixels [0:2, 2:4], repeated over T
    want = np.stack([images[1, :, 0:2, 2:4]] * 2, axis=1).reshape(-1)
    assert np.array_equal(out[1, 1], want)
    # third patch = first window, row 1, column 0
    assert np.array_equal(out[1, 2], np.stack([images[1, :, 2:4, 0:2]] * 2, axis=1).reshape(-1))


@pytest.mark.parametrize("model", ["qwen2_5_vl_vision", "qwen2_vl", "parakeet_ctc", "videomae"])
def test_signature_driven_inputs_run_real_models(model):
    """One type per generic recipe (packed vision tower, packed VLM generation, log-mel encoder,
    video clip): a real CPU forward whose batch rows equal the single runs."""
    case = Case(model, "cpu", settings=Settings(warmup=0, runs=1))
    case.check_single()
    assert case.check_batch().ok


def test_forward_signature_categorises_base_models_without_token_ids():
    from ipfs_accelerate.registry.derive import _category_from_forward

    assert _category_from_forward({"feature-extraction": ["PeAudioEncoder"]}) == "audio"
    assert _category_from_forward({"feature-extraction": ["Sam2VisionModel"]}) == "vision"
    assert _category_from_forward({"feature-extraction": ["BertModel"]}) is None


def test_openvino_case_reuses_the_cpu_twin_only_for_the_same_model_task_and_settings(monkeypatch) -> None:
    """The OpenVINO fp32 case takes the CPU case's build, inputs and outputs as its reference only
    when they are of the same model, task and settings; anything else builds its own."""
    from ipfs_accelerate.harness import case as case_mod

    pytest.importorskip("openvino")
    cpu = case_mod.Case("bert", "cpu")
    key = (cpu.spec.name, repr(cpu.task), repr(cpu.settings))
    twin = {"key": key, "built": object(), "single_inputs": {"x": 1}, "batch_inputs": {"x": 2}, "outputs": {"single": 3}}
    monkeypatch.setattr(case_mod, "_CPU_TWIN", twin)
    ov = case_mod.Case("bert", "openvino")
    assert ov._cpu_twin == twin and ov.reference == {"single": 3} and ov.single_inputs == {"x": 1}
    assert case_mod.Case("bert", "cpu")._cpu_twin == {}  # the CPU case computes its own
    assert case_mod.Case("bert", "openvino", precision="default")._cpu_twin == {}  # other precisions too
    assert case_mod.Case("gpt2", "openvino")._cpu_twin == {}  # another model
    other = case_mod.Case("bert", "openvino", settings=case_mod.Settings(batch_size=cpu.settings.batch_size + 1))
    assert other._cpu_twin == {}  # other settings
