"""OpenVINO conversion paths that exist for graphs the plain converters get wrong or cannot lower:
one IR per input signature for models whose tracing bakes input *values* (packed-patch vision
towers), packed VLM outputs regrouped per picture, and transformers' own exporter as last resort."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("openvino")


class GridLoop(torch.nn.Module):
    """Like a packed tower: a Python loop over the grid rows, so tracing unrolls it for the example."""

    def __init__(self, declare: bool) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, 3)
        if declare:
            self.static_inputs = ("grid",)

    def forward(self, x: torch.Tensor, grid: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = [self.proj(x[i]) * int(grid[i, 0]) for i in range(grid.shape[0])]
        return {"out": torch.stack(rows)}


def _prepare(model: torch.nn.Module, example: dict[str, np.ndarray], tmp_path, monkeypatch):
    from ipfs_accelerate.hardware.backends.openvino import OpenVINOBackend

    monkeypatch.setenv("IPFS_ACCELERATE_CACHE", str(tmp_path / "cache"))
    return OpenVINOBackend().prepare(model.eval(), example, ["out"])


def _inputs(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    return {"x": rng.normal(size=(n, 4)).astype(np.float32), "grid": np.arange(1, n + 1, dtype=np.int64)[:, None]}


@pytest.mark.parametrize("declare", [True, False])
def test_baked_inputs_get_one_ir_per_signature(declare, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = GridLoop(declare)
    prepared = _prepare(model, _inputs(2), tmp_path, monkeypatch)
    single = _inputs(1)
    with torch.no_grad():
        want = model(**{k: torch.from_numpy(v) for k, v in single.items()})["out"].numpy()
    got = prepared(single)["out"]
    if declare:  # a second IR, traced on the single input, answers it
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert any("one IR per input signature" in n for n in prepared.notes)
    else:  # the failure the mechanism exists for: the two-row IR answers a one-row input wrongly
        assert got.shape != want.shape or not np.allclose(got, want, atol=1e-5)


def test_packed_vlm_outputs_are_regrouped_per_picture():
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    from ipfs_accelerate.harness.packed import _batch_first

    tokens = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(8, 3)  # 2 pictures x 4 tokens, packed
    out = {
        "logits": torch.zeros(2, 5, 7),
        "past_key_values": object(),  # not a tensor: dropped
        "image_outputs": BaseModelOutputWithPooling(
            last_hidden_state=tokens, pooler_output=[tokens[:4], tokens[4:]],  # one entry per picture
        ),
        "deepstack": [[tokens[:4], tokens[4:]], [tokens[:4] + 1, tokens[4:] + 1]],  # per layer, then per picture
    }
    flat = _batch_first(out, 2)
    assert set(flat) == {"logits", "image_outputs", "deepstack"}
    assert flat["logits"] is out["logits"]
    assert flat["image_outputs"]["last_hidden_state"].shape == (2, 4, 3)
    assert torch.equal(flat["image_outputs"]["pooler_output"][1], tokens[4:])
    assert torch.equal(flat["deepstack"]["1"][0], tokens[:4] + 1)
    one = _batch_first({"image_outputs": {"pooler_output": [tokens[:4]]}}, 1)  # same names for one picture
    assert one["image_outputs"]["pooler_output"].shape == (1, 4, 3)


def test_hf_exporter_path_converts_and_keeps_our_output_order():
    import openvino as ov
    import transformers

    from ipfs_accelerate.hardware.backends.openvino import _hf_exporter

    with pytest.raises(TypeError, match="not a PreTrainedModel"):
        _hf_exporter(GridLoop(False), {}, [], [])
    config = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    ids = torch.randint(0, 64, (2, 6))
    tensors = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    names = ["pooler_output", "last_hidden_state"]  # the reverse of the model's own order
    ov_model = _hf_exporter(model, tensors, ["input_ids", "attention_mask"], names)
    compiled = ov.Core().compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled([t.numpy() for t in tensors.values()])
    with torch.no_grad():
        want = model(**tensors)
    for port, name in zip(compiled.outputs, names, strict=True):
        np.testing.assert_allclose(result[port], want[name].numpy(), atol=1e-4)


class Broken(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("no graph here")


@pytest.mark.parametrize("opt_in", [False, True])
def test_hf_exporter_runs_only_when_opted_in(opt_in, monkeypatch):
    from ipfs_accelerate.hardware.backends import openvino as backend
    from ipfs_accelerate.hardware.backends.base import UnsupportedModel

    calls = []
    monkeypatch.setattr(backend, "_hf_exporter", lambda *a: calls.append(a) or (_ for _ in ()).throw(TypeError("stub")))
    if opt_in:
        monkeypatch.setenv(backend.HF_EXPORTER_ENV, "1")
    else:
        monkeypatch.delenv(backend.HF_EXPORTER_ENV, raising=False)
    with pytest.raises(UnsupportedModel) as err:
        backend.OpenVINOBackend()._convert(Broken(), {"x": np.zeros((2, 3), np.float32)}, ["out"])
    assert len(calls) == int(opt_in)
    assert ("hf-exporter: TypeError: stub" in str(err.value)) is opt_in
