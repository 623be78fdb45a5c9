"""Pure unit tests of results/_io.py (the one atomic write) that kill its mutants.

A results file must be the old one or the new one, never half, and a failure must be one line
naming the path and the cause; faults are injected at the `_write` seam, as the module intends.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from ipfs_accelerate.results import _io


def test_write_atomic_text_bytes_mode_and_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "r.json"
    _io.write_atomic(path, "héllo")
    assert path.read_bytes() == "héllo".encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    _io.write_atomic(path, b"\x00\x01", mode=0o600)  # folder exists: overwrite
    assert path.read_bytes() == b"\x00\x01" and stat.S_IMODE(path.stat().st_mode) == 0o600
    _io.write_atomic(str(path), "s")  # type: ignore[arg-type]
    assert path.read_text() == "s"
    assert os.listdir(path.parent) == ["r.json"]


def test_write_seam_loops_over_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks: list[bytes] = []
    real = os.write

    def short(fd: int, data: memoryview) -> int:
        chunks.append(bytes(data[:3]))
        return real(fd, data[:3])

    monkeypatch.setattr(_io.os, "write", short)
    _io.write_atomic(tmp_path / "x", b"abcdefgh")
    assert chunks == [b"abc", b"def", b"gh"]
    assert (tmp_path / "x").read_bytes() == b"abcdefgh"


def test_temp_file_is_hidden_beside_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = os.replace

    def spy(src: str, dst: Path) -> None:
        seen.append(src)
        real(src, dst)

    monkeypatch.setattr(_io.os, "replace", spy)
    _io.write_atomic(tmp_path / "r.json", "x")
    (src,) = seen
    assert Path(src).parent == tmp_path and Path(src).name.startswith(".r.json.") and src.endswith(".tmp")


@pytest.mark.parametrize(("code", "words"), [
    (errno.ENOSPC, "disk full"), (errno.EDQUOT, "disk quota exceeded"), (errno.EACCES, "permission denied"),
    (errno.EROFS, "read-only file system"), (errno.EPERM, "permission denied"),
])
def test_injected_failure_keeps_old_file_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, words: str) -> None:
    path = tmp_path / "r.json"
    _io.write_atomic(path, "old")

    def fail(fd: int, data: bytes) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(_io, "_write", fail)
    with pytest.raises(_io.WriteError) as info:
        _io.write_atomic(path, "new")
    name = errno.errorcode[code]
    assert str(info.value) == f"cannot write {path}: {words} ({name}); earlier files are unchanged"
    assert info.value.errno == code and isinstance(info.value.__cause__, OSError)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["r.json"]


def test_describe_unknown_errno_and_no_errno() -> None:
    assert _io.describe(OSError(errno.EIO, "I/O error"), Path("p")) == "cannot write p: I/O error (EIO); earlier files are unchanged"
    assert _io.describe(OSError("plain"), Path("p")) == "cannot write p: plain (error); earlier files are unchanged"


def test_failure_without_errno_and_write_error_passthrough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def plain(fd: int, data: bytes) -> None:
        raise OSError("boom")

    monkeypatch.setattr(_io, "_write", plain)
    with pytest.raises(_io.WriteError) as info:
        _io.write_atomic(tmp_path / "r", "x")
    assert info.value.errno == 0 and str(info.value) == f"cannot write {tmp_path / 'r'}: boom (error); earlier files are unchanged"
    original = _io.WriteError(errno.ENOSPC, "already one line")

    def raises_write_error(fd: int, data: bytes) -> None:
        raise original

    monkeypatch.setattr(_io, "_write", raises_write_error)
    with pytest.raises(_io.WriteError) as again:
        _io.write_atomic(tmp_path / "r", "x")
    assert again.value is original and str(again.value) == "already one line"
    assert os.listdir(tmp_path) == []


def test_unwritable_folder_is_a_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(_io.WriteError) as info:
        _io.write_atomic(blocker / "sub" / "r.json", "x")
    assert str(info.value).startswith(f"cannot write {blocker / 'sub' / 'r.json'}: ")
