"""Helpers for the runner tests: a small generated-like test suite in a tmp folder, and a way to
run the runner on it. (No tests here; imported by tests/test_runner*.py.)

The suite's files look like the generator's output (markers, `model`/`api` class attributes, the
plugin's `hw` and `impl_type` parametrisation) but their bodies are cheap and record every
execution in a log file, so a test can count what actually ran — not what the runner claims.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

from ipfs_accelerate.results.run import RunResult
from ipfs_accelerate.results.store import load_results, run_dirs
from ipfs_accelerate.runner.cli import run_from_argv

MODELS = {"bert": "language", "gpt2": "language", "t5": "language", "vit": "vision", "whisper": "audio"}
APIS = ("ollama", "openai_api")
LOG_ENV = "RUNNER_SUITE_LOG"

_LOG = """
import os, json

def _log(**kw):
    path = os.environ.get("RUNNER_SUITE_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(kw) + "\\n")
"""

MODEL_FILE = _LOG + """
import pytest

pytestmark = [pytest.mark.model({model!r}), pytest.mark.category({category!r})]


class TestHf{camel}:
    model = {model!r}
    hardware = ("cpu", "cuda", "openvino")

    def _gate(self, hw, impl_type):
        if hw == "cuda":
            pytest.skip("CUDA not available (suite)")
        if impl_type == "real" and self.model != "bert":
            pytest.skip("no pretrained checkpoint configured (suite)")

    def test_init(self, hw, impl_type):
        _log(test="init", model=self.model, hw=hw, impl=impl_type, pid=os.getpid())
        self._gate(hw, impl_type)

    def test_infer(self, hw, impl_type, request):
        _log(test="infer", model=self.model, hw=hw, impl=impl_type, pid=os.getpid(),
             benchmark=request.config.getoption("--benchmark-cases"))
        self._gate(hw, impl_type)
"""

API_FILE = _LOG + """
import pytest

pytestmark = [pytest.mark.api({api!r})]


class Test{camel}:
    api = {api!r}

    def test_request(self, impl_type):
        _log(test="request", api=self.api, impl=impl_type, pid=os.getpid())
        if impl_type == "real" and not os.environ.get("SUITE_REAL_URL"):
            pytest.skip("real endpoint not configured: set SUITE_REAL_URL")
"""


def camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.replace("-", "_").split("_"))


def make_suite(root: Path, models: dict[str, str] | None = None, apis: tuple[str, ...] = APIS) -> Path:
    (root / "skills").mkdir(parents=True, exist_ok=True)
    (root / "apis").mkdir(parents=True, exist_ok=True)
    for model, category in (MODELS if models is None else models).items():
        (root / "skills" / f"test_hf_{model}.py").write_text(MODEL_FILE.format(model=model, category=category, camel=camel(model)))
    for api in apis:
        (root / "apis" / f"test_{api}.py").write_text(API_FILE.format(api=api, camel=camel(api)))
    return root


def write(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def run(suite: Path, *args: str, out: Path, workers: int = 1) -> int:
    """The runner as `test/run_unified_tests.py` would run it, with workers that import nothing heavy."""
    argv = [*args, "--output-dir", str(out), "--preload", "none", "--plain"]
    if "--workers" not in args:
        argv += ["--workers", str(workers)]
    return run_from_argv(argv, default_test_dir=suite)


def latest(out: Path) -> RunResult:
    dirs = run_dirs(out)
    assert dirs, f"no run folder under {out}"
    return load_results(dirs[-1])


def executions(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def statuses(run: RunResult) -> dict[str, str]:
    return {t.nodeid: t.status for t in run.tests}


def tree_snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def env_log(monkeypatch, tmp_path: Path) -> Path:
    log = tmp_path / "executions.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    os.environ.pop("SUITE_REAL_URL", None)
    return log
