"""Reports from a hand-built RunResult: the Markdown matrix, reasons, tables and speed-ups, the
JUnit counts, the results store (atomic, torn-line tolerant) and the exit-code rule."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pydantic import ValidationError

from ipfs_accelerate.results import junit, report_md
from ipfs_accelerate.results.run import (
    Environment,
    Options,
    RunResult,
    Selection,
    TestRecord,
    exit_code,
    summarize,
)
from ipfs_accelerate.results.schema import CaseResult, Latency, Metrics
from ipfs_accelerate.results.store import RECORDS, RunStore, find_run, load_results, new_run_id


def lat(p50: float) -> Latency:
    return Latency(n=20, warmup=5, mean_ms=p50, p50_ms=p50, p90_ms=p50 * 1.1, p99_ms=p50 * 1.3, min_ms=p50 * 0.9, max_ms=p50 * 1.5)


def case(model: str, hw: str, p50: float, batches: dict[str, float] | None = None, status: str = "passed") -> CaseResult:
    m = Metrics(build_s=0.1, prepare_s=2.0 if hw == "openvino" else 0.0, first_inference_ms=p50 * 3, latency=lat(p50),
                peak_rss_mb=420.0, params=50_000)
    for bs, v in (batches or {}).items():
        m.batch_latency[bs] = lat(v)
        m.throughput_per_s[bs] = int(bs) * 1000 / v
    return CaseResult(model=model, task="fill-mask", category="language", hardware=hw, status=status,
                      conversion="convert_model" if hw == "openvino" else "eager", metrics=m)


def rec(nodeid: str, status: str, model: str | None = None, hw: str | None = None, reason: str = "", *, impl: str = "mock",
        category: str = "language", duration: float = 0.5, c: CaseResult | None = None, api: str | None = None, output: str = "") -> TestRecord:
    kind = "model" if model else "api" if api else "other"
    return TestRecord(nodeid=nodeid, file=nodeid.split("::")[0], kind=kind, model=model, api=api, hardware=hw, impl=impl,
                      category=category if model else ("api" if api else None), status=status, reason=reason,
                      duration_s=duration, case=c, output=output)


def make_run(tests: list[TestRecord], **sel) -> RunResult:
    return RunResult(
        run_id="20261127-000000-abcd", started_at="2026-11-27T00:00:00+00:00",
        environment=Environment(python="3.11", platform="Linux", machine="x86_64", hostname="h", cpu_count=2, usable_cpus=2, memory_gb=24, cwd="/"),
        versions={"torch": "2.13.0"}, selection=Selection(hardware=["cpu", "cuda", "openvino"], **sel),
        options=Options(workers=2, timeout_s=300, max_memory_mb=9000, recycle_after=25), tests=tests,
        summary=summarize(tests), selected=len(tests), state="complete",
    )


@pytest.fixture
def run() -> RunResult:
    bench = {"1": 4.0, "4": 9.0, "16": 30.0}
    ov_bench = {"1": 2.0, "4": 4.5, "16": 10.0}
    tests = [
        rec("skills/test_hf_bert.py::T::test_init[cpu]", "passed", "bert", "cpu"),
        rec("skills/test_hf_bert.py::T::test_metrics[cpu]", "passed", "bert", "cpu", c=case("bert", "cpu", 4.0, bench)),
        rec("skills/test_hf_bert.py::T::test_init[cuda]", "skipped", "bert", "cuda", "CUDA not available: CPU-only torch build"),
        rec("skills/test_hf_bert.py::T::test_init[openvino]", "passed", "bert", "openvino", duration=12.5),
        rec("skills/test_hf_bert.py::T::test_metrics[openvino]", "passed", "bert", "openvino", c=case("bert", "openvino", 2.0, ov_bench)),
        rec("skills/test_hf_bert.py::T::test_expected_results[cpu]", "skipped", "bert", "cpu", "no expected-results dir"),
        rec("skills/test_hf_gpt2.py::T::test_init[cpu]", "passed", "gpt2", "cpu"),
        rec("skills/test_hf_gpt2.py::T::test_metrics[cpu]", "passed", "gpt2", "cpu", c=case("gpt2", "cpu", 10.0)),
        rec("skills/test_hf_gpt2.py::T::test_init[cuda]", "skipped", "gpt2", "cuda", "CUDA not available: CPU-only torch build"),
        rec("skills/test_hf_gpt2.py::T::test_parity[openvino]", "failed", "gpt2", "openvino", "parity vs cpu failed: logits max_abs=0.3",
            output="E   AssertionError: parity\n```fence```"),
        rec("skills/test_hf_vit.py::T::test_init[cpu]", "crashed", "vit", "cpu", "worker died: SIGSEGV (signal 11)", category="vision",
            output="Fatal Python error: Segmentation fault"),
        rec("skills/test_hf_vit.py::T::test_init[cuda]", "skipped", "vit", "cuda", "CUDA not available: CPU-only torch build", category="vision"),
        rec("skills/test_hf_vit.py::T::test_init[openvino]", "xfailed", "vit", "openvino", "known incompatibility: dynamic shapes", category="vision"),
        rec("skills/test_hf_bert.py::T::test_init[cpu-real]", "passed", "bert", "cpu", impl="real"),
        rec("skills/test_hf_gpt2.py::T::test_init[cpu-real]", "skipped", "gpt2", "cpu", "no pretrained checkpoint configured for 'gpt2'", impl="real"),
        rec("apis/test_ollama.py::T::test_chat[mock]", "passed", api="ollama"),
        rec("apis/test_ollama.py::T::test_chat[real]", "skipped", api="ollama", reason="set OLLAMA_HOST", impl="real"),
        rec("apis/test_claude.py::T::test_x", "timeout", api="claude", reason="timeout: still running after 300 s"),
    ]
    return make_run(tests, benchmark=True)


def test_markdown_matrix_reasons_and_sections(run):
    md = report_md.render(run)
    assert "| bert | language | ✅ | ⏭ | ✅ |" in md  # a skipped expected-results test does not hide the passes
    assert "| gpt2 | language | ✅ | ⏭ | ❌ |" in md
    assert "| vit | vision | ❌ | ⏭ | 🔶 |" in md
    assert "- ⏭ **cuda** skipped — bert, gpt2, vit: CUDA not available: CPU-only torch build" in md  # grouped, not 3 lines
    assert "- ❌ **cpu** crashed — vit: worker died: SIGSEGV (signal 11)" in md
    assert "- 🔶 **openvino** xfailed — vit: known incompatibility: dynamic shapes" in md
    assert "## Pretrained weights (`--impl-type real`)" in md and "skipped on every hardware — gpt2: no pretrained checkpoint configured for '<model>'" in md
    assert "| bert | language | ✅ | – | – |" in md  # the real row that ran
    assert "| ollama | ✅ | ⏭ | 2 | real: set OLLAMA_HOST |" in md and "| claude | ❌ |" in md
    assert "### language — 2 models, 3/4 cases passed" in md and "### vision — 1 models, 0/2 cases passed" in md
    assert "| bert | 4.00 | 2.00 | 2.00× |" in md and "geometric mean (1 models)" in md
    assert "| bert | mock | openvino | 16 | 10.00 | 11.00 | 13.00 | 1600.0 | 420 |" in md
    assert "| bert | 2.00× | 2.00× | 3.00× |" in md  # per-batch speed-up
    slow = md.split("## Slowest tests")[1]
    assert slow.index("test_init[openvino]") < slow.index("test_init[cpu]")
    assert "## Failures (3)" in md and "Segmentation fault" in md and "```fence```" not in md  # fences cannot break out
    assert "| ❌ crashed | 1 |" in md and "| ⏭ skipped | 6 |" in md and "**total recorded** | **18**" in md


def test_markdown_of_a_partial_run_says_so(run):
    partial = run.model_copy(update={"state": "interrupted", "not_run": 7})
    md = report_md.render(partial)
    assert "**interrupted**" in md and "--resume" in md and "| · not run | 7 |" in md


def test_junit_counts_and_types(run):
    root = ET.fromstring(junit.render(run))
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("18", "1", "2", "7")
    cases = {f"{c.get('classname')}::{c.get('name')}": c for c in root.iter("testcase")}
    crashed = cases["skills.test_hf_vit.T::test_init[cpu]"]
    assert crashed.find("error").get("type") == "crashed" and "Segmentation fault" in crashed.find("error").text
    assert cases["apis.test_claude.T::test_x"].find("error").get("type") == "timeout"
    assert cases["skills.test_hf_vit.T::test_init[openvino]"].find("skipped").get("type") == "xfailed"
    props = {p.get("name"): p.get("value") for p in crashed.iter("property")}
    assert props["model"] == "vit" and props["hardware"] == "cpu"


def test_junit_survives_control_characters():
    r = make_run([rec("t.py::test", "failed", reason="bad \x00\x1b byte", output="\x07bell")])
    assert ET.fromstring(junit.render(r)).find(".//failure").get("message") == "bad ?? byte"


def test_exit_code_rule():
    ok = rec("a", "passed")
    assert exit_code([ok, rec("b", "skipped"), rec("c", "xfailed")], 3) == 0
    for bad in ("failed", "error", "xpassed", "crashed", "timeout"):
        assert exit_code([ok, rec("b", bad)], 2) == 1, bad
    assert exit_code([], 0) == 3
    assert exit_code([rec("b", "skipped")], 1) == 3  # everything skipped: nothing ran


def test_results_json_is_schema_validated(tmp_path, run):
    store = RunStore(tmp_path / run.run_id)
    store.save_results(run)
    assert load_results(tmp_path / run.run_id) == run
    broken = (tmp_path / run.run_id / "results.json").read_text().replace('"status": "crashed"', '"status": "exploded"')
    (tmp_path / "bad.json").write_text(broken)
    with pytest.raises(ValidationError):
        load_results(tmp_path / "bad.json")
    assert "tests" in RunResult.model_json_schema()["properties"]


def test_store_appends_and_ignores_a_torn_last_line(tmp_path):
    store = RunStore(tmp_path / "r")
    store.append(rec("t.py::a", "passed"))
    store.append(rec("t.py::b", "failed"))
    store.append(rec("t.py::a", "crashed"))  # a later record for the same test wins
    store.close()
    with open(tmp_path / "r" / RECORDS, "a") as fh:
        fh.write('{"nodeid": "t.py::c", "status": "pass')  # killed mid-write
    got = {r.nodeid: r.status for r in RunStore(tmp_path / "r").load_records()}
    assert got == {"t.py::a": "crashed", "t.py::b": "failed"}


def test_atomic_writes_leave_no_temp_files_and_runs_are_found_in_order(tmp_path, run):
    for i, rid in enumerate([new_run_id(1_700_000_000), new_run_id(1_800_000_000)]):
        store = RunStore(tmp_path / rid)
        store.save_header(run.model_copy(update={"run_id": rid, "tests": [], "selected": i}))
    assert sorted(p.name for p in (tmp_path).rglob(".*tmp")) == []
    newest = find_run(tmp_path, None)
    assert newest is not None and newest.name.startswith("2027")
    assert find_run(tmp_path, "latest") == newest
    assert find_run(tmp_path, "missing-id") is None
    header = RunStore(newest).load_header()
    assert header.tests == [] and header.selected == 1


def test_status_file_reader_understands_our_results(tmp_path, run):
    """The generator's status file reads runs back (model, hardware, status per test)."""
    status = pytest.importorskip("ipfs_accelerate.generate.status")
    RunStore(tmp_path / run.run_id).save_results(run)
    runs, errors = status._load_runs(tmp_path)
    assert not errors and len(runs[0]["records"]) == len(run.tests)
    models, apis = status._verified(runs)
    assert models[("vit", "cpu")]["status"] == "crashed" and apis["ollama"]["status"] == "passed"


def test_report_paths_are_relative_names(run):
    assert not Path(report_md.render(run).splitlines()[0]).is_absolute()


def test_run_ids_sort_in_start_order_within_one_second():
    from ipfs_accelerate.results.store import new_run_id

    base = 1_800_000_000.0
    ids = [new_run_id(base + ms / 1000) for ms in (0, 5, 99, 250, 999)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert new_run_id(base + 0.999) < new_run_id(base + 1.0)
