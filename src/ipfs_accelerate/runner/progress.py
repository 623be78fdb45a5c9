"""Progress output: a rich bar with counts and ETA on a terminal, plain lines otherwise (CI logs)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, TextIO

from ..results.plain import FAILING
from ..results.status import DISPLAY, ICON  # seam(history-2): one vocabulary, one icon map

if TYPE_CHECKING:
    from ..results.run import TestRecord


class Progress:
    """Plain: one line per finished file batch (every test with --verbose), failures always."""

    def __init__(self, total: int, verbose: bool = False, stream: TextIO | None = None) -> None:
        self.total = total
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.counts: Counter[str] = Counter()
        self.done = 0
        self.start = time.monotonic()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def log(self, text: str) -> None:
        if self.verbose:
            self._line(f"  · {text}")

    def note(self, text: str) -> None:
        self._line(text)

    def _tally(self) -> str:
        return " ".join(f"{self.counts[s]} {s}" for s in DISPLAY if self.counts[s])

    def test_done(self, rec: TestRecord) -> None:
        self.done += 1
        self.counts[rec.status] += 1
        width = len(str(self.total))
        if self.verbose or rec.status in FAILING:
            reason = f" — {rec.reason.splitlines()[0][:160]}" if rec.reason and rec.status != "passed" else ""
            self._line(f"[{self.done:>{width}}/{self.total}] {rec.status.upper():8} {rec.nodeid} ({rec.duration_s:.2f} s){reason}")

    def batch_done(self, file: str, n: int) -> None:
        if not self.verbose:
            width = len(str(self.total))
            self._line(f"[{self.done:>{width}}/{self.total}] {file}: {self._tally()} ({time.monotonic() - self.start:.0f} s)")


class RichProgress(Progress):
    """A live bar: done/total, per-status counts, elapsed and ETA; failures printed above it."""

    def __init__(self, total: int, verbose: bool = False, stream: TextIO | None = None) -> None:
        super().__init__(total, verbose, stream)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(file=self.stream)
        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[tally]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False,
        )
        self.task = self.bar.add_task("tests", total=total, tally="")
        self.closed = False
        self.bar.start()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bar.stop()

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def _tally(self) -> str:
        return "  ".join(f"{ICON[s]} {self.counts[s]}" for s in DISPLAY if self.counts[s])

    def test_done(self, rec: TestRecord) -> None:
        super().test_done(rec)
        self.bar.update(self.task, completed=self.done, tally=self._tally())

    def batch_done(self, file: str, n: int) -> None:
        self.bar.update(self.task, description=file.rsplit("/", 1)[-1][:40])


def make(total: int, verbose: bool, plain: bool | None = None, stream: TextIO | None = None) -> Progress:
    stream = stream or sys.stdout
    tty = stream.isatty() if plain is None else not plain
    return (RichProgress if tty else Progress)(total, verbose, stream)
