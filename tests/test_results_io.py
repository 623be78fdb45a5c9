"""Hostile environment for the results files: a full disk (ENOSPC injected at the one write seam),
an unwritable output folder, a file from a newer schema, a second writer on the same run folder —
each a one-line error, earlier files intact. Plus: results JSON round-trips (hypothesis)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_history import make_run

from ipfs_accelerate.results import _io
from ipfs_accelerate.results.run import RunResult
from ipfs_accelerate.results.status import Status
from ipfs_accelerate.results.store import (
    ResultsError,
    RunLocked,
    RunStore,
    WriteError,
    load_results,
)


def test_full_disk_is_one_line_and_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "results.json"
    _io.write_atomic(path, "old")

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_io, "_write", full)
    with pytest.raises(WriteError) as exc:
        _io.write_atomic(path, "new")
    assert "\n" not in str(exc.value) and "disk full" in str(exc.value) and str(path) in str(exc.value)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp left


def test_unwritable_output_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a folder under a regular file cannot be created, even by root
    with pytest.raises(WriteError) as exc:
        RunStore(blocker / "run")
    assert "\n" not in str(exc.value) and "cannot write" in str(exc.value)


def test_newer_schema_is_refused_with_a_sentence(tmp_path: Path) -> None:
    import numpy as np

    run = make_run("r", np.random.default_rng(0))
    (tmp_path / "results.json").write_text(run.model_dump_json().replace('"schema_version":1', '"schema_version":99'))
    with pytest.raises(ResultsError, match="schema version 99, newer than"):
        load_results(tmp_path / "results.json")


def test_second_writer_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    import numpy as np

    run = make_run("r", np.random.default_rng(0))
    first = RunStore(tmp_path / "r")
    first.save_results(run)
    second = RunStore(tmp_path / "r")
    with pytest.raises(RunLocked, match=f"another runner \\(pid {os.getpid()}\\)"):
        second.save_results(run)
    assert load_results(tmp_path / "r").run_id == "r"  # the first writer's file is intact
    first.close()
    second.save_results(run)  # free once the first is done
    second.close()


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(reason=_text, nodeid=_text.filter(bool), duration=st.floats(0, 1e6), status=st.sampled_from(
    ["passed", "failed", "skipped", "xfailed", "xpassed", "error", "crashed", "timeout"]),
    versions=st.dictionaries(_text, _text, max_size=3))
def test_results_json_round_trips(reason: str, nodeid: str, duration: float, status: str, versions: dict[str, str]) -> None:
    import numpy as np

    run = make_run("r", np.random.default_rng(0))
    t = run.tests[0].model_copy(update={"reason": reason, "nodeid": nodeid, "duration_s": duration, "status": Status(status)})
    run = run.model_copy(update={"tests": [t, *run.tests[1:]], "versions": versions})
    again = RunResult.model_validate_json(run.model_dump_json())
    assert again == run
