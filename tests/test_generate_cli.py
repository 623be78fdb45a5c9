"""The generator commands exactly as the spec writes them, run from test/ as users type them,
and through `ipfs-accelerate generate`: files, messages and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ipfs_accelerate import registry
from ipfs_accelerate.api.providers import PROVIDER_NAMES
from ipfs_accelerate.generate import cli, engine

REPO = Path(__file__).resolve().parents[1]
TEST_DIR = REPO / "test"
OWN_OUTPUTS = ("skills", "apis", engine.STATUS_FILE)


def script(name: str, *args: str, cwd: Path = TEST_DIR, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, name, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


def via_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ipfs_accelerate.cli", "generate", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def snapshot_test_dir() -> dict[str, tuple[int, int]]:
    out = {}
    for name in OWN_OUTPUTS:
        base = TEST_DIR / name
        for p in [base] if base.is_file() else sorted(base.rglob("*")) if base.exists() else []:
            st = p.stat()
            out[str(p.relative_to(TEST_DIR))] = (st.st_mtime_ns, st.st_size)
    return out


def model_file(name: str, task: str | None = None) -> str:
    spec = registry.get(name)
    return engine.model_relpath(spec.name, task or spec.task, spec.task).as_posix()


def known(*names: str) -> list[str]:
    return [n for n in names if n in registry.load()]


def run_main(argv: list[str], capsys: pytest.CaptureFixture, basic: bool = False) -> tuple[int, str, str]:
    rc = (cli.basic_main if basic else cli.unified_main)(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# ---- the spec's commands, end to end ----------------------------------------------------------
def test_spec_unified_commands_from_test_dir(tmp_path: Path) -> None:
    out, out2 = tmp_path / "wrapper", tmp_path / "cli"
    before = snapshot_test_dir()
    language = [s.name for s in registry.list_models(category="language")]

    r = script("generate_unified_test.py", "--type", "model", "--category", "language", "--limit", "5", "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(tree(out)) == sorted([model_file(n) for n in language[:5]] + [engine.STATUS_FILE])
    for n in language[:5]:
        assert f"wrote {out / model_file(n)}" in r.stdout

    r = script("generate_unified_test.py", "--type", "api", "--apis", "ollama", "groq", "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    assert {"apis/test_ollama.py", "apis/test_groq.py"} <= set(tree(out))
    assert len([f for f in tree(out) if f.startswith("apis/")]) == 2

    r = script("generate_unified_test.py", "--type", "all", "--limit", "3", "--output-dir", str(out), "--verbose")
    assert r.returncode == 0, r.stderr
    first3 = [s.name for s in registry.list_models()[:3]]
    apis3 = list(PROVIDER_NAMES[:3])
    files = set(tree(out))
    assert {model_file(n) for n in first3} <= files
    assert {f"apis/test_{a}.py" for a in apis3} <= files
    assert "selected: 3 model test(s), 3 API test(s)" in r.stdout

    listed_before = tree(out)
    r = script("generate_unified_test.py", "--type", "model", "--list-missing", "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    have = set(language[:5]) | set(first3)
    expected_missing = [s.name for s in registry.list_models() if s.name not in have]
    assert r.stdout.splitlines() == expected_missing
    assert f"{len(expected_missing)} of {len(registry.list_models())} selected models have no test" in r.stderr
    assert tree(out) == listed_before, "--list-missing wrote or changed files"

    r = script("generate_unified_test.py", "--type", "model", "--models", "bert", "t5", "llama", "--output-dir", str(out))
    names = known("bert", "t5", "llama")
    assert r.returncode == (0 if len(names) == 3 else 1), r.stderr
    assert {model_file(n) for n in names} <= set(tree(out))
    for n in {"bert", "t5", "llama"} - set(names):
        assert f"unknown model {n!r}" in r.stderr

    # the same sequence through `ipfs-accelerate generate` gives the same tree, byte for byte
    for args in (
        ["--type", "model", "--category", "language", "--limit", "5"],
        ["--type", "api", "--apis", "ollama", "groq"],
        ["--type", "all", "--limit", "3"],
        ["--type", "model", "--list-missing"],
        ["--type", "model", "--models", "bert", "t5", "llama"],
    ):
        r2 = via_cli(*args, "--output-dir", str(out2))
        assert r2.returncode in (0, 1), r2.stderr
    assert tree(out2) == tree(out)
    assert snapshot_test_dir() == before, "a command wrote into test/ despite --output-dir"


@pytest.mark.parametrize(
    ("models", "task"),
    [(("bert", "t5", "llama"), "text-generation"), (("clip", "whisper"), "automatic-speech-recognition")],
)
def test_spec_basic_commands(tmp_path: Path, models: tuple[str, ...], task: str) -> None:
    before = snapshot_test_dir()
    r = script("generate_basic_tests.py", *models, "--task", task, "--output-dir", str(tmp_path / "a"))
    ok = [m for m in known(*models) if task in registry.get(m).tasks]
    assert r.returncode == (0 if len(ok) == len(models) else 1), r.stderr
    files = tree(tmp_path / "a")
    assert sorted(f for f in files if f.startswith("skills/")) == sorted(model_file(m, task) for m in ok)
    for m in ok:
        text = files[model_file(m, task)].decode()
        assert 'profile = "basic"' in text and f'task = "{task}"' in text
    for m in models:
        if m not in registry.load():
            assert f"unknown model {m!r}" in r.stderr
        elif m not in ok:
            spec = registry.get(m)
            assert f"model {m!r} cannot do task {task!r}; it supports: {', '.join(spec.tasks)}" in r.stderr
    r2 = via_cli("--profile", "basic", "--models", *models, "--task", task, "--output-dir", str(tmp_path / "b"))
    assert r2.returncode == r.returncode
    assert tree(tmp_path / "b") == files
    assert snapshot_test_dir() == before


def test_wrapper_works_without_the_package_installed(tmp_path: Path) -> None:
    """`python -S` skips site-packages' .pth files (the editable install); dependencies are put on
    PYTHONPATH by hand, so only the wrapper's fallback to ../src can find ipfs_accelerate."""
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    probe = subprocess.run([sys.executable, "-S", "-c", "import ipfs_accelerate"], capture_output=True, env=env, cwd=tmp_path)
    assert probe.returncode != 0, "the probe should not find the installed package"
    for name, args in (("generate_unified_test.py", ["--models", "bert"]), ("generate_basic_tests.py", ["bert"])):
        r = subprocess.run([sys.executable, "-S", name, *args, "--output-dir", str(tmp_path / name)], cwd=TEST_DIR, capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / name / model_file("bert")).is_file()


# ---- options ----------------------------------------------------------------------------------
def test_force_and_skip_messages(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / model_file("bert")
    assert run_main(["bert", "--output-dir", str(tmp_path)], capsys, basic=True)[0] == 0
    rc, out, _ = run_main(["--models", "bert", "--output-dir", str(tmp_path)], capsys)
    assert rc == 0
    assert f"skipped {path}: exists and differs; use --force to overwrite" in out
    assert 'profile = "basic"' in path.read_text()
    rc, out, _ = run_main(["--models", "bert", "--output-dir", str(tmp_path), "--force"], capsys)
    assert rc == 0 and f"overwrote {path}" in out
    assert 'profile = "unified"' in path.read_text()
    rc, out, _ = run_main(["--models", "bert", "--output-dir", str(tmp_path)], capsys)
    assert "0 written, 0 overwritten, 1 unchanged" in out and "unchanged " not in out.splitlines()[0]
    rc, out, _ = run_main(["--models", "bert", "--output-dir", str(tmp_path), "--verbose"], capsys)
    assert f"unchanged {path}" in out


def test_hand_edit_is_reported_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_main(["--models", "bert", "gpt2", "--output-dir", str(tmp_path)], capsys)
    path = tmp_path / model_file("bert")
    edited = path.read_text() + "\n# my tweak\n"
    path.write_text(edited)
    rc, out, _ = run_main(["--models", "bert", "gpt2", "--output-dir", str(tmp_path), "--force"], capsys)
    assert rc == 1
    assert f"skipped {path}: hand-edited (checksum mismatch)" in out
    assert path.read_text() == edited
    rc, out, _ = run_main(["--models", "bert", "--output-dir", str(tmp_path), "--overwrite-edited"], capsys)
    assert rc == 0 and f"overwrote {path}" in out and path.read_text() != edited


def test_rerun_is_byte_identical(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_main(["--type", "all", "--output-dir", str(tmp_path / "a")], capsys)
    first = tree(tmp_path / "a")
    rc, out, _ = run_main(["--type", "all", "--output-dir", str(tmp_path / "a"), "--force"], capsys)
    assert rc == 0 and "0 written, 0 overwritten" in out
    assert tree(tmp_path / "a") == first
    r = script("generate_unified_test.py", "--type", "all", "--output-dir", str(tmp_path / "b"))
    assert r.returncode == 0
    assert tree(tmp_path / "b") == first
    n_models = sum(len([1]) for _ in registry.list_models())
    from ipfs_accelerate.diffusion.generate import targets as diffusion_targets

    assert len([f for f in first if f.startswith("skills/test_hf_")]) == n_models
    assert len([f for f in first if f.startswith("skills/test_diffusion_")]) == len(diffusion_targets())
    assert len([f for f in first if f.startswith("apis/")]) == len(PROVIDER_NAMES)


def test_check_mode(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc, out, _ = run_main(["--type", "all", "--check", "--output-dir", str(tmp_path)], capsys)
    assert rc == 1 and f"missing: {tmp_path / model_file('bert')}" in out
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
    run_main(["--type", "all", "--output-dir", str(tmp_path)], capsys)
    assert run_main(["--type", "all", "--check", "--output-dir", str(tmp_path)], capsys)[:2] == (0, "check: all in sync\n")
    (tmp_path / "skills" / "test_hf_gone.py").write_text((tmp_path / model_file("bert")).read_text())
    p = tmp_path / model_file("gpt2")
    p.write_text(p.read_text().replace("gpt2", "gpt3"))
    rc, out, _ = run_main(["--type", "all", "--check", "--output-dir", str(tmp_path)], capsys)
    assert rc == 1
    assert f"edited: {p}" in out
    assert f"outdated: {tmp_path / engine.STATUS_FILE}" in out
    assert f"orphaned (its registry entry is gone): {tmp_path / 'skills/test_hf_gone.py'}" in out


def test_list_missing_for_apis_and_all(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_main(["--type", "api", "--apis", "groq", "--output-dir", str(tmp_path)], capsys)
    rc, out, _ = run_main(["--type", "api", "--list-missing", "--output-dir", str(tmp_path)], capsys)
    assert rc == 0 and out.splitlines() == [a for a in PROVIDER_NAMES if a != "groq"]
    rc, out, _ = run_main(["--type", "all", "--list-missing", "--output-dir", str(tmp_path)], capsys)
    assert out.splitlines() == [f"model {s.name}" for s in registry.list_models()] + [f"api {a}" for a in PROVIDER_NAMES if a != "groq"]
    rc, out, _ = run_main(["--list-missing", "--category", "language", "--output-dir", str(tmp_path)], capsys)
    assert out.splitlines() == [s.name for s in registry.list_models(category="language")]
    assert sorted(tree(tmp_path)) == ["apis/test_groq.py", engine.STATUS_FILE]


def test_task_selects_models_that_support_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    task = "text-generation"
    rc, out, _ = run_main(["--task", task, "--list-missing", "--output-dir", str(tmp_path)], capsys)
    assert rc == 0
    assert out.splitlines() == [s.name for s in registry.list_models(task=task)]


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--models", "bret"], "unknown model 'bret'; did you mean: bert"),
        (["--type", "api", "--apis", "olama"], "unknown API 'olama'; did you mean: ollama"),
        (["--type", "api", "--apis", "open_ai"], "openai_api"),
        (["--category", "langauge"], "unknown category 'langauge'; did you mean: language"),
        (["--category", "visoin", "--list-missing"], "did you mean: vision"),
        (["--task", "fill-mesk"], "unknown task 'fill-mesk'; did you mean: fill-mask"),
        (["--models", "bert", "--task", "automatic-speech-recognition"], "model 'bert' cannot do task 'automatic-speech-recognition'; it supports: "),
    ],
)
def test_unknown_names_exit_1_with_suggestions(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], needle: str) -> None:
    rc, _, err = run_main([*argv, "--output-dir", str(tmp_path)], capsys)
    assert rc == 1
    assert needle in err


def test_valid_pairs_are_still_generated(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc, out, err = run_main(["--models", "bert", "bret", "gpt2", "--output-dir", str(tmp_path)], capsys)
    assert rc == 1 and "did you mean: bert" in err
    assert {model_file("bert"), model_file("gpt2")} <= set(tree(tmp_path))


HOSTILE = ["bert; rm -rf /", "../x", "../../etc/passwd", "b\u0435rt", "\uff42\uff45\uff52\uff54", "", " ", "bert\n", "a/b", "$(touch pwned)", "bert`id`"]


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("option", ["--models", "--apis", "--task", "--category", "basic"])
def test_hostile_names_rejected_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture, name: str, option: str) -> None:
    out = tmp_path / "out"
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        if option == "basic":
            rc, _, err = run_main(["bert", name, "--output-dir", str(out)], capsys, basic=True)
        else:
            extra = ["--type", "all"] if option == "--apis" else []
            rc, _, err = run_main([*extra, "--models", "bert", option, name, "--output-dir", str(out)] if option != "--models" else ["--models", "bert", name, "--output-dir", str(out)], capsys)
    finally:
        os.chdir(cwd)
    assert rc == 2
    assert "invalid" in err and "nothing was generated" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # not even the output folder


def test_hostile_name_from_the_shell_as_the_spec_writes_it(tmp_path: Path) -> None:
    before = snapshot_test_dir()
    r = script("generate_unified_test.py", "--type", "model", "--models", "bert; rm -rf /", "../x", "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "invalid model name 'bert; rm -rf /'" in r.stderr
    assert not (tmp_path / "o").exists() and snapshot_test_dir() == before


@pytest.mark.parametrize(
    "argv",
    [["--apis", "groq", "--type", "model"], ["--type", "api", "--models", "bert"], ["--limit", "-1"], ["--check", "--list-missing"]],
)
def test_bad_option_combinations_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str]) -> None:
    rc, _, err = run_main([*argv, "--output-dir", str(tmp_path / "o")], capsys)
    assert rc == 2 and "error:" in err
    assert not (tmp_path / "o").exists()


def test_default_output_dir_is_the_repo_test_folder(tmp_path: Path) -> None:
    assert cli.find_test_dir(TEST_DIR) == TEST_DIR
    assert cli.find_test_dir(REPO / "src" / "ipfs_accelerate") == TEST_DIR
    assert cli.find_test_dir(tmp_path) is None
    assert cli.find_results_dir(TEST_DIR) == REPO / "results"
    assert cli.find_results_dir(tmp_path) is None


def test_prune_deletes_only_intact_orphans(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_main(["--models", "bert", "--output-dir", str(tmp_path)], capsys)
    text = (tmp_path / model_file("bert")).read_text()
    gone, edited = tmp_path / "skills" / "test_hf_gone.py", tmp_path / "skills" / "test_hf_gone2.py"
    gone.write_text(text)
    edited.write_text(text + "# mine\n")
    rc, out, err = run_main(["--models", "bert", "--output-dir", str(tmp_path)], capsys)
    assert rc == 0 and gone.exists() and "skills/test_hf_gone.py tests a model or API that is no longer registered" in err
    rc, out, err = run_main(["--models", "bert", "--output-dir", str(tmp_path), "--prune"], capsys)
    assert rc == 1
    assert not gone.exists() and f"deleted {gone}" in out
    assert edited.exists() and f"kept {edited}" in err
    assert (tmp_path / model_file("bert")).exists()


def test_default_output_dir_end_to_end_without_writing() -> None:
    before = snapshot_test_dir()
    r = script("generate_unified_test.py", "--type", "all", "--list-missing", "--verbose")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "output folder: ."
    r = via_cli("--type", "all", "--list-missing", "--verbose")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "output folder: test"
    assert snapshot_test_dir() == before
