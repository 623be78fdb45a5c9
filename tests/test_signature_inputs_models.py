"""Inputs made from a model's forward signature and config (derived types with no hand recipe):
required float states, layout boxes, per-codebook decoder starts, codec latents, univariate
series, RL trajectories, text for text-driven audio models; and the VAE-mean patch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_kit import tiny_build

from ipfs_accelerate.harness import compare
from ipfs_accelerate.harness.patches import PATCHES
from ipfs_accelerate.skills import audio, text, timeseries
from ipfs_accelerate.skills.base import get_skill


def _rows_match(batch: dict[str, np.ndarray], singles: list[dict[str, np.ndarray]]) -> None:
    """Row i of every batched input is exactly the single input i (what batch checks rely on)."""
    for i, single in enumerate(singles):
        assert set(single) == set(batch)
        for k, v in single.items():
            np.testing.assert_array_equal(batch[k][i : i + 1], v, err_msg=k)


def test_required_states_are_seeded_per_name_and_row() -> None:
    _, task, built = tiny_build("blip_2_qformer")
    two = text.SKILL.inputs(built, task, 2)
    assert two["query_embeds"].shape == (2, 16, built.config.hidden_size)
    assert two["encoder_hidden_states"].shape == (2, 16, 32)  # inputs.state_widths
    assert not np.array_equal(two["query_embeds"], two["encoder_hidden_states"])  # seeded by name
    assert not np.array_equal(two["query_embeds"][0], two["query_embeds"][1])  # and by row
    # row 0 of a batch of 2 is the single input: batch-vs-single comparisons stay exact
    _rows_match({k: v[:1] for k, v in two.items()}, [text.SKILL.inputs(built, task, 1)])


def test_layout_boxes_page_and_unit() -> None:
    boxes = text.page_boxes(2, 16)
    assert boxes.shape == (2, 16, 4) and boxes.dtype == np.int64
    assert boxes.min() >= 0 and boxes.max() <= 1000
    assert (boxes[..., 2] > boxes[..., 0]).all() and (boxes[..., 3] > boxes[..., 1]).all()
    _, task, built = tiny_build("bros")
    unit = text.SKILL.inputs(built, task, 2)["bbox"]
    assert unit.dtype == np.float32 and 0.0 <= unit.min() and unit.max() <= 1.0
    np.testing.assert_allclose(unit, boxes / 1000.0, rtol=1e-6)


def test_tapas_token_types_have_one_channel_per_table_type() -> None:
    _, task, built = tiny_build("tapas", "fill-mask")
    ids = text.SKILL.inputs(built, task, 2)["token_type_ids"]
    assert ids.shape == (2, 16, len(built.config.type_vocab_sizes))


def test_decoder_start_per_codebook() -> None:
    _, _, musicgen = tiny_build("musicgen", "text-to-audio")
    k = musicgen.config.decoder.num_codebooks
    assert audio.decoder_ids(musicgen, 3).shape == (3, k, 1)
    _, _, dia = tiny_build("dia", "feature-extraction")
    assert audio.decoder_ids(dia, 3).shape == (3, 1, dia.config.decoder_config.num_channels)


def test_text_driven_audio_models_get_text_not_the_default_waveform() -> None:
    _, task, built = tiny_build("musicgen", "text-to-audio")
    inputs = audio.SKILL.inputs(built, task, 2)
    assert "input_ids" in inputs and "input_values" not in inputs  # the waveform would be an audio prompt
    _rows_match(inputs, [{k: v[i : i + 1] for k, v in inputs.items()} for i in range(2)])


def test_codec_decoder_latents_found_by_width() -> None:
    _, task, built = tiny_build("mimi_decoder")
    latents = audio.SKILL.inputs(built, task, 2)["latents"]
    assert latents.shape[:2] == (2, built.config.hidden_size)  # channels-first, the config's width
    with torch.no_grad():
        out = built.model(latents=torch.from_numpy(latents))
    assert out.audio_values.shape[0] == 2


def test_univariate_series_and_trajectories() -> None:
    _, task, built = tiny_build("timesfm")
    inputs = timeseries.SKILL.inputs(built, task, 2)
    assert inputs["past_values"].shape == (2, built.config.context_length)
    assert inputs["freq"].shape == (2, 1)
    _, task, built = tiny_build("decision_transformer")
    traj = get_skill(task.skill).inputs(built, task, 2)
    assert traj["states"].shape == (2, 8, built.config.state_dim)
    # returns-to-go: the reward still to come from each step
    np.testing.assert_allclose(traj["returns_to_go"][:, 0, 0], traj["rewards"].sum(axis=(1, 2)), rtol=1e-5)


def test_vae_mean_makes_the_tokenizer_deterministic() -> None:
    _, task, stock = tiny_build("vibevoice_acoustic_tokenizer", patches=())
    _, _, patched = tiny_build("vibevoice_acoustic_tokenizer")
    wave = torch.from_numpy(audio.SKILL.inputs(patched, task, 1)["input_values"])

    def latents(model: object) -> torch.Tensor:
        with torch.no_grad():
            return model(input_values=wave).latents  # type: ignore[operator]

    torch.manual_seed(1)
    first = latents(stock.model)
    assert not torch.equal(first, latents(stock.model))  # stock: a fresh sample every call
    torch.testing.assert_close(latents(patched.model), latents(patched.model), rtol=0, atol=0)
    assert "vae_mean" in PATCHES


@pytest.mark.parametrize("name", ["logits_per_image", "logits_audio_text"])
def test_pairwise_logits_compare_on_the_diagonal(name: str) -> None:
    pair = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    check = compare.batch_vs_single({name: pair}, [{name: pair[:1, :1]}, {name: pair[1:, 1:]}], None, [None, None],
                                    atol=1e-6, rtol=1e-6)
    assert check.ok
