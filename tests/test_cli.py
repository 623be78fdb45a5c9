"""The `ipfs-accelerate` front door: dispatch, unknown commands, the models listing."""

from __future__ import annotations

import json

from ipfs_accelerate.cli import main


def test_unknown_command_suggests(capsys):
    assert main(["hardwre"]) == 2
    assert "did you mean: hardware" in capsys.readouterr().err


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "hardware" in capsys.readouterr().out


def test_models_lists_every_category(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    cats = {r["category"] for r in rows}
    assert cats == {"language", "vision", "audio", "multimodal", "specialized"}
    assert len(rows) >= 70
    names = {r["name"] for r in rows}
    spec_named = set(
        "bert t5 llama gpt2 roberta albert bart distilbert gemma mistral mixtral falcon mamba phi qwen3 opt "
        "clip vit deit detr sam segformer visual_bert whisper wav2vec2 hubert encodec layoutlmv2 blip llava "
        "llava_next patchtsmixer zoedepth time_series_transformer mobilevit upernet".split()
    )
    assert spec_named <= names, spec_named - names


def test_models_filters_and_bad_names(capsys):
    assert main(["models", "--category", "audio"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines()[:-1]]
    assert "whisper" in names and "bert" not in names
    assert main(["models", "--category", "visoin"]) == 2
    assert "did you mean: vision" in capsys.readouterr().err
    assert main(["models", "zzz*"]) == 3
