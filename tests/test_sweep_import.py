"""`sweep --from-results`: a matrix run's outcomes become observed verdicts (issue 11, point 4).

Built from real RunStore files (the format the runner writes), not hand-typed JSON."""

from __future__ import annotations

import json
from pathlib import Path

from test_reports import make_run

from ipfs_accelerate.harness import sweep
from ipfs_accelerate.results.run import TestRecord
from ipfs_accelerate.results.store import RunStore


def _rec(model: str, test: str, hw: str, status: str, reason: str = "") -> TestRecord:
    return TestRecord(nodeid=f"skills/test_hf_{model}.py::T::{test}[{hw}]", file=f"skills/test_hf_{model}.py", kind="model",
                      model=model, task="text-generation", hardware=hw, status=status, reason=reason)


def _run_dir(tmp_path: Path, records: list[TestRecord]) -> Path:
    store = RunStore(tmp_path / "run")
    store.save_header(make_run([]))
    for r in records:
        store.append(r)
    store.close()
    return store.dir


CONV = "ipfs_accelerate.hardware.backends.base.UnsupportedModel: OpenVINO conversion failed: convert_model: X\nTraceback ..."


def test_failures_get_the_first_stage_reason_passes_and_crashes_are_told_apart(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, [
        _rec("a", "test_metrics", "openvino", "failed", "AssertionError: " + CONV),  # listed first, ordered by stage
        _rec("a", "test_init", "openvino", "failed", CONV),
        _rec("a", "test_init", "cpu", "passed"),
        _rec("a", "test_metrics", "cpu", "passed"),
        _rec("b", "test_init", "openvino", "passed"),
        _rec("b", "test_metrics", "openvino", "crashed", "worker died: SIGFPE (signal 8)"),
        _rec("c", "test_init", "openvino", "passed"),
        _rec("c", "test_expected_results", "openvino", "skipped", "not checked"),
        _rec("c", "test_metrics", "openvino", "passed"),
        _rec("f", "test_init", "openvino", "passed"),  # a partial results.jsonl: the case is still running
        _rec("d", "test_init", "openvino", "xfailed", "known incompatibility: x"),
        _rec("e", "test_init", "openvino", "crashed", "worker died: SIGFPE (signal 8)"),
        _rec("e", "test_parity", "openvino", "error", "not run: 2 tests in a row killed their worker"),
    ])
    verdicts, undeclared = sweep.from_results(run)
    assert verdicts["openvino"][("a", "text-generation")] == (
        "UnsupportedModel: OpenVINO conversion failed: convert_model: X (observed in the full matrix run 20261127-000000-abcd)"
    )
    assert verdicts["cpu"] == {("a", "text-generation"): "passed"}
    assert verdicts["openvino"][("c", "text-generation")] == "passed"
    assert ("d", "text-generation") not in verdicts["openvino"]  # already declared: left as it is
    assert {k[0] for k in verdicts["openvino"]} == {"a", "c"}  # crashes are not declared ...
    assert [line.split(":")[0] for line in undeclared] == ["b text-generation openvino", "e text-generation openvino"]  # ... but listed
    assert "test_metrics[openvino] crashed: worker died: SIGFPE" in undeclared[0]


def test_merge_keeps_other_backends_and_sorts(tmp_path: Path) -> None:
    path = tmp_path / "observed.json"
    path.write_text(json.dumps({"generated": "x", "types": {"z": {"t": {"cpu": "passed"}}}}))
    doc = sweep.merge({("z", "t"): "Boom (observed in the full matrix run 20261127-000000-abcd)", ("a", "t"): "passed"}, "openvino", path)
    assert list(doc["types"]) == ["a", "z"]
    assert doc["types"]["z"]["t"] == {"cpu": "passed", "openvino": "Boom (observed in the full matrix run 20261127-000000-abcd)"}
