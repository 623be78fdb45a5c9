"""Hardware probes answer each question for real: fed each possible answer, they say it."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from ipfs_accelerate.hardware import detect
from ipfs_accelerate.hardware.backends import cuda as cuda_backend

CPUINFO = """processor : 0
model name : Test CPU @ 3.0GHz
physical id : 0
core id : 0
flags : fpu sse4_2 avx avx2 fma avx512f avx512_bf16 amx_tile amx_bf16
processor : 1
model name : Test CPU @ 3.0GHz
physical id : 0
core id : 1
flags : fpu sse4_2 avx avx2 fma avx512f avx512_bf16 amx_tile amx_bf16
"""


def fake_torch(*, cuda: str | None, hip: str | None = None, count: int = 0, mps: tuple[bool, bool] = (False, False)):
    props = SimpleNamespace(name="Fake GPU", total_memory=8 * 2**30, major=9, minor=0)
    return SimpleNamespace(
        version=SimpleNamespace(cuda=cuda, hip=hip),
        cuda=SimpleNamespace(
            is_available=lambda: count > 0,
            device_count=lambda: count,
            get_device_properties=lambda i: props,
        ),
        backends=SimpleNamespace(mps=SimpleNamespace(is_built=lambda: mps[0], is_available=lambda: mps[1])),
    )


def test_cpu_flags_and_cores_from_cpuinfo():
    info = detect.probe_cpu(CPUINFO, logical=2, usable=2)
    assert info.model == "Test CPU @ 3.0GHz"
    assert info.physical_cores == 2
    assert info.bf16 and info.amx
    assert "avx512f" in info.flags and "fpu" not in info.flags


def test_cpu_without_avx512():
    info = detect.probe_cpu("flags : sse4_2 avx avx2\n", logical=4, usable=1)
    assert not info.bf16 and not info.amx and "avx512f" not in info.flags
    assert info.usable_cores == 1


@pytest.mark.parametrize(
    "torch_mod, available, reason",
    [
        (None, False, "torch not installed"),
        (fake_torch(cuda=None), False, "CPU-only torch build"),
        (fake_torch(cuda="12.4", count=0), False, "no CUDA device visible"),
        (fake_torch(cuda=None, hip="6.1", count=1), False, "ROCm build"),
        (fake_torch(cuda="12.4", count=2), True, ""),
    ],
)
def test_cuda_probe_each_answer(torch_mod, available, reason):
    info = detect.probe_cuda(torch_mod)
    assert info.available is available
    assert reason in info.reason
    if available:
        assert len(info.devices) == 2 and info.devices[0]["capability"] == "9.0"


def test_rocm_probe():
    assert detect.probe_rocm(fake_torch(cuda="12.4", count=1)).available is False
    assert detect.probe_rocm(fake_torch(cuda=None, hip="6.1", count=0)).reason == "no ROCm device visible"
    assert detect.probe_rocm(fake_torch(cuda=None, hip="6.1", count=1)).available is True


@pytest.mark.parametrize("mps, available", [((False, False), False), ((True, False), False), ((True, True), True)])
def test_mps_probe(mps, available):
    assert detect.probe_mps(fake_torch(cuda=None, mps=mps)).available is available


class FakeCore:
    def __init__(self, devices, fail=False):
        self._devices, self._fail = devices, fail

    @property
    def available_devices(self):
        if self._fail:
            raise RuntimeError("plugin load failed")
        return self._devices

    def get_property(self, dev, prop):
        return f"{dev} device"


def test_openvino_probe_each_answer():
    assert detect.probe_openvino(FakeCore(["CPU", "GPU"])).available
    assert detect.probe_openvino(FakeCore([])).reason == "openvino reports no devices"
    assert "plugin load failed" in detect.probe_openvino(FakeCore([], fail=True)).reason


def test_real_machine_probe_is_consistent():
    """On this machine: the report agrees with what torch and openvino themselves say."""
    torch = pytest.importorskip("torch")
    report = detect.detect()
    assert report.cuda.available == (torch.cuda.is_available() and not getattr(torch.version, "hip", None))
    assert "cpu" in report.available()
    assert report.cpu.logical_cores >= 1


def test_cli_json(capsys):
    from ipfs_accelerate.cli import main

    assert main(["hardware", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"cpu", "cuda", "rocm", "mps", "openvino", "backends"}


# ---- CUDA device selection and dtype handling, without a GPU ------------------------------
def test_select_device_each_answer():
    assert "CPU-only" in cuda_backend.select_device(fake_torch(cuda=None), env={}).reason
    assert not cuda_backend.select_device(fake_torch(cuda="12.4", count=0), env={}).ok
    ok = cuda_backend.select_device(fake_torch(cuda="12.4", count=2), env={"IPFS_ACCEL_CUDA_DEVICE": "1"})
    assert ok.ok and ok.device == "cuda:1"
    bad = cuda_backend.select_device(fake_torch(cuda="12.4", count=2), env={"IPFS_ACCEL_CUDA_DEVICE": "2"})
    assert not bad.ok and "only 2 visible" in bad.reason
    junk = cuda_backend.select_device(fake_torch(cuda="12.4", count=1), env={"IPFS_ACCEL_CUDA_DEVICE": "x"})
    assert not junk.ok and "not an integer" in junk.reason


def test_cuda_backend_precisions_and_tolerances():
    from ipfs_accelerate import registry
    from ipfs_accelerate.harness import compare

    for precision in ("fp32", "fp16", "bf16"):
        assert cuda_backend.CUDABackend(precision=precision).precision == precision
    with pytest.raises(ValueError, match="supports precisions"):
        cuda_backend.CUDABackend(precision="int4")
    spec = registry.get("bert")
    assert compare.tolerance(spec, "cuda", "fp32")[0] == 1e-4
    assert compare.tolerance(spec, "cuda", "fp16")[0] > compare.tolerance(spec, "cuda", "fp32")[0]


def test_cuda_case_skips_honestly_without_gpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the skip path is for CPU-only machines")
    from ipfs_accelerate.harness.case import Case

    result = Case("bert", "cuda").run()
    assert result.status == "skipped"
    assert "CUDA unavailable" in result.reason


def test_torch_backend_casts_float_inputs_only():
    """The dtype rule the CUDA backend uses, exercised on CPU with bf16: ids stay int64."""
    pytest.importorskip("torch")
    import numpy as np

    from ipfs_accelerate.hardware.backends import get_backend

    class Probe:
        def __init__(self):
            self.seen = {}

        def to(self, **kw):
            return self

        def __call__(self, **feed):
            self.seen = {k: v.dtype for k, v in feed.items()}
            return {"out": feed["x"] * 2}

    probe = Probe()
    prepared = get_backend("cpu", precision="bf16").prepare(probe, {}, [])
    out = prepared({"x": np.ones((2, 2), np.float32), "ids": np.ones((2,), np.int64)})
    import torch

    assert probe.seen == {"x": torch.bfloat16, "ids": torch.int64}
    assert out["out"].dtype == np.float32 and float(out["out"][0, 0]) == 2.0


# ---- OpenVINO compile probe: a native crash in compile_model is an error, not a dead worker ------

# Stands in for the probe's interpreter only to decide how a compile ends: the request's "xml"
# names the ending (the real one compiles the IR file at that path).
FAKE_PROBE = """
import json, os, signal, sys, time
for line in sys.stdin:
    how = json.loads(line)["xml"]
    if how == "sigfpe":
        os.kill(os.getpid(), signal.SIGFPE)
    if how == "hang":
        time.sleep(60)
    sys.stdout.write("ok\\n" if how != "raise" else "error RuntimeError\\n")
    sys.stdout.flush()
"""


def test_probe_turns_native_crash_into_compile_crashed_and_restarts() -> None:
    from ipfs_accelerate.hardware.backends import openvino as ov_backend

    probe = ov_backend._Probe(FAKE_PROBE)
    assert probe.compile("ok", {}, 30) is None
    first = probe.proc
    assert probe.compile("raise", {}, 30) is None  # a Python error: the caller's own compile reports it
    with pytest.raises(ov_backend.CompileCrashed, match="SIGFPE") as err:
        probe.compile("sigfpe", {"NUM_STREAMS": "1"}, 30)
    assert isinstance(err.value, ov_backend.UnsupportedModel)  # harness records it as the variant's error
    assert probe.compile("ok", {}, 30) is None  # a fresh interpreter took over
    assert probe.proc is not first
    with pytest.raises(ov_backend.CompileCrashed, match="did not finish in 1 s"):
        probe.compile("hang", {}, 1)
    assert probe.proc.poll() is not None  # the hung one was killed, not leaked
    probe.proc.stdin.close()


def test_probe_compiles_a_real_ir() -> None:
    ov = pytest.importorskip("openvino")
    import numpy as np
    from openvino import opset13 as ops

    from ipfs_accelerate.hardware.backends import openvino as ov_backend

    x = ops.parameter([1, 4], np.float32, name="x")
    model = ov.Model([ops.relu(x)], [x], "relu")
    ov_backend._probe_compile(model, {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1}, timeout_s=120)
