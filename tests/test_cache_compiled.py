"""Compiled-blob cache (cache/openvino_compiled.py): a re-run imports instead of compiling, the
numbers stay bit-identical, a damaged blob is replaced, crash outcomes are remembered (timeouts
are not), and the key follows every input (IR, device, config)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ov = pytest.importorskip("openvino")

from ipfs_accelerate.cache import Cache, CacheConfig, ledger, openvino_compiled  # noqa: E402
from ipfs_accelerate.cache.openvino_compiled import RT_CID, compile_cached, compiled_key, ir_cid  # noqa: E402

CONFIG = {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "f32"}


class Crashed(RuntimeError):
    pass


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("IPFS_ACCELERATE_CACHE", str(root))
    monkeypatch.delenv("IPFS_ACCELERATE_NO_CACHE", raising=False)
    ledger.drain()
    return root


def tiny_model(cid: str = "bafytest") -> object:
    """x @ W + relu: a real graph with weights, tagged as if read from the IR cache under `cid`."""
    from openvino import opset13 as ops

    x = ops.parameter([1, 8], np.float32, name="x")
    w = ops.constant(np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8))
    model = ov.Model([ops.relu(ops.matmul(x, w, False, False))], [x], "tiny")
    if cid:
        model.set_rt_info(cid, RT_CID)
    return model


def infer(compiled: object) -> np.ndarray:
    x = np.arange(8, dtype=np.float32).reshape(1, 8) / 7
    return np.array(compiled.create_infer_request().infer([x])[compiled.outputs[0]])


def events(stage: str = openvino_compiled.KIND) -> list[str]:
    return [e["status"] for e in ledger.drain() if e["stage"] == stage]


def test_miss_then_hit_imports_the_same_numbers(cache_env: Path) -> None:
    core = ov.Core()
    first = infer(compile_cached(core, tiny_model(), "CPU", CONFIG))
    assert events() == ["miss"]
    again = infer(compile_cached(core, tiny_model(), "CPU", CONFIG))
    assert events() == ["hit"]
    assert np.array_equal(first, again) and float(first.max()) > 0
    (entry,) = Cache(CacheConfig(root=cache_env)).entries()
    assert entry.kind == openvino_compiled.KIND and entry.key["ir"] == "bafytest"
    assert (cache_env / "objects" / entry.cid / "compiled.blob").stat().st_size > 0


def test_a_damaged_blob_is_replaced_not_imported(cache_env: Path) -> None:
    core = ov.Core()
    want = infer(compile_cached(core, tiny_model(), "CPU", CONFIG))
    (entry,) = Cache(CacheConfig(root=cache_env)).entries()
    blob = cache_env / "objects" / entry.cid / "compiled.blob"
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x10
    blob.write_bytes(bytes(data))
    ledger.drain()
    got = infer(compile_cached(core, tiny_model(), "CPU", CONFIG))
    assert events() == ["replaced"]
    assert np.array_equal(got, want)
    assert Cache(CacheConfig(root=cache_env)).verify() == []


def test_key_changes_with_ir_device_and_config() -> None:
    core = ov.Core()
    base = compiled_key(core, "bafyA", "CPU", CONFIG)
    assert compiled_key(core, "bafyA", "CPU", dict(CONFIG)) == base
    assert compiled_key(core, "bafyB", "CPU", CONFIG) != base
    assert compiled_key(core, "bafyA", "GPU", CONFIG) != base
    assert compiled_key(core, "bafyA", "CPU", {**CONFIG, "INFERENCE_PRECISION_HINT": "bf16"}) != base
    assert compiled_key(core, "bafyA", "CPU", {**CONFIG, "INFERENCE_NUM_THREADS": 2}) != base
    assert base["runtime"]["openvino"] == ov.__version__
    json.dumps(base)  # storable as it is


def test_crash_outcome_is_cached_a_timeout_is_not(cache_env: Path) -> None:
    core = ov.Core()
    calls: list[str] = []

    def crashing() -> None:
        calls.append("probe")
        raise Crashed("OpenVINO compile_model crashed with SIGFPE (config {})")

    for _ in range(2):
        with pytest.raises(Crashed, match="SIGFPE"):
            compile_cached(core, tiny_model(), "CPU", {}, probe=crashing, crashed=Crashed)
    assert calls == ["probe"]  # the second run read the outcome, no probe
    assert events() == ["miss", "hit"]

    def hanging() -> None:
        calls.append("hang")
        raise Crashed("OpenVINO compile_model did not finish in 1 s (probe process)")

    for _ in range(2):
        with pytest.raises(Crashed, match="did not finish"):
            compile_cached(core, tiny_model("bafyother"), "CPU", {}, probe=hanging, crashed=Crashed)
    assert calls == ["probe", "hang", "hang"]  # a timeout is tried again next time


def test_probe_runs_only_on_a_miss(cache_env: Path) -> None:
    core = ov.Core()
    calls: list[int] = []
    for _ in range(3):
        compile_cached(core, tiny_model(), "CPU", CONFIG, probe=lambda: calls.append(1), crashed=Crashed)
    assert calls == [1]


def test_no_cid_or_no_cache_compiles_directly(cache_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    core = ov.Core()
    assert ir_cid(tiny_model(cid="")) == ""
    assert infer(compile_cached(core, tiny_model(cid=""), "CPU", CONFIG)).shape == (1, 8)
    monkeypatch.setenv("IPFS_ACCELERATE_NO_CACHE", "1")
    assert infer(compile_cached(core, tiny_model(), "CPU", CONFIG)).shape == (1, 8)
    assert events() == []
    assert not list((cache_env / "index").glob("*.json")) if (cache_env / "index").exists() else True


def test_convert_cached_tags_the_model_with_its_ir_cid(cache_env: Path) -> None:
    torch = pytest.importorskip("torch")
    from ipfs_accelerate.cache.openvino_ir import convert_cached

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    example = {"input": np.ones((1, 4), np.float32)}

    def convert(m, ex, names):
        return ov.convert_model(m, example_input=torch.from_numpy(ex["input"])), "convert_model", ["input"]

    ov_model, path, order = convert_cached(model, example, ["out"], convert, ov.Core)
    (entry,) = Cache(CacheConfig(root=cache_env)).entries()
    assert ir_cid(ov_model) == entry.cid and path == "convert_model"


def test_a_blob_the_plugin_cannot_import_compiles_fresh(cache_env: Path) -> None:
    """OpenVINO 2026.4 exports MoE graphs (GatherMatmul, "extension" opset) that its own
    import_model rejects: the case compiles instead of failing, and the ledger says why."""

    class NoImport:
        def __init__(self) -> None:
            self.core = ov.Core()
            self.compiles = 0

        def compile_model(self, *a: object) -> object:
            self.compiles += 1
            return self.core.compile_model(*a)

        def import_model(self, *a: object) -> object:
            raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:217:\nCannot create GatherMatmul layer from unsupported opset: extension")

        def get_property(self, *a: object) -> object:
            return self.core.get_property(*a)

    core = NoImport()
    want = infer(ov.Core().compile_model(tiny_model(), "CPU", CONFIG))
    got = infer(compile_cached(core, tiny_model(), "CPU", CONFIG))
    assert np.array_equal(got, want) and core.compiles == 2  # the blob's compile, then the fresh one
    stages = ledger.drain()
    assert [e["status"] for e in stages] == ["miss", "error"]
    assert "unsupported opset: extension" in stages[-1]["detail"]
