"""Audio and specialized skills and registry entries: the speech greedy loop is transformers'
`generate`, CTC tokens are the logits' greedy path, codecs round-trip to integer codes, inputs
have the shapes their models require, and every audio/specialized patch changes nothing but
convertibility (CPU outputs equal the stock model's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_kit import tiny_build

from ipfs_accelerate import registry
from ipfs_accelerate.hardware.backends import flatten_outputs, get_backend
from ipfs_accelerate.skills.base import get_skill
from ipfs_accelerate.skills.timeseries import series, time_features

AUDIO = [m.name for m in registry.list_models(category="audio") if not m.derived]  # hand-written tables
SPECIALIZED = [m.name for m in registry.list_models(category="specialized") if not m.derived]


def _run(model: str, batch: int = 2):
    _, task_spec, built = tiny_build(model)
    skill = get_skill(task_spec.skill)
    inputs = skill.inputs(built, task_spec, batch)
    prepared = get_backend("cpu").prepare(built.model, inputs, [])
    return task_spec, built, skill, inputs, skill.run(prepared, inputs, built, task_spec)


def _forward(model: torch.nn.Module, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in flatten_outputs(out).items()}


# ---- registry coverage -------------------------------------------------------------------------


def test_categories_hold_the_spec_models_and_enough_types() -> None:
    assert {"whisper", "wav2vec2", "hubert", "encodec"} <= set(AUDIO) and len(AUDIO) >= 10
    assert {"patchtsmixer", "zoedepth", "time_series_transformer"} <= set(SPECIALIZED) and len(SPECIALIZED) >= 7


@pytest.mark.parametrize("model", ["whisper", "encodec", "dac", "patchtsmixer", "zoedepth"])
def test_entry_builds_the_architecture_it_names(model: str) -> None:
    spec, _, built = tiny_build(model)
    assert built.model.config.model_type == spec.name
    assert type(built.model).__name__ == spec.default.head


# ---- speech recognition ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["whisper", "speech_to_text", "moonshine"])
def test_speech_greedy_loop_matches_generate(model: str) -> None:
    task_spec, built, skill, inputs, out = _run(model)
    n = skill.new_tokens(task_spec)
    assert out.tokens is not None and out.tokens.shape == (2, n)
    feed = {k: torch.from_numpy(v) for k, v in inputs.items() if not k.startswith("decoder_")}
    with torch.no_grad():
        ref = built.model.generate(**feed, do_sample=False, max_new_tokens=n, min_new_tokens=n).numpy()
    if ref.shape[1] == n + 1:  # Speech2Text/Moonshine return the start token; Whisper strips it
        assert (ref[:, 0] == inputs["decoder_input_ids"][:, 0]).all(), "decoder start token differs"
        ref = ref[:, 1:]
    np.testing.assert_array_equal(out.tokens, ref)
    assert len(np.unique(out.tokens)) > 1, "degenerate generation proves little"


def test_whisper_features_fill_the_encoder_window() -> None:
    _, task_spec, built = tiny_build("whisper")
    inputs = get_skill(task_spec.skill).inputs(built, task_spec, 2)
    cfg = built.config
    assert inputs["input_features"].shape == (2, cfg.num_mel_bins, 2 * cfg.max_source_positions)
    assert inputs["input_features"].std() > 0.1
    # the two rows are different clips
    assert not np.allclose(inputs["input_features"][0], inputs["input_features"][1])


@pytest.mark.parametrize("model", ["wav2vec2", "wav2vec2-bert"])
def test_ctc_tokens_are_the_greedy_path(model: str) -> None:
    _, built, _, inputs, out = _run(model)
    logits = out.arrays["logits"]
    assert logits.shape[-1] == built.config.vocab_size
    np.testing.assert_array_equal(out.tokens, logits.argmax(-1))
    assert len(np.unique(out.tokens)) > 1


# ---- codecs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["encodec", "mimi", "dac"])
def test_codec_codes_decode_to_the_reconstruction(model: str) -> None:
    """The forward's reconstruction is exactly `decode(codes)`: the codes are the bottleneck."""
    _, built, _, inputs, out = _run(model, batch=1)
    codes = out.arrays["audio_codes"]
    assert codes.dtype.kind in "iu" and codes.min() >= 0 and codes.max() < built.config.codebook_size
    assert len(np.unique(codes)) > 1
    m = built.model
    with torch.no_grad():
        if model == "encodec":
            t_codes = torch.from_numpy(np.moveaxis(codes, 0, 1).copy())  # back to (chunks, batch, q, frames)
            audio = m.decode(t_codes, [None], torch.from_numpy(inputs["padding_mask"])).audio_values
        elif model == "mimi":
            audio = m.decode(torch.from_numpy(codes)).audio_values
        else:
            audio = m.decode(audio_codes=torch.from_numpy(codes)).audio_values
    # DAC's forward decodes the quantized latents, decode() re-embeds the codes: float rounding only
    np.testing.assert_allclose(audio.numpy()[..., : out.arrays["audio_values"].shape[-1]], out.arrays["audio_values"], atol=1e-4)


@pytest.mark.parametrize("model", ["encodec", "mimi"])
def test_seeded_codebooks_are_deterministic_and_used(model: str) -> None:
    spec, _, seeded = tiny_build(model)
    _, _, again = tiny_build(model)
    _, _, zero = tiny_build(model, patches=tuple(p for p in spec.patches if p != "seed_codebooks"))
    books = {n: b for n, b in seeded.model.named_buffers() if n.endswith(("embed", "embed_sum"))}
    assert books and all(b.std() > 0.5 for b in books.values())
    for name, value in again.model.named_buffers():
        if name in books:
            assert torch.equal(value, books[name]), name
    # without the seeding every frame quantizes to code 0
    inputs = get_skill(spec.default.skill).inputs(zero, spec.default, 1)
    assert (_forward(zero.model, inputs)["audio_codes"] == 0).all()


# ---- time series and depth ----------------------------------------------------------------------


def test_series_and_time_features_are_deterministic_and_distinct() -> None:
    np.testing.assert_array_equal(series(20, 1, 2), series(20, 1, 2))
    assert not np.allclose(series(20, 0), series(20, 1))
    assert series(20, 0).min() > 0  # positive level, as mean/std scalers expect
    feats = time_features(0, 10, 3)
    assert feats.shape == (10, 3) and np.isfinite(feats).all()


@pytest.mark.parametrize("model", ["time_series_transformer", "informer"])
def test_forecaster_inputs_cover_lags_and_horizon(model: str) -> None:
    task_spec, built, _, inputs, out = _run(model)
    cfg = built.config
    past = cfg.context_length + max(cfg.lags_sequence)
    assert inputs["past_values"].shape == (2, past)
    assert inputs["past_time_features"].shape == (2, past, cfg.num_time_features)
    assert inputs["future_values"].shape == (2, cfg.prediction_length)
    assert "loss" not in out.arrays  # dropped by the patch: a batch-averaged training quantity
    assert out.arrays["params.0"].shape == (2, cfg.prediction_length)
    assert out.arrays["loc"].std() > 0 and (out.arrays["scale"] > 0).all()


def test_patch_forecast_covers_horizon_and_channels() -> None:
    _, built, _, _, out = _run("patchtsmixer")
    cfg = built.config
    assert out.arrays["prediction_outputs"].shape == (2, cfg.prediction_length, cfg.num_input_channels)


def test_depth_maps_are_non_negative_with_real_spread() -> None:
    for model in ("dpt", "zoedepth"):
        _, _, _, _, out = _run(model, batch=1)
        depth = out.arrays["predicted_depth"]
        assert depth.ndim == 3 and depth.min() >= 0 and depth.std() > 1e-3, model


# ---- patches change nothing but convertibility ----------------------------------------------------


def _s2t_padded_inputs(built) -> dict[str, np.ndarray]:
    """Two clips of different lengths, so the subsampled length mask is not all ones."""
    from transformers import Speech2TextFeatureExtractor

    from ipfs_accelerate.harness import assets

    bins = built.config.input_feat_per_channel
    fe = Speech2TextFeatureExtractor(feature_size=bins, num_mel_bins=bins)
    waves = [assets.waveform(8000, 0), assets.waveform(5000, 1)]
    feats = fe(waves, sampling_rate=16000, return_tensors="np", padding=True, return_attention_mask=True)
    return {
        "input_features": feats["input_features"],
        "attention_mask": feats["attention_mask"].astype(np.int64),
        "decoder_input_ids": np.array([[2, 5, 9], [2, 7, 4]], dtype=np.int64),
    }


# patches that set initial state (not convertibility) and so change outputs by design
INIT_PATCHES = {"seed_codebooks", "vae_mean"}  # vae_mean: the VAE mean instead of an unseeded sample
PATCHED = sorted(
    m.name
    for m in registry.list_models()
    if m.category in ("audio", "specialized") and set(m.patches) - INIT_PATCHES
)


@pytest.mark.parametrize("model", PATCHED)
def test_patch_keeps_cpu_outputs(model: str) -> None:
    spec, task_spec, patched = tiny_build(model)
    _, _, stock = tiny_build(model, patches=tuple(p for p in spec.patches if p in INIT_PATCHES))
    skill = get_skill(task_spec.skill)
    if model == "speech_to_text":
        inputs = _s2t_padded_inputs(stock)
        assert inputs["attention_mask"].min() == 0
    else:
        inputs = skill.example(stock, task_spec)
    got, ref = _forward(patched.model, inputs), _forward(stock.model, inputs)
    dropped = {"loss"} if any(p in spec.patches for p in ("drop_training_loss", "forecast_without_training_loss")) else set()
    assert set(got) == set(ref) - dropped
    for name, value in got.items():
        if value.dtype.kind in "iu":
            np.testing.assert_array_equal(value, ref[name], err_msg=name)
        else:
            np.testing.assert_allclose(value, ref[name], rtol=1e-6, atol=1e-6, err_msg=name)


def test_entries_declare_reasons_and_patches_exist() -> None:
    from ipfs_accelerate.harness.patches import PATCHES

    for name in AUDIO + SPECIALIZED:
        spec = registry.get(name)
        assert all(p in PATCHES for p in spec.patches), name
        assert all(len(r) > 40 for r in spec.known_incompatible.values()), f"{name}: reason too thin"
