"""One diffusion case on one backend: build, prepare every sub-model, run, compare, measure.

The stages mirror `harness.case.Case` (lazy, memoised, a `run()` that never raises for a model
problem) and reuse its pieces — backends, `compare.parity`, the expected-results fingerprint and
the latency/memory trackers — so diffusion results are ordinary `CaseResult`s in the same reports.
"""

from __future__ import annotations

import importlib.util
import time
import traceback
from functools import cached_property

import numpy as np

from ..hardware.backends import Arrays, Prepared, get_backend
from ..harness import compare, fingerprint
from ..harness.case import Gate, Settings, pin_threads
from ..harness.trackers import MemoryTracker, measure
from ..results.schema import BatchCheck, CaseResult, Metrics, Parity, PrecisionVariant
from . import pipeline, spec
from .build import Built, build
from .pipeline import Result

REQUIRES = ("diffusers", "transformers", "tokenizers")


class DiffusionCase:
    def __init__(self, name: str, hardware: str = "cpu", precision: str = "fp32", settings: Settings | None = None) -> None:
        self.spec = spec.get(name)
        self.hardware = hardware
        self.precision = precision
        self.settings = settings or Settings()
        self.backend = get_backend(hardware, precision=precision, threads=self.settings.threads)
        self.metrics = Metrics()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def task(self) -> str:
        return self.spec.task

    def gate(self) -> None:
        for module in REQUIRES:
            if importlib.util.find_spec(module) is None:
                raise Gate("skipped", f"requires {module!r}, which is not installed")
        avail = self.backend.availability()
        if not avail.ok:
            raise Gate("skipped", avail.reason)

    # ---- stages (memoised) --------------------------------------------------------------
    @cached_property
    def built(self) -> Built:
        pin_threads(self.settings.threads)
        built = build(self.spec)
        self.metrics.build_s, self.metrics.params = built.build_s, built.params
        return built

    def _prepare(self, backend_name: str) -> dict[str, Prepared]:
        backend = self.backend if backend_name == self.hardware else get_backend(backend_name, threads=self.settings.threads)
        return {role: backend.prepare(p.module, p.example, p.outputs) for role, p in self.built.parts.items()}

    @cached_property
    def reference(self) -> Result:
        """CPU eager outputs, computed before another backend touches the modules."""
        return pipeline.run(self.built, self._prepare("cpu"))

    @cached_property
    def prepared(self) -> dict[str, Prepared]:
        if self.hardware != "cpu":
            _ = self.reference
        start = time.perf_counter()
        parts = self._prepare(self.hardware)
        self.metrics.prepare_s = time.perf_counter() - start
        return parts

    @cached_property
    def outputs(self) -> Result:
        parts = self.prepared
        start = time.perf_counter()
        out = pipeline.run(self.built, parts)
        self.metrics.first_inference_ms = (time.perf_counter() - start) * 1000
        return out

    # ---- checks --------------------------------------------------------------------------
    def check_single(self) -> Result:
        """Shapes follow the configs, values are finite and not flat, the image lies in [0, 1]."""
        out = self.outputs
        for name, value in out.arrays.items():
            if not np.all(np.isfinite(value)):
                raise AssertionError(f"{name}: non-finite values")
            if compare.is_flat(value):
                raise AssertionError(f"{name}: flat output (std < {compare.FLAT_STD}) proves nothing")
        s, b = self.spec, self.built
        if s.kind == "pipeline":
            size = s.latent_size * b.vae_scale
            expect = {"latents": (1, 4, s.latent_size, s.latent_size), "image": (1, size, size, 3)}
            img = out.arrays["image"]
            if img.min() < 0.0 or img.max() > 1.0:
                raise AssertionError(f"image outside [0, 1]: {img.min()}..{img.max()}")
        elif s.kind == "unet":
            expect = {"noise_pred": b.parts["unet"].example["sample"].shape}
        else:
            expect = {"reconstruction": b.parts["vae"].example["sample"].shape}
        for name, shape in expect.items():
            if tuple(out.arrays[name].shape) != tuple(shape):
                raise AssertionError(f"{name}: shape {out.arrays[name].shape} != {tuple(shape)}")
        return out

    def check_repeat(self) -> float:
        """Max abs difference of a second run with the same seeds (0.0 when deterministic)."""
        again = pipeline.run(self.built, self.prepared)
        return max(float(np.abs(again.arrays[k].astype(np.float64) - v).max()) for k, v in self.outputs.arrays.items())

    def batch_inputs(self) -> Arrays | None:
        """Standalone cases: the example plus a second seeded row; None for whole pipelines."""
        if self.spec.kind == "pipeline":
            return None
        role = "unet" if self.spec.kind == "unet" else "vae"
        ex = self.built.parts[role].example
        rng = np.random.default_rng(self.spec.seed + 1)
        other = {k: (v + rng.standard_normal(v.shape).astype(v.dtype) if k != "timestep" else v + 7) for k, v in ex.items()}
        return {k: np.concatenate([ex[k], other[k]]) for k in ex}

    def check_batch(self) -> BatchCheck | None:
        batch = self.batch_inputs()
        if batch is None:
            return None
        out = pipeline.run(self.built, self.prepared, batch)
        rows = [pipeline.run(self.built, self.prepared, {k: v[i : i + 1] for k, v in batch.items()}).arrays for i in range(2)]
        atol, rtol, _, _ = self.tolerance()
        return compare.batch_vs_single(out.arrays, rows, None, [None, None], atol=max(atol, 1e-4), rtol=max(rtol, 1e-3))

    def tolerance(self) -> tuple[float, float, float, str]:
        base = self.precision.split("(")[0]
        own = self.spec.tolerance.get(f"{self.hardware}:{base}") or self.spec.tolerance.get(self.hardware)
        if own:
            return own.atol, own.rtol, own.min_cosine, own.reason
        atol, rtol, cos = compare.TOLERANCES.get((self.hardware, base), (1e-4, 1e-3, 0.99999))
        return atol, rtol, cos, ""

    def check_parity(self) -> Parity:
        ref, got = self.reference, self.outputs
        return compare.parity(got.arrays, ref.arrays, got.tokens, ref.tokens, self.tolerance())

    def fingerprint(self):
        out = self.outputs
        arrays = dict(out.arrays)
        if "image" in arrays:
            arrays["image_uint8"] = pipeline.image_uint8(arrays["image"])
        return fingerprint.make(self.name, self.task, arrays, out.tokens)

    def check_expected(self) -> tuple[str, str]:
        """Same convention as model cases: test/expected_results/<name>.<task>.json."""
        if self.settings.expected_dir is None:
            return "not-checked", ""
        return fingerprint.check(self.settings.expected_dir, self.name, self.task, self.fingerprint(),
                                 self.settings.update_expected)

    def measure_latency(self) -> None:
        parts = self.prepared
        self.metrics.latency = measure(lambda: pipeline.run(self.built, parts), warmup=self.settings.warmup, runs=self.settings.runs)

    def measure_variants(self) -> list[PrecisionVariant]:
        """The backend's other precision (OpenVINO's default, bf16 here) on every sub-model at
        once, reported beside the f32 parity mode and never gated."""
        if not self.prepared or not all("default" in p.variants for p in self.prepared.values()):
            return []
        parts = {role: p.variants["default"]() for role, p in self.prepared.items()}
        got = pipeline.run(self.built, parts)
        rows = [compare.compare_arrays(k, got.arrays[k], v, 0, 0, 0) for k, v in self.reference.arrays.items()]
        lat = measure(lambda: pipeline.run(self.built, parts), warmup=1, runs=self.settings.runs)
        precision = next(iter(parts.values())).precision
        return [PrecisionVariant(precision=precision, max_abs=max(r.max_abs for r in rows), cosine=min(r.cosine for r in rows), p50_ms=lat.p50_ms)]

    # ---- everything ----------------------------------------------------------------------
    def run(self) -> CaseResult:
        """Every stage into one CaseResult; a model problem is recorded, never raised."""
        start = time.perf_counter()
        result = CaseResult(model=self.name, task=self.task, category=spec.CATEGORY, hardware=self.hardware, precision=self.precision, status="passed")
        try:
            self.gate()
        except Gate as g:
            result.status, result.reason = "skipped", g.reason
            result.duration_s = time.perf_counter() - start
            return result
        problems: list[str] = []
        try:
            with MemoryTracker() as mem:
                self.check_single()
                repeat = self.check_repeat()
                if repeat != 0.0:
                    problems.append(f"a second run with the same seeds differs (max abs {repeat:.3g})")
                batch = self.check_batch()
                result.batch = batch
                if batch is not None and not batch.ok:
                    problems.append(f"batch rows differ from single runs (max abs {batch.max_abs:.3g})")
                if self.hardware != "cpu" or self.precision != "fp32":
                    par = self.check_parity()
                    result.parity = par
                    if not par.ok:
                        bad = ", ".join(f"{o.name} max_abs={o.max_abs:.3g} cos={o.cosine:.6f}" for o in par.outputs if not o.ok)
                        problems.append(f"parity vs cpu failed: {bad}")
                else:
                    status, diff = self.check_expected()
                    result.expected, result.expected_diff = status, diff
                    if status in ("mismatch", "missing"):
                        problems.append(("expected results mismatch:\n" if status == "mismatch" else "") + diff)
                self.measure_latency()
                result.variants = self.measure_variants()
            self.metrics.peak_rss_mb = mem.peak_mb
            first = next(iter(self.prepared.values()))
            result.device = first.device
            result.conversion = ", ".join(f"{role}:{p.path}" for role, p in self.prepared.items())
            result.precision = first.precision
        except Exception as exc:
            problems.append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}")
        result.metrics = self.metrics
        if problems:
            result.status, result.reason = "failed", "\n".join(problems)
        result.duration_s = time.perf_counter() - start
        return result
