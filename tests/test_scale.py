"""`--scale full`: real sizes from configs alone, a skip (with the computed need) instead of an OOM,
and OpenVINO weight compression that really compresses and stays within its stated tolerance."""

from __future__ import annotations

import psutil
import pytest

from ipfs_accelerate import registry
from ipfs_accelerate.hardware.backends import ov_precision
from ipfs_accelerate.harness import scale
from ipfs_accelerate.harness.case import Case, Settings
from ipfs_accelerate.harness.trackers import MemoryTracker, measure

pytest.importorskip("torch")
pytest.importorskip("transformers")

# Published sizes (model cards / papers), millions: independent of scale.REFERENCES.
PUBLISHED_M = {"bert": 110, "gpt2": 124, "t5": 60, "vit": 86, "whisper": 39}


def _spec(name: str):
    spec = registry.get(name)
    return spec, spec.task_spec(None)


@pytest.mark.parametrize("name", sorted(PUBLISHED_M))
def test_param_counts_match_reference_sizes(name: str) -> None:
    spec, task = _spec(name)
    params = scale.count_params_meta(spec, task)
    assert abs(params / 1e6 - PUBLISHED_M[name]) <= 0.05 * PUBLISHED_M[name], f"{name}: {params / 1e6:.1f} M"


def test_full_config_keeps_behaviour_settings_and_drops_tiny_sizes() -> None:
    vit = scale.full_config(*_spec("vit"))
    assert (vit.image_size, vit.patch_size, vit.hidden_size, vit.num_hidden_layers) == (224, 16, 768, 12)
    whisper = scale.full_config(*_spec("whisper"))
    assert whisper.max_source_positions == 1500 and whisper.suppress_tokens == []  # registry's non-size setting kept
    t5 = scale.full_config(*_spec("t5"))
    assert (t5.d_model, t5.num_layers, t5.decoder_start_token_id, t5.use_cache) == (512, 6, 0, False)


def test_7b_default_config_needs_more_than_this_machine() -> None:
    spec, task = _spec("llama")
    total_mb = psutil.virtual_memory().total / 2**20
    with MemoryTracker() as mem:
        est = scale.estimate(spec, task, "cpu", budget=total_mb, reference="llama-7b")
    assert 6.6e9 < est.params < 6.9e9  # Llama-2-7B's 6.74 B, counted on the meta device
    assert not est.fits and f"{est.need_mb:,.0f} MB" in est.reason() and "budget" in est.reason()
    assert mem.peak_mb < 2048, "counting on the meta device must not allocate the weights"


def test_too_large_case_is_skipped_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    # llama at its config defaults (Llama-2-7B) under the cap the runner gives one worker
    monkeypatch.setitem(scale.REFERENCES, "llama", scale.NAMED["llama-7b"])
    cap = 0.8 * psutil.virtual_memory().total / 2**20
    monkeypatch.setenv("IPFS_ACCEL_MAX_MEMORY_MB", f"{cap:.0f}")
    case = Case("llama", "cpu", settings=Settings(scale="full"))
    with MemoryTracker() as mem:
        result = case.run()
    assert result.status == "skipped", result.reason
    assert "llama-2-7b at full scale needs ~" in result.reason and "6,738 M params" in result.reason
    assert mem.peak_mb < cap and mem.peak_mb < 2048, (mem.peak_mb, cap)
    assert "built" not in case.__dict__, "the model must not have been built"


def test_budget_is_capped_by_the_worker_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    rss_mb = psutil.Process().memory_info().rss / 2**20
    monkeypatch.setenv("IPFS_ACCEL_MAX_MEMORY_MB", f"{rss_mb + 100:.0f}")
    assert scale.budget_mb() <= 101
    monkeypatch.delenv("IPFS_ACCEL_MAX_MEMORY_MB")
    assert scale.budget_mb() > 101


def test_bert_base_int8_is_smaller_on_disk_and_within_tolerance() -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    case = Case("bert", "openvino", settings=Settings(scale="full", warmup=0, runs=1))
    if reason := scale.gate_full(case.spec, case.task, "openvino"):
        pytest.skip(reason)
    assert case.built.params > 100e6 and case.source == "full-random"

    def once(fn):
        return measure(fn, warmup=0, runs=1)

    f32 = scale.precision_variant(case, "fp32", 1.0, once)
    int8 = scale.precision_variant(case, "int8", 1.0, once)
    assert f32.compressed_nodes == 0 and int8.compressed_nodes and int8.compressed_nodes >= 72  # 12 layers x 6 linears
    assert int8.size_mb < 0.35 * f32.size_mb, (int8.size_mb, f32.size_mb)
    plan = ov_precision.PLANS["int8"]
    assert int8.cosine >= plan.min_cosine and int8.ok, int8
    assert f32.cosine >= ov_precision.PLANS["fp32"].min_cosine
    assert int8.cosine < f32.cosine  # compression costs something: the oracle is not trivially true
