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


from ._io import WriteError, write_atomic  # noqa: E402,F401  (the one atomic write; re-exported for the runner)


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


class RunStore:
    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._synced = 0.0

    @property
    def records_path(self) -> Path:
        return self.dir / RECORDS

    def append(self, record: TestRecord) -> None:
        """One line per record, in one write call: safe to kill at any moment."""
        if self._fd is None:
            self._fd = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        data = (record.model_dump_json() + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        if time.monotonic() - self._synced > SYNC_EVERY_S:
            os.fsync(self._fd)
            self._synced = time.monotonic()

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

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
        write_atomic(self.dir / HEADER, header.model_dump_json(indent=1))

    def load_header(self) -> RunResult:
        from .run import RunResult

        return RunResult.model_validate_json((self.dir / HEADER).read_text(encoding="utf-8"))

    def save_results(self, run: RunResult) -> None:
        write_atomic(self.dir / RESULTS, run.model_dump_json(indent=1))


def load_results(path: Path) -> RunResult:
    """Read and validate a results.json (or a run folder containing one)."""
    from .run import RunResult

    if path.is_dir():
        path = path / RESULTS
    return RunResult.model_validate_json(path.read_text(encoding="utf-8"))
