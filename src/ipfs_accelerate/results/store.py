"""Run directory on disk: `test_results/<run-id>/`.

* `results.jsonl` — one TestRecord per line, appended with a single `write` as each test
  finishes, so a killed runner loses at most the test in flight (written data survives the
  process); a torn last line is ignored. `fsync` at most every SYNC_EVERY_S and on close bounds
  what an OS crash can lose, without a ~4 ms disk wait per test in the dispatch loop.
* `results.json`, `report.md`, `junit.xml` — rewritten whole via temp file + `os.replace`, so a
  reader never sees half a file (Ctrl-C or kill leaves the last complete version).
* `run.json` — the RunResult header (selection, options, environment) that `--resume` reuses.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydantic (~0.2 s) loads at first use: the runner imports this before it starts workers
    from .run import RunResult, TestRecord

RECORDS = "results.jsonl"
RESULTS = "results.json"
HEADER = "run.json"
REPORT = "report.md"
JUNIT = "junit.xml"


def new_run_id(now: float | None = None) -> str:
    """Sortable by start time, to the millisecond (two runs in one second must still sort in
    order: "the latest run" feeds --resume and the duration history): `20261127-044112-345-3fa9`."""
    t = time.time() if now is None else now
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(t))
    return f"{stamp}-{int(t * 1000) % 1000:03d}-{secrets.token_hex(2)}"


from . import _io  # noqa: E402
from ._io import WriteError, describe, write_atomic  # noqa: E402,F401  (the one atomic write; re-exported for the runner)


class RunLocked(OSError):
    """Another live process is writing this run folder."""

    def __str__(self) -> str:
        return str(self.args[0])


def run_dirs(output_dir: Path) -> list[Path]:
    """Run folders under `output_dir`, oldest first (run ids sort by start time)."""
    if not output_dir.is_dir():
        return []
    return sorted(p for p in output_dir.iterdir() if p.is_dir() and (p / HEADER).exists())


def find_run(output_dir: Path, run_id: str | None) -> Path | None:
    """`run_id` None or 'latest' -> the newest run; else that run's folder (or a path to one)."""
    if run_id and run_id != "latest":
        for cand in (Path(run_id), output_dir / run_id):
            if (cand / HEADER).exists():
                return cand
        return None
    dirs = run_dirs(output_dir)
    return dirs[-1] if dirs else None


SYNC_EVERY_S = 1.0


LOCK = ".writer.lock"


class RunStore:
    """One run folder. The first write takes an exclusive `flock` on `.writer.lock`, so a second
    runner pointed at the same folder (same `--run-id`, or `--resume` of a live run) stops with one
    line instead of interleaving records; readers never lock. The lock dies with the process."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(exc.errno or 0, describe(exc, self.dir)) from exc
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._synced = 0.0

    def lock(self) -> None:
        """Claim the folder for this process (idempotent); `RunLocked` if another process has it."""
        if self._lock_fd is not None:
            return
        import fcntl

        path = self.dir / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise WriteError(exc.errno or 0, describe(exc, path)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunLocked(f"{self.dir} is being written by another runner (pid {holder}); "
                            "use another --run-id or --output-dir, or wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    @property
    def records_path(self) -> Path:
        return self.dir / RECORDS

    def append(self, record: TestRecord) -> None:
        """One line per record, in one write call: safe to kill at any moment."""
        if self._fd is None:
            self.lock()
            try:
                self._fd = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as exc:
                raise WriteError(exc.errno or 0, describe(exc, self.records_path)) from exc
        data = (record.model_dump_json() + "\n").encode("utf-8")
        try:
            _io._write(self._fd, data)
        except OSError as exc:
            raise WriteError(exc.errno or 0, describe(exc, self.records_path)) from exc
        if time.monotonic() - self._synced > SYNC_EVERY_S:
            os.fsync(self._fd)
            self._synced = time.monotonic()

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def load_records(self) -> list[TestRecord]:
        """Records in file order, last one per node id wins; unparsable (torn) lines are skipped."""
        from pydantic import ValidationError

        from .run import TestRecord

        out: dict[str, TestRecord] = {}
        if not self.records_path.exists():
            return []
        with open(self.records_path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = TestRecord.model_validate_json(line)
                except ValidationError:
                    continue
                out[rec.nodeid] = rec
        return list(out.values())

    def save_header(self, run: RunResult) -> None:
        header = run.model_copy(update={"tests": []})
        self.lock()
        write_atomic(self.dir / HEADER, header.model_dump_json(indent=1))

    def load_header(self) -> RunResult:
        from .run import RunResult

        data = (self.dir / HEADER).read_text(encoding="utf-8")
        check_version(data, self.dir / HEADER)
        return RunResult.model_validate_json(data)

    def save_results(self, run: RunResult) -> None:
        self.lock()
        write_atomic(self.dir / RESULTS, run.model_dump_json(indent=1))


class ResultsError(ValueError):
    """A results file cannot be read; the message is one line for the user."""


def check_version(data: bytes | str, path: Path) -> None:
    """Refuse a file from a newer schema with a sentence, before pydantic reports field errors."""
    import json

    from .schema import SCHEMA_VERSION

    try:
        version = json.loads(data).get("schema_version", 1)
    except (ValueError, AttributeError) as exc:
        raise ResultsError(f"{path}: not a results file ({exc})") from exc
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise ResultsError(f"{path} was written with results schema version {version}, newer than this release's "
                           f"{SCHEMA_VERSION}: read it with a newer ipfs-accelerate")


def load_results(path: Path) -> RunResult:
    """Read and validate a results.json (or a run folder containing one)."""
    from .run import RunResult

    if path.is_dir():
        path = path / RESULTS
    data = path.read_text(encoding="utf-8")
    check_version(data, path)
    return RunResult.model_validate_json(data)
