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
    # either way a second IR, traced on the single input, answers it
    np.testing.assert_allclose(got, want, atol=1e-5)
    if declare:  # declared: no screen, one IR per signature from the start
        assert any("one IR per input signature" in n for n in prepared.notes)
        assert prepared.path == "convert_model"
    else:  # undeclared: the screen caught the two-row IR answering one row wrongly, and says so
        assert prepared.path == "convert_model+per-shape"
        assert any("answered grid(1, 1), x(1, 4) wrongly (out: shape (2, 3), PyTorch (1, 3))" in n for n in prepared.notes)
    # same values, other shape: the declared model's IR is keyed by the baked values too
    twice = {"x": single["x"], "grid": single["grid"] * 2}
    with torch.no_grad():
        want2 = model(**{k: torch.from_numpy(v) for k, v in twice.items()})["out"].numpy()
    if declare:
        np.testing.assert_allclose(prepared(twice)["out"], want2, atol=1e-5)


def test_a_dynamic_ir_that_is_right_keeps_answering(tmp_path, monkeypatch):
    """The screen passes a correct dynamic IR: no second conversion, no note, same path."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()

    class Named(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"out": self.inner(x)}

    named = Named().eval()
    prepared = _prepare(named, {"x": np.ones((2, 4), np.float32)}, tmp_path, monkeypatch)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    with torch.no_grad():
        want = named(torch.from_numpy(x))["out"].numpy()
    np.testing.assert_allclose(prepared({"x": x})["out"], want, atol=1e-5)
    assert prepared.path == "convert_model" and not any("wrongly" in n for n in prepared.notes)


def test_screen_names_the_output_that_disagrees():
    from ipfs_accelerate.hardware.backends.openvino import _disagreement

    ref = {"a": np.zeros((1, 3), np.float32), "b": np.ones((1, 2), np.float32)}
    assert _disagreement(dict(ref), ref) == ""
    assert _disagreement({"a": ref["a"] + 5e-4, "b": ref["b"] * 1.009}, ref) == ""  # within 1e-3 + 1e-2 rel
    assert _disagreement({"a": ref["a"], "b": ref["b"] + 0.05}, ref) == "b: max abs 0.05"
    assert _disagreement({"a": ref["a"][:0], "b": ref["b"]}, ref) == "a: shape (0, 3), PyTorch (1, 3)"
    assert _disagreement({"b": ref["b"]}, ref) == "a: shape None, PyTorch (1, 3)"


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


@pytest.mark.parametrize("enabled", [False, True])
def test_hf_exporter_runs_unless_turned_off(enabled, monkeypatch):
    from ipfs_accelerate.hardware.backends import openvino as backend
    from ipfs_accelerate.hardware.backends.base import UnsupportedModel

    calls = []
    monkeypatch.setattr(backend, "_hf_exporter_isolated", lambda *a: calls.append(a) or (_ for _ in ()).throw(TypeError("stub")))
    if enabled:
        monkeypatch.delenv(backend.HF_EXPORTER_ENV, raising=False)  # the default
    else:
        monkeypatch.setenv(backend.HF_EXPORTER_ENV, "0")
    with pytest.raises(UnsupportedModel) as err:
        backend.OpenVINOBackend()._convert(Broken(), {"x": np.zeros((2, 3), np.float32)}, ["out"])
    assert len(calls) == int(enabled)
    assert ("hf-exporter: TypeError: stub" in str(err.value)) is enabled


def test_hf_exporter_runs_in_its_own_interpreter():
    """The exporter's process converts a real model; a model that cannot be pickled, or an export
    that fails there, is a clear error here, and a failed export replaces that interpreter."""
    import openvino as ov
    import transformers

    from ipfs_accelerate.hardware.backends import openvino as backend

    config = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    ids = torch.randint(0, 64, (2, 6))
    tensors = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    ov_model = backend._hf_exporter_isolated(model, tensors, ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"])
    compiled = ov.Core().compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    with torch.no_grad():
        want = model(**tensors).last_hidden_state.numpy()
    np.testing.assert_allclose(compiled([t.numpy() for t in tensors.values()])[compiled.outputs[0]], want, atol=1e-4)
    child = backend._EXPORTER.proc
    assert child.pid != __import__("os").getpid() and child.poll() is None
    limits = open(f"/proc/{child.pid}/limits").read()  # an export past a quarter of RAM fails there, not the worker
    row = next(line for line in limits.splitlines() if line.startswith("Max address space"))
    assert row.split()[3] == str(backend.export_memory_limit())

    with pytest.raises(RuntimeError, match="not a PreTrainedModel"):  # fails there, reported here
        backend._hf_exporter_isolated(torch.nn.Linear(2, 2), {}, [], [])
    assert child.poll() is not None  # replaced after the failed export

    model.forward_hook = lambda *a: None  # a lambda attribute: torch.save cannot pickle it
    with pytest.raises(RuntimeError, match="cannot travel to the exporter process"):
        backend._hf_exporter_isolated(model, tensors, ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"])
