"""Base class for generated diffusion tests (`test/skills/test_diffusion_<name>.py`).

A generated file names only the case and its hardware; the bodies live here and call
`diffusion.case.DiffusionCase`. The plugin parametrises them exactly like model tests (`hw` per
selected hardware, `test_parity` off CPU, `test_expected_results` on CPU only), `test_metrics`
stashes the `CaseResult` under the model tests' key so `--ipfs-results` and the reports get it,
and expected fingerprints land in `test/expected_results/<name>.<task>.json`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

import pytest

from ..diffusion.case import DiffusionCase
from ..harness.case import Gate, Settings
from .model_tests import RESULT_KEY

_CASES: OrderedDict[tuple, DiffusionCase] = OrderedDict()
_MAX_CASES = 4  # cpu, cuda (gated, never built), openvino of one case stay warm; memory stays flat


def get_case(name: str, hardware: str, precision: str, settings: Settings) -> DiffusionCase:
    key = (name, hardware, precision, repr(settings))
    if key in _CASES:
        _CASES.move_to_end(key)
        return _CASES[key]
    case = _CASES[key] = DiffusionCase(name, hardware, precision, settings)
    while len(_CASES) > _MAX_CASES:
        _CASES.popitem(last=False)
    return case


class DiffusionTests:
    case_name: ClassVar[str]
    hardware: ClassVar[tuple[str, ...]] = ("cpu", "cuda", "openvino")
    profile: ClassVar[str] = "unified"
    precision: ClassVar[str] = "fp32"

    @pytest.fixture
    def case(self, request: pytest.FixtureRequest, hw: str, ipfs_settings: Settings) -> DiffusionCase:
        case = get_case(self.case_name, hw, self.precision, ipfs_settings)
        try:
            case.gate()
        except Gate as g:
            pytest.skip(g.reason)
        return case

    def test_init(self, case: DiffusionCase) -> None:
        built = case.built
        assert built.params > 0
        assert set(built.parts) >= {"unet"} or set(built.parts) == {"vae"}
        assert all(p.backend == case.hardware for p in case.prepared.values())

    def test_single_inference(self, case: DiffusionCase) -> None:
        out = case.check_single()
        assert out.arrays, "no outputs"

    def test_repeatable(self, case: DiffusionCase) -> None:
        assert case.check_repeat() == 0.0, "a second run with the same seeds differs"

    def test_batch_inference(self, case: DiffusionCase) -> None:
        check = case.check_batch()
        if check is None:
            pytest.skip("a pipeline case runs one prompt; batch rows are checked on the UNet / VAE cases")
        assert check.ok, f"batch rows differ from single runs: max abs {check.max_abs:.3g}"

    def test_parity(self, case: DiffusionCase) -> None:
        par = case.check_parity()
        bad = [o for o in par.outputs if not o.ok]
        assert not bad, "parity vs CPU failed: " + "; ".join(
            f"{o.name}: max_abs={o.max_abs:.3g} cos={o.cosine:.7f} (atol={par.atol}, rtol={par.rtol})" for o in bad
        )

    def test_expected_results(self, case: DiffusionCase) -> None:
        status, diff = case.check_expected()
        if status == "not-checked":
            pytest.skip("expected results are checked with an expected-results dir")
        assert status != "missing", diff
        assert status != "mismatch", f"expected results differ for {case.name}/{case.task}:\n{diff}"

    def test_metrics(self, case: DiffusionCase, request: pytest.FixtureRequest) -> None:
        result = case.run()
        request.node.stash[RESULT_KEY] = result
        assert result.status == "passed", result.reason
        assert result.category == "multimodal"
        m = result.metrics
        assert m.latency is not None and m.latency.p50_ms > 0
        assert m.params and m.params > 0
