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
import json, sys
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
    """One long-lived probe interpreter per process, started on first use and after each crash."""

    def __init__(self, src: str = _PROBE_SRC) -> None:
        import threading

        self.src = src
        self.proc: Any = None
        self.lock = threading.Lock()

    def compile(self, xml: str, config: dict[str, Any], timeout_s: float) -> None:
        import json
        import selectors
        import signal
        import subprocess
        import sys

        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen([sys.executable, "-c", self.src], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            proc = self.proc
            try:
                proc.stdin.write(json.dumps({"xml": xml, "config": config}) + "\n")
                proc.stdin.flush()
            except OSError:
                pass  # it died on its way: the read below sees EOF and the exit status says why
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                ready = sel.select(timeout_s)
            if not ready:
                proc.kill()
                proc.wait()
                raise CompileCrashed(f"OpenVINO compile_model did not finish in {timeout_s:.0f} s (probe process)")
            if proc.stdout.readline():
                return  # compiled, or a Python error the caller's own compile reports with its message
            code = proc.wait()
            what = signal.Signals(-code).name if code < 0 else f"exit status {code}"
            raise CompileCrashed(f"OpenVINO compile_model crashed with {what} (config {config})")


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


# Opt-in until it runs in a spawned converter: in a sweep of many models in one process, a later
# plain conversion segfaulted in libtorch (twice, after failed exporter attempts earlier in the
# same process), which in the runner would crash an innocent case's worker.
HF_EXPORTER_ENV = "IPFS_ACCELERATE_OV_HF_EXPORTER"


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
            if os.environ.get(HF_EXPORTER_ENV) == "1":
                try:
                    return _hf_exporter(model, tensors, order, output_names), "hf-exporter", order
                except Exception as exc:
                    failures.append(f"hf-exporter: {type(exc).__name__}: {str(exc)[:300]}")
        raise UnsupportedModel("OpenVINO conversion failed: " + " | ".join(failures))

    def _prepare(self, model: Any, example: Arrays, output_names: list[str]) -> Prepared:
        prepared = self._prepare_one(model, example, output_names)
        baked = getattr(model, "static_inputs", None)
        return prepared if baked is None else self._per_input(model, example, output_names, prepared, tuple(baked))

    def _per_input(self, model: Any, example: Arrays, names: list[str], first: Prepared, baked: tuple[str, ...]) -> Prepared:
        """One IR per input signature, for models whose tracing bakes some inputs' *values* into
        the graph (packed-patch towers unroll a Python loop over ``image_grid_thw``): an IR traced
        on one picture silently returns one picture's rows for two. The signature is every
        input's shape plus the values of the ``static_inputs`` the model declares."""

        def signature(inputs: Arrays) -> tuple[Any, ...]:
            return tuple(sorted((k, np.shape(v), np.asarray(v).tobytes() if k in baked else b"") for k, v in inputs.items()))

        graphs = {signature(example): first}

        def run(inputs: Arrays) -> Arrays:
            key = signature(inputs)
            if key not in graphs:
                graphs[key] = self._prepare_one(model, inputs, names)
            return graphs[key](inputs)

        notes = [*first.notes, f"one IR per input signature: tracing bakes the values of {', '.join(baked)}"]
        return Prepared(first.backend, first.device, first.precision, run, path=first.path, notes=notes, variants=first.variants)

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
