"""The one owner of the test tree's layout; `generate` writes it, `run` and the status file read it.

    <test-dir>/skills/test_hf_<model>[__<task>].py     model tests (no task suffix: default task)
    <test-dir>/apis/test_<api>.py                      API tests
    <test-dir>/test_implementation_status.json         the status file

Names become file names through ``ident`` (``xlm-roberta`` -> ``xlm_roberta``, ``kosmos-2.5`` ->
``kosmos_2_5``). Import-light: stdlib plus ``names`` only, so the runner can use it at start-up.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from .names import ident

MODEL_DIR = "skills"
API_DIR = "apis"
STATUS_FILE = "test_implementation_status.json"
MODEL_PREFIX = "test_hf_"
TASK_SEP = "__"
UNIFIED_SCRIPT = "generate_unified_test.py"


def model_stem(name: str, task: str | None = None, default_task: str | None = None) -> str:
    stem = MODEL_PREFIX + ident(name)
    if task is not None and task != default_task:
        stem += TASK_SEP + ident(task)
    return stem


def model_relpath(name: str, task: str | None = None, default_task: str | None = None) -> PurePosixPath:
    """``skills/test_hf_<model>.py`` for the default task, ``test_hf_<model>__<task>.py`` otherwise."""
    return PurePosixPath(MODEL_DIR, model_stem(name, task, default_task) + ".py")


def api_relpath(name: str) -> PurePosixPath:
    return PurePosixPath(API_DIR, f"test_{ident(name)}.py")


def parse_model_stem(stem: str) -> tuple[str, str] | None:
    """``test_hf_bert__fill_mask`` -> (``bert``, ``fill_mask``) in ident form; None if not a model test."""
    if not stem.startswith(MODEL_PREFIX):
        return None
    model_id, _, task_id = stem[len(MODEL_PREFIX):].partition(TASK_SEP)
    return model_id, task_id


def model_files(test_dir: Path, name: str) -> list[Path]:
    """Every test file of one model (default task and per-task files), sorted."""
    stem = model_stem(name)
    folder = test_dir / MODEL_DIR
    return sorted(p for p in folder.glob(f"{stem}*.py") if p.stem == stem or p.stem.startswith(stem + TASK_SEP))


def _holds_tests(folder: Path) -> bool:
    """A test tree, not just any folder named skills/ (the package has one for task skills)."""
    return any((folder / MODEL_DIR).glob(MODEL_PREFIX + "*.py")) or any((folder / API_DIR).glob("test_*.py"))


def find_test_dir(start: Path) -> Path | None:
    """The folder that holds ``skills/`` and ``apis/``: ``start`` itself when it holds the wrapper
    script or one of those folders, ``start/test`` when that does, else ``<root>/test`` for the
    first ancestor with a pyproject.toml and a test/ folder. One rule for `generate` and `run`."""
    start = start.resolve()
    for cand in (start, start / "test"):
        if (cand / UNIFIED_SCRIPT).is_file() or _holds_tests(cand):
            return cand
    for d in start.parents:
        if (d / UNIFIED_SCRIPT).is_file():
            return d
        if (d / "pyproject.toml").is_file() and (d / "test").is_dir():
            return d / "test"
    return None
