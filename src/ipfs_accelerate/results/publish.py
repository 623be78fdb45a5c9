"""What a run does with its results after each flush, beside results.json/report.md/junit.xml:
record them in the history database, compare the final state with `--baseline`, and write
report.html. One call from the runner (`publish`), so the runner needs no knowledge of either.

History problems never fail a run's tests: they are reported once as a note (the results files
are the source of truth); a baseline that cannot be resolved is a usage error at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import history as hist
from ._io import write_atomic
from .report_html import write_html

if TYPE_CHECKING:
    from .compare import Comparison
    from .run import RunResult


@dataclass
class Published:
    html: Path | None = None
    history: Path | None = None
    comparison: Comparison | None = None
    failed_on: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """For the runner's summary: paths, then what the comparison found, then notes."""
        out = []
        if self.html:
            out.append(f"html:    {self.html}")
        if self.history:
            out.append(f"history: {self.history}")
        if self.comparison is not None:
            from .history_cli import summary_lines

            out.append(summary_lines(self.comparison))
        if self.failed_on:
            out.append(f"failing on {', '.join(self.failed_on)} (--fail-on)")
        return out + self.notes


_warned: set[str] = set()


def publish(run: RunResult, run_dir: Path, *, final: bool, opts: Any) -> Published:
    """History upsert + report.html on every flush; on the final flush also the comparison."""
    out = Published()
    db = getattr(opts, "history", None) or hist.default_path(getattr(opts, "output_dir", run_dir.parent))
    try:
        hist.record(Path(db), run, results_dir=run_dir, cache=getattr(run, "cache", None) or {})
        out.history = Path(db)
    except (hist.HistoryError, OSError) as exc:
        if str(db) not in _warned:
            _warned.add(str(db))
            out.notes.append(f"note: run not recorded in history: {exc}")
    baseline = getattr(opts, "baseline", None)
    if final and baseline:
        from . import compare, history_cli

        try:
            kinds = history_cli.fail_on_kinds(getattr(opts, "fail_on", "") or "")
            base_id, base = history_cli.load_side(Path(db), baseline if baseline != "previous" else "",
                                                  before=run.run_id if baseline == "previous" else None)
            out.comparison = compare.compare(base_id, base, run.run_id, hist.rows_from_run(run))
            out.failed_on = out.comparison.failing(kinds)
            md_path = run_dir / "report.md"
            if md_path.exists():
                section = history_cli.render_markdown(out.comparison)
                write_atomic(md_path, md_path.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + section)
        except hist.HistoryError as exc:
            out.notes.append(f"error: --baseline {baseline}: {exc}")
            out.failed_on = ["baseline"]
    out.html = write_html(run, run_dir, out.comparison)
    return out
