"""Pure unit tests of results/store.py that kill its mutants (real files under tmp_path).

The store decides what a killed or concurrent runner leaves behind: one JSON line per test,
last record wins, torn lines skipped, one writer per folder, newer schemas refused with a sentence.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import time
from pathlib import Path

import pytest

from ipfs_accelerate.results import _io, store
from ipfs_accelerate.results.run import TestRecord
from ipfs_accelerate.results.schema import SCHEMA_VERSION

from .kit import make_run


def _rec(nodeid: str, status: str = "passed") -> TestRecord:
    return TestRecord(nodeid=nodeid, file=nodeid.split("::")[0], status=status)


def test_new_run_id_is_sortable_to_the_millisecond() -> None:
    t = 1_800_000_123.25
    rid = store.new_run_id(t)
    assert rid.startswith(time.strftime("%Y%m%d-%H%M%S", time.localtime(t)) + "-250-")
    assert re.fullmatch(r"\d{8}-\d{6}-\d{3}-[0-9a-f]{4}", rid)
    assert store.new_run_id(t + 0.001)[:19] > rid[:19]
    assert re.fullmatch(r"\d{8}-\d{6}-\d{3}-[0-9a-f]{4}", store.new_run_id())


def test_run_dirs_and_find_run(tmp_path: Path) -> None:
    assert store.run_dirs(tmp_path / "missing") == []
    assert store.find_run(tmp_path, None) is None
    for name in ("b", "a", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / store.HEADER).write_text("{}")
    (tmp_path / "no-header").mkdir()
    (tmp_path / "file").write_text("")
    assert store.run_dirs(tmp_path) == [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    assert store.find_run(tmp_path, None) == tmp_path / "c"
    assert store.find_run(tmp_path, "latest") == tmp_path / "c"
    assert store.find_run(tmp_path, "a") == tmp_path / "a"
    assert store.find_run(tmp_path, str(tmp_path / "b")) == tmp_path / "b"
    assert store.find_run(tmp_path, "no-header") is None
    assert store.find_run(tmp_path, "zzz") is None


def test_store_makes_its_folder_or_says_why(tmp_path: Path) -> None:
    s = store.RunStore(tmp_path / "out" / "run")
    assert s.dir.is_dir() and s.records_path == tmp_path / "out" / "run" / "results.jsonl"
    store.RunStore(tmp_path / "out" / "run")  # exists already: fine
    (tmp_path / "blocker").write_text("")
    with pytest.raises(_io.WriteError) as info:
        store.RunStore(tmp_path / "blocker" / "run")
    assert str(info.value).startswith(f"cannot write {tmp_path / 'blocker' / 'run'}: ")
    assert info.value.errno == errno.ENOTDIR


def test_append_load_last_wins_skips_torn_and_blank(tmp_path: Path) -> None:
    s = store.RunStore(tmp_path)
    assert s.load_records() == []
    s.append(_rec("a.py::x", "failed"))
    s.append(_rec("b.py::y"))
    s.append(_rec("a.py::x", "passed"))
    s.close()
    with open(s.records_path, "a", encoding="utf-8") as fh:
        fh.write("\n   \n{\"nodeid\": \"torn\n")
    lines = s.records_path.read_text().splitlines()
    assert json.loads(lines[0])["status"] == "failed" and len(lines) == 6
    recs = s.load_records()
    assert [(r.nodeid, r.status) for r in recs] == [("a.py::x", "passed"), ("b.py::y", "passed")]
    bad_utf8 = store.RunStore(tmp_path / "u")
    bad_utf8.records_path.write_bytes(b"\xff\xfe\n" + (_rec("c.py::z").model_dump_json() + "\n").encode())
    assert [r.nodeid for r in bad_utf8.load_records()] == ["c.py::z"]


def test_append_writes_each_record_in_one_call_through_the_seam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = _io._write

    def spy(fd: int, data: bytes) -> None:
        calls.append(data)
        real(fd, data)

    monkeypatch.setattr(_io, "_write", spy)
    s = store.RunStore(tmp_path)
    r = _rec("a.py::x")
    s.append(r)
    s.close()
    assert calls == [(r.model_dump_json() + "\n").encode("utf-8")]


def test_append_failures_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = store.RunStore(tmp_path / "r")
    s.records_path.mkdir()  # records file cannot be opened
    with pytest.raises(_io.WriteError) as info:
        s.append(_rec("a.py::x"))
    assert str(info.value).startswith(f"cannot write {s.records_path}: ") and info.value.errno == errno.EISDIR
    s.close()
    full = store.RunStore(tmp_path / "full")

    def enospc(fd: int, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_io, "_write", enospc)
    with pytest.raises(_io.WriteError) as info:
        full.append(_rec("a.py::x"))
    assert str(info.value) == f"cannot write {full.records_path}: disk full (ENOSPC); earlier files are unchanged"
    assert info.value.errno == 28
    full.close()


def test_fsync_at_most_every_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(store.time, "monotonic", lambda: now[0])

    def spy(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(store.os, "fsync", spy)
    s = store.RunStore(tmp_path)
    s.append(_rec("a::1"))  # first append: last sync at 0.0 is long ago
    assert len(synced) == 1
    now[0] = 100.5
    s.append(_rec("a::2"))
    now[0] = 101.0  # exactly SYNC_EVERY_S later: not yet
    s.append(_rec("a::3"))
    assert len(synced) == 1
    now[0] = 101.01
    s.append(_rec("a::4"))
    assert len(synced) == 2
    s.close()
    assert len(synced) == 3  # close syncs
    assert store.SYNC_EVERY_S == 1.0


def test_one_writer_per_folder(tmp_path: Path) -> None:
    first = store.RunStore(tmp_path)
    first.lock()
    first.lock()  # idempotent
    assert (tmp_path / store.LOCK).read_text() == str(os.getpid())
    second = store.RunStore(tmp_path)
    with pytest.raises(store.RunLocked) as info:
        second.append(_rec("a::1"))
    assert str(info.value) == (f"{tmp_path} is being written by another runner (pid {os.getpid()}); "
                               "use another --run-id or --output-dir, or wait for it to finish")
    assert info.value.__suppress_context__
    assert not second.records_path.exists()
    first.close()
    first.close()  # idempotent
    second.lock()  # released by close
    assert (tmp_path / store.LOCK).read_text() == str(os.getpid())
    second.close()


def test_lock_holder_unknown_and_stale_pid_overwritten(tmp_path: Path) -> None:
    (tmp_path / store.LOCK).write_text("999999999999")
    a = store.RunStore(tmp_path)
    a.lock()
    assert (tmp_path / store.LOCK).read_text() == str(os.getpid())  # truncated, not appended
    a.close()
    empty = tmp_path / "e"
    b = store.RunStore(empty)
    b.lock()
    os.ftruncate(b._lock_fd, 0)  # type: ignore[arg-type]
    with pytest.raises(store.RunLocked, match=r"\(pid \?\)"):
        store.RunStore(empty).lock()
    b.close()


def test_lock_file_unopenable_is_a_write_error(tmp_path: Path) -> None:
    (tmp_path / store.LOCK).mkdir()
    with pytest.raises(_io.WriteError) as info:
        store.RunStore(tmp_path).lock()
    assert str(info.value).startswith(f"cannot write {tmp_path / store.LOCK}: ") and info.value.errno == errno.EISDIR


def test_header_and_results_round_trip(tmp_path: Path) -> None:
    run = make_run("r1", {"a.py": [1.0, 2.0]})
    s = store.RunStore(tmp_path)
    s.save_header(run)
    header = s.load_header()
    assert header.tests == [] and header.run_id == "r1" and header.options == run.options
    s.save_results(run)
    assert store.load_results(tmp_path) == run
    assert store.load_results(tmp_path / store.RESULTS) == run
    assert json.loads((tmp_path / store.RESULTS).read_text())["tests"][1]["duration_s"] == 2.0
    assert (tmp_path / store.RESULTS).read_text().startswith('{\n "schema_version"')  # indent=1
    assert (tmp_path / store.HEADER).read_text().startswith('{\n "schema_version"')
    with pytest.raises(store.RunLocked):
        store.RunStore(tmp_path).save_results(run)  # the header write took the lock
    s.close()


def test_check_version_sentences(tmp_path: Path) -> None:
    p = tmp_path / "results.json"
    store.check_version(f'{{"schema_version": {SCHEMA_VERSION}}}', p)
    store.check_version("{}", p)
    store.check_version('{"schema_version": "9"}', p)
    with pytest.raises(store.ResultsError, match=r"not a results file"):
        store.check_version("{nope", p)
    with pytest.raises(store.ResultsError, match=r"not a results file"):
        store.check_version("[1]", p)
    with pytest.raises(store.ResultsError) as info:
        store.check_version(f'{{"schema_version": {SCHEMA_VERSION + 1}}}', p)
    assert str(info.value) == (f"{p} was written with results schema version {SCHEMA_VERSION + 1}, newer than this "
                               f"release's {SCHEMA_VERSION}: read it with a newer ipfs-accelerate")
    assert str(store.RunLocked("one line")) == "one line"


def test_load_header_refuses_newer_schema(tmp_path: Path) -> None:
    (tmp_path / store.HEADER).write_text(f'{{"schema_version": {SCHEMA_VERSION + 5}}}', encoding="utf-8")
    with pytest.raises(store.ResultsError, match="newer than this release") as info:
        store.RunStore(tmp_path).load_header()
    assert str(info.value).startswith(f"{tmp_path / store.HEADER} was written")
    (tmp_path / store.RESULTS).write_text(f'{{"schema_version": {SCHEMA_VERSION + 5}}}', encoding="utf-8")
    with pytest.raises(store.ResultsError, match="newer than this release") as info:
        store.load_results(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / store.RESULTS} was written")


def test_errors_without_errno_say_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_errno(*args: object, **kw: object) -> None:
        raise OSError("no errno")

    r = store.RunStore(tmp_path / "r")
    r.lock()
    with monkeypatch.context() as m:
        m.setattr(store.os, "open", no_errno)
        with pytest.raises(_io.WriteError) as info:
            r.append(_rec("a::1"))  # the records file cannot be opened
    assert info.value.errno == 0
    r.close()
    s = store.RunStore(tmp_path / "a")
    monkeypatch.setattr(_io, "_write", no_errno)
    with pytest.raises(_io.WriteError) as info:
        s.append(_rec("a::1"))
    assert info.value.errno == 0
    s.close()
    monkeypatch.setattr(store.os, "open", no_errno)
    with pytest.raises(_io.WriteError) as info:
        store.RunStore(tmp_path / "b").lock()
    assert info.value.errno == 0
    monkeypatch.setattr(Path, "mkdir", no_errno)
    with pytest.raises(_io.WriteError) as info:
        store.RunStore(tmp_path / "c")
    assert info.value.errno == 0


def test_first_append_syncs_even_early_in_the_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(store.time, "monotonic", lambda: 1.5)
    monkeypatch.setattr(store.os, "fsync", synced.append)
    s = store.RunStore(tmp_path)
    s.append(_rec("a::1"))
    assert len(synced) == 1
    s.close()


def test_files_are_created_0644(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        s = store.RunStore(tmp_path)
        s.append(_rec("a::1"))
        assert stat.S_IMODE(s.records_path.stat().st_mode) == 0o644
        assert stat.S_IMODE((tmp_path / store.LOCK).stat().st_mode) == 0o644
        s.close()
    finally:
        os.umask(old)


def test_append_after_close_reopens(tmp_path: Path) -> None:
    s = store.RunStore(tmp_path)
    s.append(_rec("a::1"))
    s.close()
    s.append(_rec("a::2"))
    s.close()
    assert [r.nodeid for r in s.load_records()] == ["a::1", "a::2"]


def test_blank_line_in_the_middle_does_not_stop_reading(tmp_path: Path) -> None:
    s = store.RunStore(tmp_path)
    s.records_path.write_text(_rec("a::1").model_dump_json() + "\n\n" + _rec("a::2").model_dump_json() + "\n")
    assert [r.nodeid for r in s.load_records()] == ["a::1", "a::2"]


def test_lock_holder_is_read_as_at_most_32_bytes_of_text(tmp_path: Path) -> None:
    b = store.RunStore(tmp_path)
    b.lock()
    os.pwrite(b._lock_fd, b"\xff" + b"7" * 39, 0)  # type: ignore[arg-type]
    with pytest.raises(store.RunLocked) as info:
        store.RunStore(tmp_path).lock()
    assert f"(pid \ufffd{'7' * 31})" in str(info.value)
    b.close()
