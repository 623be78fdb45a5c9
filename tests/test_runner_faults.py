"""Fault drill: a segfault, a hang and a memory hog among normal tests; a runner killed mid-run
and resumed; Ctrl-C; and sharding. Every result must be recorded exactly once, with the right
status, and nothing finished may run twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from test_runner_kit import executions, latest, make_suite, run, write

from ipfs_accelerate.results.run import RunResult, TestRecord
from ipfs_accelerate.results.store import RECORDS, run_dirs
from ipfs_accelerate.runner import shard

DRILL = """
    import ctypes, os, time
    import pytest

    def test_ok_before():
        pass

    def test_segfault():
        ctypes.string_at(0)  # SIGSEGV in C

    def test_ok_between():
        print("still alive")

    def test_hang():
        print("about to hang", flush=True)
        time.sleep(600)

    def test_abort():
        os.abort()

    def test_memory_hog():
        import mmap  # one populated 800 MB mapping: ~0.3 s of CPU (a bytearray loop takes 3x that)
        hog = mmap.mmap(-1, 800 * 2**20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
        time.sleep(600)  # held until the cap kills it
        hog.close()

    def test_fail():
        assert 2 + 2 == 5

    @pytest.mark.skip(reason="not on this box")
    def test_skipped():
        pass

    def test_ok_after():
        pass
"""


def test_fault_drill_records_every_result(tmp_path):
    suite = tmp_path / "suite"
    write(suite / "test_drill.py", DRILL)
    write(suite / "test_normal.py", """
        def test_a(): pass
        def test_b(): pass
    """)
    rc = run(suite, str(suite / "test_drill.py"), str(suite / "test_normal.py"), "--timeout", "8", "--max-memory", "700",
             "--workers", "2", out=tmp_path / "out")
    assert rc == 1
    r = latest(tmp_path / "out")
    st = {t.nodeid.split("::")[-1]: t for t in r.tests}
    assert {k: v.status for k, v in st.items()} == {
        "test_ok_before": "passed", "test_segfault": "crashed", "test_ok_between": "passed", "test_hang": "timeout",
        "test_abort": "crashed", "test_memory_hog": "crashed", "test_fail": "failed", "test_skipped": "skipped",
        "test_ok_after": "passed", "test_a": "passed", "test_b": "passed",
    }
    assert "SIGSEGV" in st["test_segfault"].reason and "test_segfault" in st["test_segfault"].output  # faulthandler's traceback
    assert "SIGABRT" in st["test_abort"].reason and "test_abort" in st["test_abort"].output
    assert "8 s" in st["test_hang"].reason and "about to hang" in st["test_hang"].output
    assert "in test_hang" in st["test_hang"].output  # the SIGUSR1 stack dump shows where it hung
    assert "memory cap" in st["test_memory_hog"].reason and "> cap 700 MB" in st["test_memory_hog"].reason
    assert st["test_hang"].duration_s > 8  # killed only after the limit (one clock); how soon after depends on load
    assert "2 + 2 == 5" in st["test_fail"].output
    ends = Counter(w.end for w in r.workers)
    assert ends["crashed"] == 2 and ends["timeout"] == 1 and ends["memory"] == 1  # each one replaced
    md = (run_dirs(tmp_path / "out")[-1] / "report.md").read_text()
    assert "test_memory_hog" in md and "memory cap exceeded" in md
    assert r.state == "complete" and r.not_run == 0


def test_module_crashing_on_import_is_recorded_and_the_rest_runs(tmp_path):
    """Workers collect the test list; a module that segfaults on import kills them all, so a
    collector per file names the culprit and the workers restart without it."""
    suite = tmp_path / "suite"
    write(suite / "test_bad_import.py", """
        import ctypes
        ctypes.string_at(0)
        def test_never(): pass
    """)
    write(suite / "test_fine.py", "def test_a(): pass\ndef test_b(): pass\n")
    assert run(suite, str(suite / "test_bad_import.py"), str(suite / "test_fine.py"), "--workers", "2", out=tmp_path / "out") == 1
    st = {t.nodeid: (t.status, t.reason) for t in latest(tmp_path / "out").tests}
    assert st["test_fine.py::test_a"][0] == "passed" and st["test_fine.py::test_b"][0] == "passed"
    assert st["test_bad_import.py"][0] == "crashed" and "collection crashed" in st["test_bad_import.py"][1]


def test_hang_outside_any_test_is_caught_and_not_retried_forever(tmp_path):
    suite = tmp_path / "suite"
    write(suite / "conftest.py", """
        import time
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtest_logstart(nodeid, location):
            if nodeid.endswith("test_c"):
                time.sleep(600)  # before the runner hears that test_c started
    """)
    write(suite / "test_between.py", "def test_a(): pass\ndef test_b(): pass\ndef test_c(): pass\n")
    write(suite / "test_other.py", "def test_x(): pass\n")
    rc = run(suite, str(suite / "test_between.py"), str(suite / "test_other.py"), "--timeout", "6", out=tmp_path / "out")
    assert rc == 1
    st = {t.nodeid: (t.status, t.reason) for t in latest(tmp_path / "out").tests}
    assert st["test_between.py::test_a"][0] == st["test_between.py::test_b"][0] == st["test_other.py::test_x"][0] == "passed"
    assert st["test_between.py::test_c"][0] == "error" and "outside any test" in st["test_between.py::test_c"][1]
    assert "hung for 6 s between tests" in st["test_between.py::test_c"][1]


def test_unit_whose_tests_keep_crashing_is_cut_short(tmp_path):
    """A model whose memoised build segfaults would kill every test of its case: after two in a
    row the rest of that (file, hardware) unit is recorded as not run instead of crashing 6 times."""
    suite = tmp_path / "suite"
    write(suite / "test_case.py", """
        import os
        import pytest

        class TestBroken:
            hardware = ("cpu", "openvino")
            def test_1(self, hw):
                if hw == "openvino": os.abort()
            def test_2(self, hw):
                if hw == "openvino": os.abort()
            def test_3(self, hw): pass
            def test_4(self, hw): pass
    """)
    assert run(suite, str(suite / "test_case.py"), "--hardware", "cpu", "openvino", out=tmp_path / "out") == 1
    st = {t.nodeid.split("::")[-1]: (t.status, t.reason) for t in latest(tmp_path / "out").tests}
    assert {k: v[0] for k, v in st.items()} == {
        "test_1[cpu]": "passed", "test_2[cpu]": "passed", "test_3[cpu]": "passed", "test_4[cpu]": "passed",
        "test_1[openvino]": "crashed", "test_2[openvino]": "crashed", "test_3[openvino]": "error", "test_4[openvino]": "error",
    }
    assert "not run: 2 tests in a row" in st["test_3[openvino]"][1]


SLOW = """
import json, os, time

def _mark(name):
    with open(os.environ["RUNNER_SUITE_LOG"], "a") as fh:
        fh.write(json.dumps({"test": name}) + "\\n")

def _hold(i):
    gate = os.environ.get("RUNNER_SUITE_GATE")
    while gate and i >= GATED_FROM and not os.path.exists(gate):
        time.sleep(0.05)

""" + "\n".join(f"def test_{i:02d}():\n    _mark('test_{i:02d}')\n    _hold({i})\n    time.sleep(0.4)\n" for i in range(16))
GATED_FROM = 6  # with $RUNNER_SUITE_GATE set, tests from here wait for that file: a kill always lands mid-run
SLOW = SLOW.replace("GATED_FROM", str(GATED_FROM))


def _start(suite: Path, out: Path, log: Path, *extra: str) -> subprocess.Popen:
    """The runner on SLOW, its tests from GATED_FROM held until `log`.gate exists (however slow this
    process is to act, the run cannot finish before the kill or Ctrl-C a test sends it)."""
    env = {**os.environ, "RUNNER_SUITE_LOG": str(log), "RUNNER_SUITE_GATE": str(log.with_suffix(".gate"))}
    cmd = [sys.executable, "-m", "ipfs_accelerate.cli", "run", str(suite / "test_slow.py"), "--test-dir", str(suite),
           "--output-dir", str(out), "--preload", "none", "--workers", "2", "--plain", *extra]
    return subprocess.Popen(cmd, cwd=suite, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_records(out: Path, n: int, proc: subprocess.Popen, limit_s: float = 300) -> Path:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        dirs = run_dirs(out)
        if dirs and (dirs[-1] / RECORDS).exists() and len((dirs[-1] / RECORDS).read_text().splitlines()) >= n:
            return dirs[-1]
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.1)
    raise AssertionError("runner produced no records")


def _recorded(run_dir: Path) -> list[TestRecord]:
    return [TestRecord.model_validate_json(line) for line in (run_dir / RECORDS).read_text().splitlines() if line.strip()]


def test_kill_mid_run_then_resume_loses_and_repeats_nothing(tmp_path, monkeypatch):
    suite, out, log = tmp_path / "suite", tmp_path / "out", tmp_path / "exec.jsonl"
    monkeypatch.setenv("RUNNER_SUITE_LOG", str(log))
    write(suite / "test_slow.py", SLOW)
    proc = _start(suite, out, log)
    run_dir = _wait_for_records(out, 5, proc)
    proc.kill()  # SIGKILL: no handler runs; workers die with it (PR_SET_PDEATHSIG)
    proc.wait()
    before = _recorded(run_dir)
    assert 5 <= len(before) <= GATED_FROM
    assert len({r.nodeid for r in before}) == len(before)
    log.with_suffix(".gate").touch()  # the resumed run's tests go through
    ran_before = Counter(e["test"] for e in executions(log))
    assert sum(ran_before.values()) <= len(before) + 2  # at most the two in-flight tests were lost
    if (run_dir / "results.json").exists():  # a snapshot, if one was due, is complete JSON
        RunResult.model_validate_json((run_dir / "results.json").read_text())

    rc = run(suite, "--resume", "--workers", "2", out=out)
    assert rc == 0
    final = latest(out)
    assert final.state == "complete" and len(final.tests) == 16 and final.summary["passed"] == 16
    assert {t.nodeid for t in final.tests} == {f"test_slow.py::test_{i:02d}" for i in range(16)}
    recorded_first = {r.nodeid.split("::")[-1] for r in before}
    ran = Counter(e["test"] for e in executions(log))
    assert set(ran) == {f"test_{i:02d}" for i in range(16)}
    for name in recorded_first:  # finished before the kill: not run again
        assert ran[name] == 1, name
    assert len(_recorded(run_dir)) == 16  # the jsonl holds each test exactly once
    assert run(suite, "--resume", out=out) == 0  # nothing left: still a success, nothing re-run
    assert Counter(e["test"] for e in executions(log)) == ran


def test_ctrl_c_writes_a_valid_partial_report(tmp_path):
    suite, out, log = tmp_path / "suite", tmp_path / "out", tmp_path / "exec.jsonl"
    write(suite / "test_slow.py", SLOW)
    proc = _start(suite, out, log)
    run_dir = _wait_for_records(out, 3, proc)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, output
    assert "--resume" in output
    partial = RunResult.model_validate_json((run_dir / "results.json").read_text())
    assert partial.state == "interrupted" and 3 <= len(partial.tests) <= GATED_FROM
    assert partial.not_run == 16 - len(partial.tests)
    assert "interrupted" in (run_dir / "report.md").read_text()
    assert "<testsuites" in (run_dir / "junit.xml").read_text()


# ---- shards ------------------------------------------------------------------------------

def test_assign_is_deterministic_and_balanced():
    weights = {"a": 10.0, "b": 9.0, "c": 5.0, "d": 4.0, "e": 1.0, "f": 1.0}
    shards = shard.assign(weights, 2)
    assert shards == shard.assign(dict(reversed(list(weights.items()))), 2)
    assert sorted(f for s in shards for f in s) == sorted(weights)
    loads = [sum(weights[f] for f in s) for s in shards]
    assert abs(loads[0] - loads[1]) <= 2
    assert shard.weights({"x": 4, "y": 2}, {"x": 8.0}) == {"x": 8.0, "y": 4.0}  # median per-test time fills gaps
    assert shard.weights({"x": 4, "y": 2}, {}) == {"x": 4.0, "y": 2.0}


def test_shards_partition_the_selection(tmp_path, capsys):
    suite = make_suite(tmp_path / "test")
    args = ("--hardware", "cpu", "--impl-type", "mock", "--collect-only")
    seen: list[set[str]] = []
    for k in (1, 2, 3):
        assert run(suite, *args, "--shard", f"{k}/3", out=tmp_path / "o") == 0
        seen.append({line.split("::")[0] for line in capsys.readouterr().out.splitlines() if "::" in line})
    assert all(seen) and not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert run(suite, *args, out=tmp_path / "o") == 0
    everything = {line.split("::")[0] for line in capsys.readouterr().out.splitlines() if "::" in line}
    assert set().union(*seen) == everything
    assert run(suite, *args, "--shard", "2/3", out=tmp_path / "o") == 0  # same inputs, same split
    assert {line.split("::")[0] for line in capsys.readouterr().out.splitlines() if "::" in line} == seen[1]


def test_shards_balance_by_recorded_durations(tmp_path, capsys):
    """With history, the one slow file gets a shard to itself; without, files split by test count."""
    suite = make_suite(tmp_path / "test", models={"bert": "language", "gpt2": "language", "t5": "language", "vit": "vision"}, apis=())
    args = ("--type", "model", "--hardware", "cpu", "--impl-type", "mock")
    assert run(suite, *args, out=tmp_path / "o") == 0
    prev = latest(tmp_path / "o")
    data = json.loads(prev.model_dump_json())
    for t in data["tests"]:
        t["duration_s"] = 30.0 if "test_hf_t5" in t["nodeid"] else 1.0
    hist = tmp_path / "hist.json"
    hist.write_text(json.dumps(data))
    assert run(suite, *args, "--shard", "1/2", "--durations-from", str(hist), "--collect-only", out=tmp_path / "o") == 0
    files = {line.split("::")[0] for line in capsys.readouterr().out.splitlines() if "::" in line}
    assert files == {"skills/test_hf_t5.py"}
    assert run(suite, *args, "--shard", "2/2", "--durations-from", str(hist), "--collect-only", out=tmp_path / "o") == 0
    files = {line.split("::")[0] for line in capsys.readouterr().out.splitlines() if "::" in line}
    assert files == {"skills/test_hf_bert.py", "skills/test_hf_gpt2.py", "skills/test_hf_vit.py"}


def test_resume_of_a_shard_keeps_its_files(tmp_path):
    suite = make_suite(tmp_path / "test", apis=())
    out = tmp_path / "o"
    assert run(suite, "--type", "model", "--hardware", "cpu", "--impl-type", "mock", "--shard", "2/2", out=out) == 0
    first = latest(out)
    assert run(suite, "--resume", out=out) == 0
    again = latest(out)
    assert again.run_id == first.run_id and {t.nodeid for t in again.tests} == {t.nodeid for t in first.tests}


@pytest.mark.parametrize("bad", ["nope", "latest"])
def test_resume_without_a_run_is_a_usage_error(tmp_path, bad, capsys):
    suite = make_suite(tmp_path / "test")
    assert run(suite, "--resume", bad, out=tmp_path / "empty") == 2
    assert "nothing to resume" in capsys.readouterr().err
