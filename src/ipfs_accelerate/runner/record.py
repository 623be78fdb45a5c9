"""Per-test bookkeeping of one run: each finished test becomes a fsynced record line, the progress
bar moves, and results.json / report.md / junit.xml are rewritten atomically (at most every
`FLUSH_EVERY_S` while running, and once at the end). Any executor (the local pool, Ray) feeds it
the same `TestDone` messages."""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import progress as progress_mod
from .plan import total_memory_mb, usable_cpus
from .protocol import TestDone

if TYPE_CHECKING:  # pydantic (~0.2 s to import) loads only once the workers are launched
    from ..results.run import Environment, RunResult, TestFacets, TestRecord
    from ..results.store import RunStore

VERSION_PACKAGES = ("ipfs-accelerate", "torch", "transformers", "openvino", "tokenizers", "numpy", "pytest", "pydantic", "httpx", "rich")
FLUSH_EVERY_S = 5.0


def environment() -> Environment:
    from ..results.run import Environment

    return Environment(
        python=sys.version.split()[0],
        platform=platform.platform(),
        machine=platform.machine(),
        hostname=socket.gethostname(),
        cpu_count=os.cpu_count() or 1,
        usable_cpus=usable_cpus(),
        memory_gb=round(total_memory_mb() / 1024, 1),
        cwd=os.getcwd(),
    )


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in VERSION_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def problem_record(p: dict[str, Any], test_dir: Path) -> TestRecord:
    from ..results.run import TestRecord

    nodeid = p["nodeid"]
    file = nodeid.split("::", 1)[0]
    kind = "model" if file.startswith("skills/") else "api" if file.startswith("apis/") else "other"
    return TestRecord(nodeid=nodeid, file=file, kind=kind, unit=file, status=p["status"], reason=p.get("reason", ""),
                      output=p.get("output", ""), finished_at=time.time())



class Recorder:
    """The records of one run and the files derived from them."""

    def __init__(self, store: RunStore, header: RunResult, by_id: dict[str, TestFacets], out: TextIO, report: Path | None,
                 hardware: Callable[[], dict[str, Any]] = dict, clock: Callable[[], float] = time.monotonic,
                 opts: Any = None) -> None:
        self.opts = opts  # seam(history): --history / --baseline / --fail-on for results.publish
        self.published: Any = None
        self.store = store
        self.header = header
        self.by_id = by_id
        self.out = out
        self.report = report
        self.hardware = hardware  # what the executor has learnt of the hardware so far
        self.clock = clock
        self.records: dict[str, TestRecord] = {r.nodeid: r for r in store.load_records()}
        self.progress: progress_mod.Progress = progress_mod.Progress(0, False, out)
        self._last_flush = 0.0

    def add_problem(self, rec: TestRecord) -> None:
        """A collection problem (crashed import, missing file) recorded once, also on --resume."""
        if rec.nodeid not in self.records:
            self.store.append(rec)
            self.records[rec.nodeid] = rec

    def on_test(self, msg: TestDone, worker: str) -> None:
        from ..results.run import TestFacets, TestRecord

        nodeid = msg.nodeid
        file = nodeid.split("::", 1)[0]
        it = self.by_id.get(nodeid) or TestFacets(nodeid=nodeid, file=file, unit=file)
        rec = TestRecord(
            **it.model_dump(), status=msg.status, reason=msg.reason,
            duration_s=float(msg.duration_s or 0.0), output=msg.output, case=msg.case,
            worker=worker, finished_at=time.time(),
        )
        self.store.append(rec)
        self.records[nodeid] = rec
        self.progress.test_done(rec)
        if self.clock() - self._last_flush > FLUSH_EVERY_S:
            self.flush("running")

    def flush(self, state: str) -> RunResult:
        """Rewrite results.json, report.md and junit.xml atomically from what is recorded now."""
        from ..results import junit, report_md
        from ..results.run import RunResult, summarize
        from ..results.store import JUNIT, REPORT, write_atomic

        self._last_flush = self.clock()
        tests = list(self.records.values())
        run = self.header.model_copy(update={"tests": tests, "state": state, "summary": summarize(tests),
                                             "not_run": max(0, self.header.selected - len(tests))})
        if state != "running":
            run.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        else:
            run.hardware = self.hardware() or run.hardware
        run = RunResult.model_validate(run.model_dump())  # schema check before anything is written
        self.store.save_results(run)
        md = report_md.render(run)
        write_atomic(self.store.dir / REPORT, md)
        write_atomic(self.store.dir / JUNIT, junit.render(run))
        if self.report is not None:
            write_atomic(self.report, md)
        if state != "running":
            self.store.save_header(run)
        # seam(history): history DB, --baseline compare, report.html
        from ..results.publish import publish

        self.published = publish(run, self.store.dir, final=state != "running", opts=self.opts)
        return run

    def print_summary(self, run: RunResult) -> None:
        s = run.summary
        parts = [f"{n} {k}" for k, n in s.items() if n]
        print(f"\n{len(run.tests)} tests: {', '.join(parts) or 'none'}"
              + (f"; {run.not_run} not run" if run.not_run else "") + f" in {run.wall_s:.1f} s", file=self.out)
        print(f"results: {self.store.dir / 'results.json'}", file=self.out)
        print(f"report:  {self.report or self.store.dir / 'report.md'}", file=self.out)
        print(f"junit:   {self.store.dir / 'junit.xml'}", file=self.out)
        for line in self.published.lines() if self.published else []:
            print(line, file=self.out)
