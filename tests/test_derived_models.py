"""Derived registry entries run for real: types no hand-written table names build from their
transformers defaults through the generic shrink, run a forward pass, match the fingerprint the
sweep committed, and a type whose observed failure is declared runs as a strict xfail."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipfs_accelerate import registry
from ipfs_accelerate.harness.case import Case, Settings

EXPECTED = Path(__file__).resolve().parents[1] / "test" / "expected_results"
# one per family; each passed the committed CPU sweep (registry/observed.json)
SAMPLES = ("cohere2", "cvt", "chinese_clip", "convbert")


@pytest.mark.parametrize("name", SAMPLES)
def test_derived_type_runs_and_matches_its_fingerprint(name: str) -> None:
    spec = registry.get(name)
    assert spec.derived and not spec.default.known_incompatible, spec.default.known_incompatible
    case = Case(name, "cpu", settings=Settings(warmup=0, runs=1, expected_dir=EXPECTED))
    assert case.built.model.config.model_type == name
    assert case.check_single().arrays
    assert case.check_batch().ok
    status, diff = case.check_expected()
    assert status == "match", diff


def test_observed_failure_is_a_strict_xfail_on_every_backend() -> None:
    failing = [s for s in registry.load().values() if s.derived and "cpu" in s.default.known_incompatible and s.default.skill != registry.UNSUPPORTED_SKILL]
    assert failing, "the sweep recorded no failing derived type"
    spec = failing[0]
    assert set(spec.default.known_incompatible) == set(registry.HARDWARE)
    result = Case(spec.name, "cpu", settings=Settings(warmup=0, runs=1)).run()
    assert result.status == "xfailed", (result.status, result.reason)
    assert "known incompatibility" in result.reason and "observed:" in result.reason
