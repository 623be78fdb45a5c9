"""OpenVINO on its CPU device: convert the PyTorch model offline, compile, run.

Conversion tries, in order: plain ``openvino.convert_model`` (TorchScript tracing), a wrapper
whose forward takes positional inputs and returns a flat tuple (fixes nested outputs), and
``torch.export`` (needed where TorchScript lacks an operator, e.g. whisper's ``aten::diff``).
A model is unsupported only when all three fail; the error lists each failure.

Precision: "fp32" compiles with ``INFERENCE_PRECISION_HINT=f32`` (parity mode); "default" leaves
the plugin's choice (bf16 on CPUs with AVX-512-BF16/AMX) and is reported as its own mode.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from typing import Any

import numpy as np

from .base import (
    Arrays,
    Availability,
    Backend,
    Prepared,
    UnsupportedModel,
    flatten_outputs,
    forward_order,
)


@lru_cache(maxsize=1)
def core():
    import openvino as ov

    return ov.Core()


PROBE_TIMEOUT_S = 120.0

# The probe's interpreter: compiles each IR it is sent and answers one line; a native crash kills
# only this process. Spawned, never forked: OpenVINO's thread pool does not survive fork (a forked
# child deadlocked in compile_model here).
_PROBE_SRC = """
import ctypes, json, sys
try:  # its own session: die with the worker that asked
    ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
except (AttributeError, OSError):
    pass
import openvino as ov
core = ov.Core()
for line in sys.stdin:
    req = json.loads(line)
    try:
        core.compile_model(core.read_model(req["xml"]), "CPU", req["config"])
        sys.stdout.write("ok\\n")
    except Exception as exc:  # a Python-level error: the caller's own compile raises it with its message
        sys.stdout.write("error " + type(exc).__name__ + "\\n")
    sys.stdout.flush()
"""


class CompileCrashed(UnsupportedModel):
    """OpenVINO's compile_model killed the process that called it (a native crash, e.g. SIGFPE)."""


class _Probe:
    """One long-lived helper interpreter per process (the compile probe, the exporter), started on
    first use and after each crash: it answers one line per JSON request."""

    def __init__(self, src: str = _PROBE_SRC, what: str = "OpenVINO compile_model", args: Any = None) -> None:
        import threading

        self.src = src
        self.what = what
        self.args = args or (lambda: [])
        self.proc: Any = None
        self.lock = threading.Lock()

    def stop(self) -> None:
        with self.lock:
            self._kill()

    def _kill(self) -> None:
        """Kill the helper and whatever it forked (its own session): a pool it started must not
        outlive it as orphans."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self._kill_group(self.proc.pid)

    @staticmethod
    def _kill_group(pid: int) -> None:
        import signal

        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:  # nothing left in it
            pass

    def ask(self, request: dict[str, Any], timeout_s: float, detail: str = "") -> str:
        """The helper's answer line; CompileCrashed if it died or did not answer in time."""
        import json
        import selectors
        import signal
        import subprocess
        import sys

        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen([sys.executable, "-c", self.src, *self.args()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL, text=True, start_new_session=True)
            proc = self.proc
            try:
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
            except OSError:
                pass  # it died on its way: the read below sees EOF and the exit status says why
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                ready = sel.select(timeout_s)
            if not ready:
                self._kill()
                raise CompileCrashed(f"{self.what} did not finish in {timeout_s:.0f} s (probe process)")
            if line := proc.stdout.readline():
                return line.strip()
            code = proc.wait()
            self._kill_group(proc.pid)
            what = signal.Signals(-code).name if code < 0 else f"exit status {code}"
            raise CompileCrashed(f"{self.what} crashed with {what}{detail}")

    def compile(self, xml: str, config: dict[str, Any], timeout_s: float) -> None:
        # "ok", or a Python error that the caller's own compile reports with its message
        self.ask({"xml": xml, "config": config}, timeout_s, f" (config {config})")


_PROBE = _Probe()


def _probe_compile(ov_model: Any, config: dict[str, Any], timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Compile once in the probe process before compiling here, so a native crash (OpenVINO
    2026.4's bf16 ``compile_model`` raises SIGFPE on some graphs) is a recorded error, not a dead
    worker. Only the plugin's default precision is probed: f32 compiles have not crashed here, and
    the probe costs one extra compile (plus an IR write) per model."""
    import tempfile
    from pathlib import Path

    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="ov-probe-") as tmp:
        xml = str(Path(tmp) / "model.xml")
        ov.save_model(ov_model, xml, compress_to_fp16=False)
        _PROBE.compile(xml, {k: str(v) for k, v in config.items()}, timeout_s)


@lru_cache(maxsize=1)
def _no_telemetry() -> None:
    """Give the converter OpenVINO's own no-op telemetry stub (what it uses when the optional
    openvino-telemetry package is absent). The openvino wheel depends on that package, and it
    sends a usage event per convert_model: offline each conversion waited ~10 s on it here
    (bert: 12.5 s -> 1.8 s wall, outputs unchanged)."""
    try:
        from openvino.tools.ovc import convert_impl, telemetry_stub, telemetry_utils
    except ImportError:
        return
    convert_impl.tm = telemetry_stub
    telemetry_utils.tm = telemetry_stub


def _flat_wrapper(model: Any, order: list[str]):
    import torch

    class FlatOutputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args):
            out = self.model(**dict(zip(order, args, strict=True)))
            return tuple(flatten_outputs(out).values())

    return FlatOutputs().eval()


# On by default; "0" turns it off. It runs in its own interpreter (``_EXPORTER``): in a sweep of
# many models in one process, plain conversions after failed exporter attempts segfaulted in
# libtorch, which in the runner would have crashed an innocent case's worker.
HF_EXPORTER_ENV = "IPFS_ACCELERATE_OV_HF_EXPORTER"
EXPORT_TIMEOUT_S = 240.0


def hf_exporter_enabled() -> bool:
    return os.environ.get(HF_EXPORTER_ENV, "1") != "0"


# The exporter's interpreter: loads the pickled (model, tensors, order, names), exports, saves the
# IR, answers one JSON line. Its own stdout goes to stderr (transformers prints): answers keep fd 1.
_EXPORT_SRC = """
import ctypes, json, os, sys, warnings
try:  # its own session (so a kill takes what it forked): die with the worker that asked
    ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
except (AttributeError, OSError):
    pass
os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = "1"  # no pool of forked compile workers per interpreter
import resource
limit = int(sys.argv[1])  # address space: an export that needs more fails here with MemoryError
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
import torch
import openvino as ov
from ipfs_accelerate.hardware.backends.openvino import _hf_exporter
for line in sys.stdin:
    req = json.loads(line)
    try:
        model, tensors, order, names = torch.load(req["job"], weights_only=False)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ov.save_model(_hf_exporter(model, tensors, order, names), req["xml"], compress_to_fp16=False)
        answers.write("ok\\n")
    except Exception as exc:
        answers.write("error " + json.dumps(type(exc).__name__ + ": " + str(exc)[:300]) + "\\n")
    answers.flush()
"""

def export_memory_limit() -> int:
    """Bytes of address space the exporter's interpreter may map: a quarter of RAM (6 GiB here).
    flaubert's export grew past 10 GB and the runner's memory cap, which counts a worker's
    children, killed the worker twice; now such an export fails with MemoryError as a reason."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4)


_EXPORTER = _Probe(_EXPORT_SRC, what="transformers' OpenVINO exporter", args=lambda: [str(export_memory_limit())])


def _hf_exporter_isolated(model: Any, tensors: dict[str, Any], order: list[str], output_names: list[str],
                          timeout_s: float = EXPORT_TIMEOUT_S) -> Any:
    """``_hf_exporter`` in the exporter's interpreter; the model travels pickled (``torch.save``).
    After a failed export the interpreter is replaced, so no half-applied patch of one model's
    export meets the next (each verdict is what a fresh process would see)."""
    import json
    import pickle
    import tempfile
    from pathlib import Path

    import openvino as ov
    import torch

    with tempfile.TemporaryDirectory(prefix="ov-export-") as tmp:
        job, xml = Path(tmp) / "job.pt", Path(tmp) / "model.xml"
        try:
            torch.save((model, tensors, order, output_names), job)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:  # a patched forward, a local class
            raise RuntimeError(f"the model cannot travel to the exporter process: {type(exc).__name__}: {str(exc)[:200]}") from exc
        answer = _EXPORTER.ask({"job": str(job), "xml": str(xml)}, timeout_s)
        if answer != "ok":
            _EXPORTER.stop()
            raise RuntimeError(json.loads(answer.removeprefix("error ")) if answer.startswith("error ") else answer)
        weights = np.frombuffer(xml.with_suffix(".bin").read_bytes(), dtype=np.uint8).copy()
        return core().read_model(xml.read_text(), ov.Tensor(weights))


def _hf_exporter(model: Any, tensors: dict[str, Any], order: list[str], output_names: list[str]) -> Any:
    """transformers' own OpenVINO exporter (``transformers.exporters``): torch.export with the
    patches its authors keep for ops OpenVINO's frontend cannot lower (histc, searchsorted, MoE
    routing scatters, symbolic min/max, ...). Last resort: it is the slowest path and marked
    experimental, so graphs the plain converters handle keep their IR. Its ports are named by
    dotted output paths, mapped back to ours by name (or by position when it names them alike)."""
    import transformers

    if not isinstance(model, transformers.PreTrainedModel):
        raise TypeError(f"{type(model).__name__} is not a PreTrainedModel")
    from transformers.exporters.exporter_openvino import OpenVINOConfig, OpenVINOExporter
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its experimental / version-drift warnings, once per model
    try:
        config = OpenVINOConfig(dynamic=True, stateful=False)
        ov_model = OpenVINOExporter().export(model, {k: tensors[k] for k in order}, config=config).program
    finally:
        hf_logging.set_verbosity(verbosity)
    ins = [p.get_any_name() for p in ov_model.inputs]
    if ins != order:
        raise RuntimeError(f"inputs {ins}, expected {order}")
    ports = [p.get_names() for p in ov_model.outputs]
    if len(ports) != len(output_names):
        raise RuntimeError(f"{len(ports)} outputs, expected {len(output_names)}")
    where = [next((i for i, names in enumerate(ports) if n in names), None) for n in output_names]
    if None not in where and where != list(range(len(ports))):  # same names, another order
        import openvino as ov

        results = ov_model.get_results()
        return ov.Model([results[i] for i in where], ov_model.get_parameters(), ov_model.get_friendly_name())
    return ov_model


def _torch_outputs(model: Any, inputs: Arrays, names: list[str]) -> Arrays:
    """The PyTorch model's flat outputs for ``inputs`` (the screen of a dynamic IR on a new shape)."""
    import torch

    order = forward_order(model, list(inputs))
    with torch.no_grad():
        out = flatten_outputs(model(**{k: torch.from_numpy(np.ascontiguousarray(inputs[k])) for k in order}))
    return {k: (v.float() if v.is_floating_point() else v).numpy() for k, v in out.items() if k in names}


def _disagreement(got: Arrays, want: Arrays) -> str:
    """Empty when the IR's outputs match PyTorch's on the same input (shapes, values within
    1e-3 + 1e-2 relative), else the first output that does not and how."""
    for name, ref in want.items():
        value = got.get(name)
        if value is None or np.shape(value) != np.shape(ref):
            return f"{name}: shape {None if value is None else tuple(np.shape(value))}, PyTorch {tuple(np.shape(ref))}"
        if not np.allclose(np.asarray(value, dtype=np.float64), np.asarray(ref, dtype=np.float64), atol=1e-3, rtol=1e-2, equal_nan=True):
            diff = np.abs(np.asarray(value, dtype=np.float64) - np.asarray(ref, dtype=np.float64))
            return f"{name}: max abs {np.nanmax(diff):.3g}"
    return ""


class OpenVINOBackend(Backend):
    name = "openvino"
    precisions = ("fp32", "default")

    def availability(self) -> Availability:
        try:
            devices = core().available_devices
        except Exception as exc:  # ImportError or a broken runtime
            return Availability(False, f"OpenVINO unavailable: {type(exc).__name__}: {exc}")
        if "CPU" not in devices:
            return Availability(False, f"OpenVINO has no CPU device (devices: {devices})")
        return Availability(True, device="CPU")

    def _convert(self, model: Any, example: Arrays, output_names: list[str]) -> tuple[Any, str, list[str]]:
        import openvino as ov
        import torch

        _no_telemetry()
        order = forward_order(model, list(example))
        tensors = {k: torch.from_numpy(np.ascontiguousarray(example[k])) for k in order}
        failures: list[str] = []
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ov_model = ov.convert_model(model, example_input=tensors)
                if len(ov_model.outputs) == len(output_names) and len(ov_model.inputs) == len(order):
                    return ov_model, "convert_model", order
                failures.append(
                    f"convert_model: {len(ov_model.inputs)} inputs/{len(ov_model.outputs)} outputs, "
                    f"expected {len(order)}/{len(output_names)}"
                )
            except Exception as exc:
                failures.append(f"convert_model: {type(exc).__name__}: {str(exc)[:300]}")
            wrapper = _flat_wrapper(model, order)
            args = tuple(tensors[k] for k in order)
            try:
                ov_model = ov.convert_model(wrapper, example_input=args)
                return ov_model, "flat-wrapper", order
            except Exception as exc:
                failures.append(f"flat-wrapper: {type(exc).__name__}: {str(exc)[:300]}")
            try:
                dims = tuple({i: torch.export.Dim.AUTO for i in range(t.dim())} for t in args)
                # the wrapper's forward is `*args`: its dynamic_shapes spec is one tuple for all args
                exported = torch.export.export(wrapper, args, dynamic_shapes=(dims,), strict=False)
                return ov.convert_model(exported), "torch.export", order
            except Exception as exc:
                failures.append(f"torch.export: {type(exc).__name__}: {str(exc)[:300]}")
            if hf_exporter_enabled():
                try:
                    return _hf_exporter_isolated(model, tensors, order, output_names), "hf-exporter", order
                except Exception as exc:
                    failures.append(f"hf-exporter: {type(exc).__name__}: {str(exc)[:300]}")
        raise UnsupportedModel("OpenVINO conversion failed: " + " | ".join(failures))

    def _prepare(self, model: Any, example: Arrays, output_names: list[str]) -> Prepared:
        prepared = self._prepare_one(model, example, output_names)
        baked = getattr(model, "static_inputs", None)
        return self._per_signature(model, example, output_names, prepared, None if baked is None else tuple(baked))

    def _per_signature(self, model: Any, example: Arrays, names: list[str], first: Prepared,
                       baked: tuple[str, ...] | None) -> Prepared:
        """The traced IR answers every input signature it was checked for; others get their own IR.

        Tracing can bake what it saw into a "dynamic" IR: a reshape to the traced batch, an arange
        over the traced length, a Python loop over a tensor's values. Two rules, one table:

        * A model that declares ``static_inputs`` (packed-patch towers unroll a loop over
          ``image_grid_thw``) gets one IR per signature: every input's shape plus those inputs'
          values. An IR traced on one picture silently returns one picture's rows for two.
        * Any other model keeps its dynamic IR for a new input shape if, the first time that shape
          arrives, the IR agrees with the PyTorch model on the same input (shapes equal, values
          within 1e-3 + 1e-2 relative: a screen for baked shapes, not the verdict, which stays with
          the harness's parity check against the CPU reference). If it does not, that shape gets
          an IR traced on it and the notes say which shape the dynamic IR got wrong and by how much.
        """
        keep = baked or ()

        def signature(inputs: Arrays) -> tuple[Any, ...]:
            return tuple(sorted((k, np.shape(v), np.asarray(v).tobytes() if k in keep else b"") for k, v in inputs.items()))

        graphs = {signature(example): first}
        notes = list(first.notes)
        if baked is not None:
            notes.append(f"one IR per input signature: tracing bakes the values of {', '.join(baked)}")
        prepared = Prepared(first.backend, first.device, first.precision, lambda inputs: run(inputs), path=first.path,
                            notes=notes, variants=first.variants)

        def run(inputs: Arrays) -> Arrays:
            key = signature(inputs)
            if key not in graphs:
                if baked is not None:
                    graphs[key] = self._prepare_one(model, inputs, names)
                else:
                    try:
                        got = first(inputs)
                        wrong = _disagreement(got, _torch_outputs(model, inputs, names))
                    except RuntimeError as exc:  # OpenVINO's shape inference rejects the new shape
                        wrong = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
                    if not wrong:
                        graphs[key] = first
                        return got
                    graphs[key] = self._prepare_one(model, inputs, names)
                    shapes = ", ".join(f"{k}{tuple(np.shape(v))}" for k, v in sorted(inputs.items()))
                    notes.append(f"the dynamic IR answered {shapes} wrongly ({wrong}): an IR traced on that shape answers it")
                    if not prepared.path.endswith("+per-shape"):
                        prepared.path += "+per-shape"
            return graphs[key](inputs)

        return prepared

    def _prepare_one(self, model: Any, example: Arrays, output_names: list[str]) -> Prepared:
        from ...cache.openvino_ir import convert_cached  # content-addressed IR cache (issue 12)

        ov_model, path, order = convert_cached(model, example, output_names, self._convert, core)
        prepared = self._compile(ov_model, path, order, list(output_names), self.precision)
        if self.precision == "fp32":
            prepared.variants["default"] = lambda: self._compile(ov_model, path, order, list(output_names), "default")
        return prepared

    def _compile(self, ov_model: Any, path: str, order: list[str], names: list[str], precision: str) -> Prepared:
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": 1}
        if precision == "fp32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        from ...cache.openvino_compiled import compile_cached

        # seam(speed): the compiled blob and the probe's outcome are cached by IR content (issue 12)
        probe = None if precision == "fp32" else (lambda: _probe_compile(ov_model, config))
        compiled = compile_cached(core(), ov_model, "CPU", config, probe=probe, crashed=CompileCrashed)
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        actual = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        request = compiled.create_infer_request()

        def run(inputs: Arrays) -> Arrays:
            missing = [k for k in order if k not in inputs]
            if missing:
                raise KeyError(f"inputs missing {missing}")
            result = request.infer([np.ascontiguousarray(inputs[k]) for k in order])
            values = [result[out] for out in compiled.outputs]
            if len(values) != len(names):
                raise RuntimeError(f"OpenVINO returned {len(values)} outputs, expected {len(names)}")
            return {n: np.array(v, copy=True) for n, v in zip(names, values, strict=True)}

        label = "fp32" if precision == "fp32" else f"default({actual})"
        return Prepared(self.name, "CPU", label, run, path=path, notes=[f"inference precision {actual}"])
