"""The one atomic write: every file the framework rewrites goes through `write_atomic`.

Temp file in the same folder, fsync, `os.replace`: a reader (or a killed writer) sees the old
file or the new one, never half of one. On any failure the temp file is removed and a
`WriteError` names the path and the cause in one line, so a full disk or a read-only
`--output-dir` stops the run with a sentence instead of a traceback, and the previous version
of the file stays valid. Tests inject faults by replacing `_write` (the one write seam).
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


class WriteError(OSError):
    """A results file could not be written; the message is one line fit for the user."""

    def __str__(self) -> str:
        return str(self.strerror)


def _write(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (the seam tests replace to inject ENOSPC)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


_HINT = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EACCES: "permission denied",
         errno.EROFS: "read-only file system", errno.EPERM: "permission denied"}


def describe(exc: OSError, path: Path) -> str:
    """One line: what could not be written, and why in words."""
    why = _HINT.get(exc.errno or 0) or exc.strerror or str(exc)
    return f"cannot write {path}: {why} ({errno.errorcode.get(exc.errno or 0, 'error')}); earlier files are unchanged"


def write_atomic(path: Path, text: str | bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `text` all at once; raise `WriteError` (one line) if that fails."""
    path = Path(path)
    data = text.encode("utf-8") if isinstance(text, str) else text
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            _write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(exc.errno or 0, describe(exc, path)) from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
