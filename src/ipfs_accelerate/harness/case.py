"""One (model, task, hardware, precision) case: build, prepare, run, measure, compare.

Stages are lazy and memoised so pytest tests (init / single / batch / parity / expected /
metrics) share one build per process, and `run()` executes them all into a `CaseResult` for the
runner. There is no fallback: a stage that raises is a failure with its exception text; a missing
dependency or backend is a skip with its reason; a declared known incompatibility runs as a
strict xfail, so one that starts working is reported (`xpassed`) instead of hiding.
"""

from __future__ import annotations

import importlib.util
import os
import time
import traceback
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .. import registry
from ..hardware.backends import Arrays, Prepared, UnsupportedModel, get_backend
from ..registry import ModelSpec, TaskSpec
from ..results.schema import BatchCheck, CacheUse, CaseResult, Metrics, Parity, PrecisionVariant
from ..skills.base import Outputs, Skill, get_skill
from . import compare, fingerprint
from .trackers import MemoryTracker, measure


@dataclass
class Settings:
    threads: int = int(os.environ.get("IPFS_ACCEL_THREADS", "1"))
    warmup: int = 1
    runs: int = 5
    batch_size: int = 2
    benchmark_batches: tuple[int, ...] = ()
    seed: int = 0
    model_id: str | None = None
    expected_dir: Path | None = None
    update_expected: bool = False
    scale: str = "tiny"  # seam(scale): "full" builds the reference size (harness/scale.py)

    @classmethod
    def benchmark(cls, **kw: Any) -> Settings:
        return cls(warmup=5, runs=20, benchmark_batches=(1, 4, 16), **kw)


class Gate(Exception):
    """A case that must not run here: `status` is 'skipped' or 'xfail' and `reason` says why."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def pin_threads(n: int) -> None:
    """One thread per worker for torch (OpenVINO gets it per compile): parallel workers must not
    oversubscribe the cores, and single-thread timings are stable."""
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


_CPU_TWIN: dict[str, Any] = {}  # seam(speed): the last CPU fp32 case's build, inputs and outputs


class Case:
    def __init__(
        self,
        model: str,
        hardware: str = "cpu",
        task: str | None = None,
        precision: str = "fp32",
        settings: Settings | None = None,
    ) -> None:
        self.spec: ModelSpec = registry.get(model)
        self.task: TaskSpec = self.spec.task_spec(task)
        self.hardware = hardware
        self.precision = precision
        self.settings = settings or Settings()
        self.backend = get_backend(hardware, precision=precision, threads=self.settings.threads)
        self.skill: Skill = get_skill(self.task.skill)
        self.metrics = Metrics()
        self._first_ms: float | None = None

    # ---- gating -------------------------------------------------------------------------
    def gate(self) -> None:
        """Raise Gate('skipped'|'xfail', reason) when this case must not run as a normal test."""
        for module in self.spec.requires:
            if importlib.util.find_spec(module) is None:
                raise Gate("skipped", f"requires {module!r}, which is not installed")
        avail = self.backend.availability()
        if not avail.ok:
            raise Gate("skipped", avail.reason)
        if self.settings.model_id:
            from .pretrained import resolve

            ckpt = resolve(self.spec, self.settings.model_id)
            if ckpt is None or ckpt.path is None:
                raise Gate("skipped", f"pretrained checkpoint unavailable: {ckpt.reason if ckpt else 'none configured'}")
        if self.settings.scale == "full":  # seam(scale): skip, with the computed need, before allocating
            from .scale import gate_full

            if need := gate_full(self.spec, self.task, self.hardware):
                raise Gate("skipped", need)
        reason = self.task.known_incompatible.get(self.hardware) or self.spec.known_incompatible.get(self.hardware)
        if reason:
            raise Gate("xfail", f"known incompatibility: {reason}")

    @property
    def source(self) -> str:
        if self.settings.scale == "full" and not self.settings.model_id:  # seam(scale)
            return "full-random"
        return f"pretrained:{self.settings.model_id}" if self.settings.model_id else "tiny-random"

    # ---- stages (memoised) --------------------------------------------------------------
    @cached_property
    def _cpu_twin(self) -> dict[str, Any]:
        """seam(speed), decided once per case: the CPU fp32 case of this model, task and settings, if
        its outputs exist in this process (runner batches run a file's CPU tests before its OpenVINO
        ones): its build, inputs and outputs serve this OpenVINO case (same seed, same numbers)."""
        twin = _CPU_TWIN if self.hardware == "openvino" and self.precision == "fp32" else {}
        return dict(twin) if twin.get("key") == (self.spec.name, repr(self.task), repr(self.settings)) else {}

    @cached_property
    def built(self) -> Any:
        from . import build

        pin_threads(self.settings.threads)
        if twin := self._cpu_twin:
            built = twin["built"]
        elif self.settings.model_id:
            from .pretrained import resolve

            ckpt = resolve(self.spec, self.settings.model_id)
            if ckpt is None or ckpt.path is None:
                raise FileNotFoundError(ckpt.reason if ckpt else f"no checkpoint for {self.spec.name}")
            built = build.build_pretrained(self.spec, self.task, str(ckpt.path))
        elif self.settings.scale == "full":  # seam(scale)
            from .scale import build_full

            built = build_full(self.spec, self.task, seed=self.settings.seed)
        else:
            built = build.build_tiny(self.spec, self.task, seed=self.settings.seed)
        self.metrics.build_s = built.build_s
        self.metrics.params = built.params
        return built

    @cached_property
    def single_inputs(self) -> Arrays:
        return self._cpu_twin.get("single_inputs") or self.skill.inputs(self.built, self.task, 1)

    @cached_property
    def batch_inputs(self) -> Arrays:
        return self._cpu_twin.get("batch_inputs") or self.skill.inputs(self.built, self.task, self.settings.batch_size)

    @cached_property
    def reference(self) -> dict[str, Outputs]:
        """CPU eager outputs for the single input and each batch row (computed before any backend
        touches the model: CUDA moves it in place)."""
        if twin := self._cpu_twin:
            return twin["outputs"]
        cpu = get_backend("cpu", threads=self.settings.threads).prepare(self.built.model, self.single_inputs, [])
        return self._run_all(cpu)

    def _rows(self) -> list[Arrays]:
        n = self.settings.batch_size
        return [{k: v[i : i + 1] for k, v in self.batch_inputs.items()} for i in range(n)]

    def _run_all(self, prepared: Prepared, single: Outputs | None = None) -> dict[str, Outputs]:
        # seam(speed): a caller that already ran (and timed) the single input passes it in: not run twice
        out = {"single": single if single is not None else self.skill.run(prepared, self.single_inputs, self.built, self.task)}
        out["batch"] = self.skill.run(prepared, self.batch_inputs, self.built, self.task)
        for i, row in enumerate(self._rows()):
            out[f"row{i}"] = self.skill.run(prepared, row, self.built, self.task)
        return out

    @cached_property
    def prepared(self) -> Prepared:
        output_names = list(self.reference["single"].arrays) if self.hardware != "cpu" else []
        example = self.skill.example(self.built, self.task)
        from ..cache import ledger  # what the artifact cache did while preparing (issue 12)

        ledger.drain()  # events left by anything before this case are not this case's
        prepared = self.backend.prepare(self.built.model, example, output_names)
        self.metrics.prepare_s = prepared.prepare_s
        self.metrics.cache = [CacheUse(**e) for e in ledger.drain()]
        return prepared

    @cached_property
    def outputs(self) -> dict[str, Outputs]:
        """This backend's outputs (single, batch, batch rows run alone); first call is timed."""
        if self.hardware == "cpu" and self.precision == "fp32":
            prepared = self.prepared
            start = time.perf_counter()
            single = self.skill.run(prepared, self.single_inputs, self.built, self.task)
            self._first_ms = (time.perf_counter() - start) * 1000
            out = self._run_all(prepared, single)
            _CPU_TWIN.clear()  # seam(speed): see _cpu_twin
            _CPU_TWIN.update(key=(self.spec.name, repr(self.task), repr(self.settings)), built=self.built,
                             single_inputs=self.single_inputs, batch_inputs=self.batch_inputs, outputs=out)
        else:
            _ = self.reference
            prepared = self.prepared
            start = time.perf_counter()
            single = self.skill.run(prepared, self.single_inputs, self.built, self.task)
            self._first_ms = (time.perf_counter() - start) * 1000
            out = self._run_all(prepared, single)
        self.metrics.first_inference_ms = self._first_ms
        return out

    # ---- checks --------------------------------------------------------------------------
    def check_single(self) -> Outputs:
        out = self.outputs["single"]
        self.skill.check(out, self.built, self.task, 1, self.single_inputs)
        return out

    def check_batch(self) -> BatchCheck:
        out = self.outputs
        batch = out["batch"]
        self.skill.check(batch, self.built, self.task, self.settings.batch_size, self.batch_inputs)
        rows = [out[f"row{i}"] for i in range(self.settings.batch_size)]
        atol, rtol, _, _ = compare.tolerance(self.spec, self.hardware, self.precision)
        return compare.batch_vs_single(
            batch.arrays,
            [r.arrays for r in rows],
            batch.tokens,
            [r.tokens for r in rows],
            atol=max(atol, 1e-4),
            rtol=max(rtol, 1e-3),
        )

    def check_parity(self) -> Parity:
        tol = compare.tolerance(self.spec, self.hardware, self.precision)
        ref = self.reference["single"]
        got = self.outputs["single"]
        return compare.parity(got.arrays, ref.arrays, got.tokens, ref.tokens, tol)

    def fingerprint(self):
        out = self.outputs["single"]
        return fingerprint.make(self.spec.name, self.task.task, out.arrays, out.tokens, self.source)

    def check_expected(self) -> tuple[str, str]:
        """Compare the CPU fingerprint with the committed one: ('match'|'mismatch'|'missing'|'updated', diff)."""
        if self.settings.expected_dir is None or self.settings.model_id or self.settings.scale != "tiny":  # seam(scale)
            return "not-checked", ""
        return fingerprint.check(self.settings.expected_dir, self.spec.name, self.task.task, self.fingerprint(),
                                 self.settings.update_expected)

    def measure_latency(self) -> None:
        prepared = self.prepared
        s = self.settings
        self.metrics.latency = measure(
            lambda: self.skill.run(prepared, self.single_inputs, self.built, self.task), warmup=s.warmup, runs=s.runs
        )
        for bs in s.benchmark_batches:
            inputs = self.skill.inputs(self.built, self.task, bs)
            lat = measure(lambda inputs=inputs: self.skill.run(prepared, inputs, self.built, self.task), warmup=s.warmup, runs=s.runs)
            self.metrics.batch_latency[str(bs)] = lat
            self.metrics.throughput_per_s[str(bs)] = bs * 1000.0 / lat.p50_ms

    def measure_variants(self) -> list[PrecisionVariant]:
        """Run the backend's other precisions (reported, not gated: parity uses fp32)."""
        if self.settings.scale == "full":  # seam(scale): precisions, seq sweep, TTFT at real size
            from .scale import full_benchmark

            return full_benchmark(self)
        out = []
        ref = self.reference["single"]
        for name, make in self.prepared.variants.items():
            try:
                prepared = make()
            except UnsupportedModel as exc:  # e.g. the compile crashed in the backend's probe process
                out.append(PrecisionVariant(precision=name, ok=False, error=f"{type(exc).__name__}: {exc}"))
                continue
            got = self.skill.run(prepared, self.single_inputs, self.built, self.task)
            rows = [compare.compare_arrays(k, got.arrays[k], v, 0, 0, 0) for k, v in ref.arrays.items() if k in got.arrays]
            lat = measure(lambda p=prepared: self.skill.run(p, self.single_inputs, self.built, self.task), warmup=1, runs=self.settings.runs)
            out.append(
                PrecisionVariant(
                    precision=prepared.precision if name == "default" else name,
                    max_abs=max((r.max_abs for r in rows), default=0.0),
                    cosine=min((r.cosine for r in rows), default=1.0),
                    tokens_match=None if ref.tokens is None else bool(np.array_equal(got.tokens, ref.tokens)),
                    p50_ms=lat.p50_ms,
                )
            )
        return out

    # ---- everything ----------------------------------------------------------------------
    def run(self) -> CaseResult:
        """Run every stage; never raises for a model problem — the result says what happened."""
        start = time.perf_counter()
        result = CaseResult(
            model=self.spec.name,
            task=self.task.task,
            category=self.spec.category,
            hardware=self.hardware,
            precision=self.precision,
            source=self.source,
            status="passed",
        )
        xfail_reason = ""
        try:
            self.gate()
        except Gate as g:
            if g.status == "skipped":
                result.status, result.reason = "skipped", g.reason
                result.duration_s = time.perf_counter() - start
                return result
            xfail_reason = g.reason
        problems: list[str] = []
        try:
            with MemoryTracker() as mem:
                self.check_single()
                batch = self.check_batch()
                result.batch = batch
                if not batch.ok:
                    problems.append(f"batch rows differ from single runs (max abs {batch.max_abs:.3g})")
                if batch.flat_outputs:
                    result.flags.append(f"flat outputs (std<{compare.FLAT_STD}): {', '.join(batch.flat_outputs)}")
                if self.hardware != "cpu" or self.precision != "fp32":
                    par = self.check_parity()
                    result.parity = par
                    if not par.ok:
                        bad = [o for o in par.outputs if not o.ok]
                        detail = ", ".join(f"{o.name} max_abs={o.max_abs:.3g} cos={o.cosine:.6f}" for o in bad[:3])
                        if par.tokens_match is False:
                            detail += " greedy tokens differ"
                        problems.append(f"parity vs cpu failed: {detail}")
                else:
                    status, diff = self.check_expected()
                    result.expected, result.expected_diff = status, diff
                    result.fingerprint = self.fingerprint().digest()  # seam(history-2): drift across runs
                    if status == "mismatch":
                        problems.append("expected results mismatch:\n" + diff)
                    elif status == "missing":
                        problems.append(diff)
                self.measure_latency()
                result.variants = self.measure_variants()
            self.metrics.peak_rss_mb = mem.peak_mb
            if self.hardware == "cuda":
                import torch

                self.metrics.cuda_max_allocated_mb = torch.cuda.max_memory_allocated() / 2**20
            result.device = self.prepared.device
            result.conversion = self.prepared.path
            if self.prepared.path.endswith("+per-shape"):  # passes only with static shapes: say so beside the verdict
                wrong = next((n for n in self.prepared.notes if "wrongly" in n), "")
                result.flags.append(f"dynamic-shape IR wrong, static per-shape IRs used: {wrong}"[:300])
            result.precision = self.prepared.precision
        except Exception as exc:
            problems.append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}")
        result.metrics = self.metrics
        if xfail_reason:
            result.status = "xfailed" if problems else "xpassed"
            result.reason = xfail_reason if problems else f"declared incompatibility no longer reproduces ({xfail_reason}); remove it from the registry"
            if problems:
                result.reason += f" | observed: {problems[0].splitlines()[0][:300]}"
        elif problems:
            result.status, result.reason = "failed", "\n".join(problems)
        result.duration_s = time.perf_counter() - start
        return result
