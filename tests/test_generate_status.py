"""test_implementation_status.json: schema-stable, deterministic, honest about what ran where."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ipfs_accelerate import registry
from ipfs_accelerate.api.providers import PROVIDERS
from ipfs_accelerate.generate import cli, engine, status

TOP_KEYS = {"schema_version", "generated_by", "summary", "results", "models", "apis", "orphans"}
MODEL_KEYS = {"category", "default_task", "test_present", "profile", "tests", "known_incompatible", "derived", "hardware"}
API_KEYS = {"test_present", "profile", "state", "file", "kit_available", "last_run"}


def build(out: Path, results: Path | None = None) -> dict:
    return status.build_status(out, registry.list_models(), list(PROVIDERS.values()), results)


def run_file(run_id: str, started: str, tests: list[dict]) -> dict:
    """The shape of the runner's RunResult (only the fields the status file reads, plus noise)."""
    return {"schema_version": 1, "run_id": run_id, "state": "complete", "started_at": started, "wall_s": 1.0, "tests": tests}


def rec(status_: str, *, model: str | None = None, hardware: str | None = None, api: str | None = None, task: str = "", reason: str = "", impl: str = "mock") -> dict:
    return {"nodeid": "x", "file": "f", "model": model, "api": api, "hardware": hardware, "task": task or None, "status": status_, "reason": reason, "impl": impl}


def test_empty_tree_schema(tmp_path: Path) -> None:
    doc = build(tmp_path)
    assert set(doc) == TOP_KEYS and doc["schema_version"] == status.SCHEMA_VERSION
    assert list(doc["models"]) == [s.name for s in registry.list_models()]
    for name, entry in doc["models"].items():
        assert set(entry) == MODEL_KEYS
        assert entry["test_present"] is False and entry["tests"] == [] and entry["profile"] is None
        assert entry["hardware"] == {hw: {"status": "not-run"} for hw in registry.HARDWARE}
        assert entry["default_task"] == registry.get(name).task
    for entry in doc["apis"].values():
        assert set(entry) == API_KEYS and entry["test_present"] is False and entry["state"] == "missing"
    n = len(doc["models"])
    summary = doc["summary"]["models"]
    assert (summary["total"], summary["with_test"], summary["missing"]) == (n, 0, n)
    assert set(summary["by_category"]) == set(registry.CATEGORIES)
    assert set(doc["summary"]["hardware"]) == set(registry.HARDWARE)
    assert doc["results"] == {"runs": [], "errors": []}


def test_states_and_profiles(tmp_path: Path) -> None:
    bert, gpt2, t5 = (registry.get(n) for n in ("bert", "gpt2", "t5"))
    other = next(t for t in bert.tasks if t != bert.task)
    targets = [
        engine.model_target(bert),
        engine.model_target(bert, other, "basic"),
        engine.model_target(gpt2, None, "basic"),
        engine.model_target(t5),
        engine.api_target(PROVIDERS["groq"]),
    ]
    engine.write_targets(targets, tmp_path)
    t5_path = tmp_path / engine.model_relpath("t5")
    t5_path.write_text(t5_path.read_text() + "# edit\n")
    (tmp_path / "skills" / "test_hf_nosuchmodel.py").write_text("x = 1\n")
    (tmp_path / "apis" / "test_nosuchapi.py").write_text("x = 1\n")
    doc = build(tmp_path)
    m = doc["models"]
    assert m["bert"]["test_present"] and m["bert"]["profile"] == "unified"
    assert m["bert"]["tests"] == [
        {"file": "skills/test_hf_bert.py", "task": bert.task, "profile": "unified", "state": "current"},
        {"file": f"skills/{engine.model_relpath('bert', other, bert.task).name}", "task": other, "profile": "basic", "state": "current"},
    ]
    assert m["gpt2"]["profile"] == "basic" and m["gpt2"]["tests"][0]["state"] == "current"
    assert m["t5"]["tests"][0]["state"] == "edited"
    groq = doc["apis"]["groq"]
    assert (groq["test_present"], groq["profile"], groq["state"], groq["file"]) == (True, "api", "current", "apis/test_groq.py")
    assert doc["orphans"] == ["apis/test_nosuchapi.py", "skills/test_hf_nosuchmodel.py"]
    assert doc["summary"]["models"]["with_test"] == 3
    assert doc["summary"]["models"]["test_files_by_state"] == {"current": 3, "edited": 1}


def test_latest_run_wins_and_worst_status_per_hardware(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    old = run_file("20260101-000000-aaaa", "2026-01-01T00:00:00", [
        rec("passed", model="bert", hardware="cpu"),
        rec("failed", model="bert", hardware="openvino", reason="parity"),
        rec("passed", api="groq", impl="real"),
    ])
    new = run_file("20260301-000000-bbbb", "2026-03-01T00:00:00", [
        rec("passed", model="bert", hardware="cpu", task="fill-mask"),
        rec("failed", model="bert", hardware="cpu", task="fill-mask", reason="batch rows differ"),
        rec("skipped", model="bert", hardware="cpu", task="fill-mask", reason="expected not checked"),
        rec("skipped", model="bert", hardware="cuda", reason="CUDA not available"),
        rec("xfailed", model="gpt2", hardware="openvino", reason="known"),
        rec("passed", model="gpt2", hardware="openvino"),
        rec("error", api="groq", reason="boom"),
    ])
    # written in an order unrelated to time; one run as results/<id>/results.json
    (results / "zzz-old.json").write_text(json.dumps(old))
    (results / "20260301-000000-bbbb").mkdir()
    (results / "20260301-000000-bbbb" / "results.json").write_text(json.dumps(new))
    (results / "broken.json").write_text("{not json")
    doc = build(tmp_path / "out", results)
    hw = doc["models"]["bert"]["hardware"]
    assert hw["cpu"] == {"status": "failed", "run": "20260301-000000-bbbb", "tests": {"passed": 1, "failed": 1, "skipped": 1}, "tasks": ["fill-mask"], "impl": ["mock"], "reason": "batch rows differ"}
    assert hw["openvino"]["status"] == "failed" and hw["openvino"]["run"] == "20260101-000000-aaaa"
    assert hw["cuda"]["status"] == "skipped" and hw["cuda"]["reason"] == "CUDA not available"
    assert doc["models"]["gpt2"]["hardware"]["openvino"]["status"] == "xfailed"
    assert doc["models"]["gpt2"]["hardware"]["cpu"] == {"status": "not-run"}
    assert doc["apis"]["groq"]["last_run"] == {"status": "error", "run": "20260301-000000-bbbb", "tests": {"error": 1}, "impl": ["mock"], "reason": "boom"}
    assert doc["results"]["runs"] == ["zzz-old.json", "20260301-000000-bbbb/results.json"]
    assert len(doc["results"]["errors"]) == 1 and doc["results"]["errors"][0].startswith("broken.json: JSONDecodeError")
    assert doc["summary"]["hardware"]["cpu"]["failed"] == 1


def test_bare_list_of_case_results_is_read(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "run1.json").write_text(json.dumps([{"model": "bert", "task": "fill-mask", "category": "language", "hardware": "cpu", "status": "passed"}]))
    assert build(tmp_path / "out", results)["models"]["bert"]["hardware"]["cpu"]["status"] == "passed"


def test_status_text_is_deterministic_and_sorted(tmp_path: Path) -> None:
    engine.write_targets([engine.model_target(registry.get("bert"))], tmp_path)
    a, b = status.dumps(build(tmp_path)), status.dumps(build(tmp_path))
    assert a == b and a.endswith("}\n")
    assert json.dumps(json.loads(a), indent=2, sort_keys=True) + "\n" == a
    keys = {k for m in json.loads(a)["models"].values() for k in m} | set(json.loads(a))
    assert not {k for k in keys if "time" in k or "date" in k}, "a timestamp field makes the file unstable"
    assert str(tmp_path) not in a
    assert not re.search(r"\d{4}-\d\d-\d\d", a), "a date in the status file"


def test_cli_writes_status_and_status_only(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert cli.unified_main(["--models", "bert", "--output-dir", str(out), "--no-status"]) == 0
    assert not (out / engine.STATUS_FILE).exists()
    assert cli.unified_main(["--status-only", "--output-dir", str(out)]) == 0
    doc = json.loads((out / engine.STATUS_FILE).read_text())
    assert doc["models"]["bert"]["test_present"] is True
    assert doc["summary"]["models"]["with_test"] == 1
    capsys.readouterr()
    assert cli.unified_main(["--status-only", "--output-dir", str(out), "--verbose"]) == 0
    assert "unchanged" in capsys.readouterr().out
