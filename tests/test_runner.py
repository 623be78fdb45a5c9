"""Every runner option changes what runs (the earlier runner parsed --category and --impl-type and
ignored them), and every exit code means what it says. Runs real worker processes on a small
generated-like suite; each test counts executions through the suite's own log."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from test_runner_kit import (
    MODELS,
    env_log,
    executions,
    latest,
    make_suite,
    run,
    statuses,
    tree_snapshot,
    write,
)

from ipfs_accelerate.results.run import RunResult

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    return make_suite(tmp_path / "test")


@pytest.fixture
def log(monkeypatch, tmp_path: Path) -> Path:
    return env_log(monkeypatch, tmp_path)


def models_ran(log: Path) -> set[str]:
    return {e["model"] for e in executions(log) if "model" in e}


def apis_ran(log: Path) -> set[str]:
    return {e["api"] for e in executions(log) if "api" in e}


def test_type_model_api_all(suite, log, tmp_path):
    assert run(suite, "--type", "model", "--hardware", "cpu", "--impl-type", "mock", out=tmp_path / "r1") == 0
    assert models_ran(log) == set(MODELS) and apis_ran(log) == set()
    log.unlink()
    assert run(suite, "--type", "api", "--impl-type", "mock", out=tmp_path / "r2") == 0
    assert models_ran(log) == set() and apis_ran(log) == {"ollama", "openai_api"}
    log.unlink()
    assert run(suite, "--hardware", "cpu", "--impl-type", "mock", out=tmp_path / "r3") == 0  # default --type all
    assert models_ran(log) == set(MODELS) and apis_ran(log) == {"ollama", "openai_api"}
    kinds = Counter(t.kind for t in latest(tmp_path / "r3").tests)
    assert kinds == {"model": 2 * len(MODELS), "api": 2}


def test_models_and_apis_filters(suite, log, tmp_path):
    assert run(suite, "--type", "model", "--models", "bert", "t5", "--hardware", "cpu", "--impl-type", "mock", out=tmp_path / "r") == 0
    assert models_ran(log) == {"bert", "t5"}
    assert {t.model for t in latest(tmp_path / "r").tests} == {"bert", "t5"}
    log.unlink()
    assert run(suite, "--type", "api", "--apis", "ollama", "--impl-type", "mock", out=tmp_path / "a") == 0
    assert apis_ran(log) == {"ollama"}


def test_category_and_limit(suite, log, tmp_path):
    assert run(suite, "--category", "vision", "--hardware", "cpu", "--impl-type", "mock", out=tmp_path / "c") == 0
    assert models_ran(log) == {"vit"} and apis_ran(log) == set()  # a model category selects no API tests
    log.unlink()
    assert run(suite, "--type", "model", "--limit", "2", "--hardware", "cpu", "--impl-type", "mock", out=tmp_path / "l") == 0
    assert models_ran(log) == {"bert", "gpt2"}  # registry order
    log.unlink()
    assert run(suite, "--category", "api", "--impl-type", "mock", out=tmp_path / "api") == 0
    assert apis_ran(log) == {"ollama", "openai_api"} and models_ran(log) == set()


def test_hardware_filter(suite, log, tmp_path):
    assert run(suite, "--type", "model", "--models", "bert", "--impl-type", "mock", out=tmp_path / "all") == 0
    assert {e["hw"] for e in executions(log)} == {"cpu", "cuda", "openvino"}
    run_all = latest(tmp_path / "all")
    assert {t.hardware: t.status for t in run_all.tests if t.nodeid.endswith("test_init[cuda]")} == {"cuda": "skipped"}
    log.unlink()
    assert run(suite, "--type", "model", "--models", "bert", "--hardware", "openvino", "--impl-type", "mock", out=tmp_path / "ov") == 0
    assert {e["hw"] for e in executions(log)} == {"openvino"}


def test_impl_type_real_mock_all(suite, log, tmp_path):
    common = ("--type", "all", "--models", "bert", "gpt2", "--apis", "ollama", "--hardware", "cpu")
    assert run(suite, *common, "--impl-type", "mock", out=tmp_path / "m") == 0
    assert {e["impl"] for e in executions(log)} == {"mock"}
    assert all("real" not in t.nodeid for t in latest(tmp_path / "m").tests)
    log.unlink()
    assert run(suite, *common, "--impl-type", "real", out=tmp_path / "r") == 0
    assert {e["impl"] for e in executions(log)} == {"real"}
    real = latest(tmp_path / "r")
    st = {(t.model or t.api, t.impl): t.status for t in real.tests}
    assert st[("bert", "real")] == "passed"
    assert st[("gpt2", "real")] == "skipped" and st[("ollama", "real")] == "skipped"
    assert any("SUITE_REAL_URL" in t.reason for t in real.tests if t.api == "ollama")
    log.unlink()
    assert run(suite, *common, "--impl-type", "all", out=tmp_path / "a") == 0
    assert Counter(e["impl"] for e in executions(log)) == {"mock": 5, "real": 5}


def test_impl_type_real_with_a_real_endpoint_runs_it(suite, log, tmp_path, monkeypatch):
    monkeypatch.setenv("SUITE_REAL_URL", "http://127.0.0.1:9")
    assert run(suite, "--type", "api", "--apis", "ollama", "--impl-type", "real", out=tmp_path / "r") == 0
    assert [t.status for t in latest(tmp_path / "r").tests] == ["passed"]


def test_workers_spreads_files_over_processes(suite, log, tmp_path):
    assert run(suite, "--type", "model", "--hardware", "cpu", "--impl-type", "mock", "--workers", "2", out=tmp_path / "w2") == 0
    r = latest(tmp_path / "w2")
    assert r.options.workers == 2 and len(r.workers) == 2 and len({w.pid for w in r.workers}) == 2
    pids = {e["pid"] for e in executions(log)}
    assert pids <= {w.pid for w in r.workers} and len({t.worker for t in r.tests}) == len(pids)  # whoever was ready took work
    assert r.batches and all(b.cpu_s is not None and 0 <= b.cpu_s <= b.wall_s * 1.1 + 0.05 for b in r.batches)  # one thread each
    assert all(b.page_faults is not None and b.page_faults >= 0 for b in r.batches)
    log.unlink()
    assert run(suite, "--type", "model", "--hardware", "cpu", "--impl-type", "mock", "--workers", "1", out=tmp_path / "w1") == 0
    assert len({e["pid"] for e in executions(log)}) == 1 and len(latest(tmp_path / "w1").workers) == 1


def test_keyword_passes_through(suite, log, tmp_path):
    assert run(suite, "--type", "model", "--models", "bert", "--hardware", "cpu", "--impl-type", "mock", "-k", "infer", out=tmp_path / "k") == 0
    assert {e["test"] for e in executions(log)} == {"infer"}


def test_verbose_prints_each_test(suite, log, tmp_path, capsys):
    args = ("--type", "model", "--models", "bert", "--hardware", "cpu", "--impl-type", "mock")
    assert run(suite, *args, out=tmp_path / "q") == 0
    quiet = capsys.readouterr().out
    assert run(suite, *args, "--verbose", out=tmp_path / "v") == 0
    loud = capsys.readouterr().out
    assert "test_init[cpu]" not in quiet and "test_init[cpu]" in loud and "PASSED" in loud
    assert "ready in" in loud  # worker events


def test_report_and_output_dir_and_nothing_written_in_the_tests(suite, log, tmp_path, monkeypatch):
    before = tree_snapshot(suite)
    monkeypatch.chdir(tmp_path)
    rc = run(suite, "--type", "api", "--impl-type", "mock", "--report", "custom_report.md", out=Path("results"))
    assert rc == 0
    assert (tmp_path / "custom_report.md").read_text().startswith("# Test report")
    (run_dir,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]  # beside them: history.sqlite
    assert {p.name for p in run_dir.iterdir()} >= {"results.json", "results.jsonl", "report.md", "junit.xml", "run.json", "workers", "report.html"}
    assert tree_snapshot(suite) == before  # no __pycache__, .pytest_cache or results in the test tree


def test_default_output_dir_is_test_results_under_cwd(suite, log, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_default(suite, "--type", "api", "--apis", "ollama", "--impl-type", "mock") == 0
    assert len([p for p in (tmp_path / "test_results").iterdir() if p.is_dir()]) == 1


def run_default(suite: Path, *args: str) -> int:
    from ipfs_accelerate.runner.cli import run_from_argv

    return run_from_argv([*args, "--preload", "none", "--plain", "--workers", "1"], default_test_dir=suite)


# ---- exit codes ----------------------------------------------------------------------------

def test_exit_1_on_failure_and_on_unexpected_pass(suite, log, tmp_path):
    write(suite / "skills" / "test_hf_bert.py", """
        import pytest
        pytestmark = [pytest.mark.model("bert")]
        def test_ok(): pass
        @pytest.mark.xfail(reason="registry says broken", strict=True)
        def test_xpass(): pass
        @pytest.mark.xfail(reason="really broken", strict=True)
        def test_xfail(): assert False
    """)
    assert run(suite, "--type", "model", "--models", "bert", out=tmp_path / "x") == 1
    st = {t.nodeid.split("::")[-1]: (t.status, t.reason) for t in latest(tmp_path / "x").tests}
    assert st["test_ok"][0] == "passed"
    assert st["test_xpass"][0] == "xpassed" and "registry says broken" in st["test_xpass"][1]
    assert st["test_xfail"] == ("xfailed", "really broken")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--models", "bertt"), "did you mean: bert"),
        (("--category", "visoin"), "did you mean: vision"),
        (("--type", "api", "--apis", "olama"), "did you mean: ollama"),
        (("--hardware", "cudaa"), "did you mean: cuda"),
        (("--shard", "3/2"), "1 <= k <= N"),
        (("--limit", "0"), "at least 1"),
        (("--type", "api", "--models", "bert"), "cannot be combined"),
    ],
)
def test_exit_2_usage_errors_with_suggestions(suite, tmp_path, capsys, args, needle):
    assert run(suite, *args, out=tmp_path / "u") == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "u").exists()


def test_exit_2_for_a_model_without_a_generated_file(suite, tmp_path, capsys):
    assert run(suite, "--models", "llama", out=tmp_path / "u") == 2
    assert "generate_unified_test.py --type model --models llama" in capsys.readouterr().err


def test_exit_2_from_argparse(suite, tmp_path):
    with pytest.raises(SystemExit) as exc:
        run(suite, "--impl-type", "fake", out=tmp_path / "u")
    assert exc.value.code == 2


def test_exit_3_nothing_selected_or_everything_skipped(tmp_path, log, capsys):
    empty = make_suite(tmp_path / "empty", models={}, apis=())
    assert run(empty, "--type", "model", out=tmp_path / "e") == 3
    assert "nothing selected" in capsys.readouterr().err
    suite = make_suite(tmp_path / "s")
    assert run(suite, "--type", "model", "--models", "bert", "-k", "no_such_test", out=tmp_path / "k") == 3
    assert run(suite, "--type", "model", "--models", "gpt2", "--hardware", "cuda", out=tmp_path / "cuda") == 3
    assert set(statuses(latest(tmp_path / "cuda")).values()) == {"skipped"}


def test_collection_error_and_module_skip_are_records(suite, log, tmp_path):
    write(suite / "skills" / "test_hf_gpt2.py", "import no_such_module_xyz\n")
    write(suite / "apis" / "test_ollama.py", """
        import pytest
        kit = pytest.importorskip("no_such_api_kit_xyz")
    """)
    rc = run(suite, "--models", "bert", "gpt2", "--apis", "ollama", "openai_api", "--hardware", "cpu", "--impl-type", "mock", out=tmp_path / "c")
    assert rc == 1
    st = {t.nodeid: (t.status, t.reason) for t in latest(tmp_path / "c").tests}
    assert st["skills/test_hf_gpt2.py"][0] == "error" and "no_such_module_xyz" in st["skills/test_hf_gpt2.py"][1]
    assert st["apis/test_ollama.py"][0] == "skipped" and "no_such_api_kit_xyz" in st["apis/test_ollama.py"][1]
    assert models_ran(log) == {"bert"} and apis_ran(log) == {"openai_api"}


# ---- the wrapper and the CLI, as users type them -------------------------------------------

def test_wrapper_script_from_test_dir(suite, tmp_path):
    shutil.copy(REPO / "test" / "run_unified_tests.py", suite / "run_unified_tests.py")
    env = {**os.environ, "RUNNER_SUITE_LOG": str(tmp_path / "log.jsonl")}
    proc = subprocess.run([sys.executable, "run_unified_tests.py", "--type", "api", "--apis", "ollama", "openai_api",
                           "--impl-type", "mock", "--preload", "none"], cwd=suite, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = [p for p in (suite / "test_results").iterdir() if p.is_dir()]  # the documented default: ./test_results
    assert RunResult.model_validate_json((run_dir / "results.json").read_text()).summary["passed"] == 2
    assert "results:" in proc.stdout


def test_ipfs_accelerate_run_subcommand(suite, tmp_path):
    exe = Path(sys.executable).with_name("ipfs-accelerate")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ipfs_accelerate.cli"]
    proc = subprocess.run([*cmd, "run", "--type", "model", "--models", "bertt"], cwd=suite.parent, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "did you mean: bert" in proc.stderr
    proc = subprocess.run([*cmd, "run", "--type", "api", "--apis", "ollama", "--impl-type", "mock", "--preload", "none",
                           "--output-dir", str(tmp_path / "out")], cwd=suite.parent, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # found ./test/apis from the repo-like root


def test_collect_only_lists_without_running(suite, log, tmp_path, capsys):
    assert run(suite, "--type", "model", "--models", "vit", "--hardware", "cpu", "openvino", "--impl-type", "all", "--collect-only", out=tmp_path / "c") == 0
    out = capsys.readouterr().out
    assert "skills/test_hf_vit.py::TestHfVit::test_init[openvino-real]" in out and "8 tests selected" in out
    assert executions(log) == [] and not (tmp_path / "c").exists()


def test_progress_is_rich_on_a_tty_and_plain_otherwise():
    import io

    from ipfs_accelerate.runner import progress

    class TTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    rich_bar = progress.make(3, verbose=False, stream=TTY())
    try:
        assert isinstance(rich_bar, progress.RichProgress)
    finally:
        rich_bar.close()
    assert type(progress.make(3, verbose=False, stream=io.StringIO())) is progress.Progress
    assert type(progress.make(3, verbose=False, plain=True, stream=TTY())) is progress.Progress


def test_recycle_replaces_workers_after_n_files(suite, log, tmp_path):
    args = ("--type", "model", "--models", "bert", "gpt2", "t5", "--hardware", "cpu", "--impl-type", "mock")
    assert run(suite, *args, "--recycle", "1", out=tmp_path / "r1") == 0
    assert len({e["pid"] for e in executions(log)}) == 3  # one worker per file
    assert [w.end for w in latest(tmp_path / "r1").workers].count("recycled") >= 2
    log.unlink()
    assert run(suite, *args, out=tmp_path / "r25") == 0
    assert len({e["pid"] for e in executions(log)}) == 1


def test_threads_pin_every_runtime_in_the_workers(tmp_path, monkeypatch):
    suite = tmp_path / "t"
    write(suite / "test_env.py", """
        import os
        def test_env():
            assert os.environ["OMP_NUM_THREADS"] == os.environ["IPFS_ACCEL_THREADS"] == os.environ["EXPECT_THREADS"]
            assert os.environ["HF_HUB_OFFLINE"] == "1"
    """)
    for n in ("1", "3"):
        monkeypatch.setenv("EXPECT_THREADS", n)
        extra = () if n == "1" else ("--threads", n)
        assert run(suite, str(suite / "test_env.py"), *extra, out=tmp_path / f"o{n}") == 0


def test_benchmark_flag_reaches_the_tests(suite, log, tmp_path):
    args = ("--type", "model", "--models", "bert", "--hardware", "cpu", "--impl-type", "mock", "-k", "infer")
    assert run(suite, *args, out=tmp_path / "plain") == 0
    assert run(suite, *args, "--benchmark", out=tmp_path / "bench") == 0
    assert [e["benchmark"] for e in executions(log)] == [False, True]
    assert latest(tmp_path / "bench").selection.benchmark is True


def test_run_id_names_the_folder_and_resume_takes_it(suite, log, tmp_path, capsys):
    args = ("--type", "api", "--apis", "ollama", "--impl-type", "mock")
    assert run(suite, *args, "--run-id", "nightly-1", out=tmp_path / "o") == 0
    assert run(suite, *args, "--run-id", "nightly-2", out=tmp_path / "o") == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir() if p.is_dir()) == ["nightly-1", "nightly-2"]
    capsys.readouterr()
    assert run(suite, "--resume", "nightly-1", out=tmp_path / "o") == 0
    assert "resuming run nightly-1" in capsys.readouterr().out
    assert len(executions(log)) == 2  # both already complete: nothing re-ran


def test_impl_type_filters_api_tests_with_their_own_mock_real_fixture(tmp_path, log):
    """The API kit parametrises its own `target` fixture over mock/real; --impl-type selects by it."""
    suite = tmp_path / "t"
    write(suite / "apis" / "test_ollama.py", """
        import json, os
        import pytest
        pytestmark = [pytest.mark.api("ollama")]

        class TestAPI_ollama:
            @pytest.fixture(params=["mock", "real"])
            def target(self, request):
                return request.param
            def test_chat(self, target):
                with open(os.environ["RUNNER_SUITE_LOG"], "a") as fh:
                    fh.write(json.dumps({"api": "ollama", "impl": target}) + "\\n")
            def test_fault_injection(self):  # needs the fake: mock only
                pass
    """)
    assert run(suite, "--type", "api", "--impl-type", "mock", out=tmp_path / "m") == 0
    assert [e["impl"] for e in executions(log)] == ["mock"]
    assert {t.nodeid.split("::")[-1]: t.impl for t in latest(tmp_path / "m").tests} == {"test_chat[mock]": "mock", "test_fault_injection": "mock"}
    log.unlink()
    assert run(suite, "--type", "api", "--impl-type", "real", out=tmp_path / "r") == 0
    assert [e["impl"] for e in executions(log)] == ["real"]
    assert [t.nodeid.split("::")[-1] for t in latest(tmp_path / "r").tests] == ["test_chat[real]"]


def test_recycled_worker_successor_starts_a_file_early(suite, log, tmp_path):
    """--recycle 2 with one worker: the successor is spawned while the old worker runs its last
    file, so no file waits for a cold start; every file still runs exactly once."""
    args = ("--type", "model", "--models", "bert", "gpt2", "t5", "--hardware", "cpu", "--impl-type", "mock")
    assert run(suite, *args, "--recycle", "2", out=tmp_path / "r") == 0
    r = latest(tmp_path / "r")
    assert len(r.workers) == 2 and r.workers[0].end == "recycled"
    assert Counter((e["model"], e["test"]) for e in executions(log)) == {(m, t): 1 for m in ("bert", "gpt2", "t5") for t in ("init", "infer")}


def test_pytest_args_name_a_folder_only_when_every_module_in_it_is_selected(tmp_path):
    from ipfs_accelerate.runner.core import _compact

    for name in ("test_a.py", "test_b.py", "conftest.py"):
        (tmp_path / "skills" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "skills" / name).write_text("")
    both = ["skills/test_a.py", "skills/test_b.py"]
    assert _compact(both, tmp_path) == [str(tmp_path / "skills")]
    assert _compact(both[:1], tmp_path) == [str(tmp_path / "skills" / "test_a.py")]
    (tmp_path / "skills" / "helper.py").write_text("")  # a module nobody selected: the folder would collect it
    assert _compact(both, tmp_path) == [str(tmp_path / f) for f in both]
    (tmp_path / "skills" / "helper.py").unlink()
    (tmp_path / "skills" / "sub").mkdir()  # pytest would recurse into it
    assert _compact(both, tmp_path) == [str(tmp_path / f) for f in both]


def test_the_runner_launches_workers_before_it_imports_pydantic():
    """Importing pydantic and building the result validators costs ~0.3 s: the runner pays it while
    its workers start, so nothing it imports before `Pool.start` may pull pydantic in."""
    code = ("import sys; import ipfs_accelerate.runner.cli, ipfs_accelerate.runner.core, ipfs_accelerate.results.store, "
            "ipfs_accelerate.runner.progress; print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
