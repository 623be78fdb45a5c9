"""The one status vocabulary: every test outcome with its severity order, icon and flags.

Reports, progress lines, JUnit, the history store and the exit code all read this enum, so a
new status (or an icon change) is one edit here. Stdlib only: the runner imports it before
pydantic. Members are `str`s, so `rec.status == "passed"` and JSON keep working unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Outcome of one test. Declaration order is severity order: worst first (a cell shows the
    worst of its tests; an unexpected pass outranks an expected failure; skipped is last)."""

    CRASHED = "crashed"
    TIMEOUT = "timeout"
    ERROR = "error"
    FAILED = "failed"
    XPASSED = "xpassed"
    XFAILED = "xfailed"
    PASSED = "passed"
    SKIPPED = "skipped"

    @property
    def rank(self) -> int:
        """0 = worst; use as a sort key."""
        return _ORDER[self]

    @property
    def icon(self) -> str:
        return ICON[self.value]

    @property
    def failing(self) -> bool:
        """Makes the run exit 1 (an unexpected pass means the registry says something false)."""
        return self in _FAILING

    @property
    def ran(self) -> bool:
        """The test executed (everything but skipped)."""
        return self is not Status.SKIPPED

    @property
    def junit(self) -> str:
        """JUnit element: failure, error, skipped, or '' for a pass."""
        return _JUNIT[self]


_ORDER = {s: i for i, s in enumerate(Status)}
_FAILING = frozenset({Status.CRASHED, Status.TIMEOUT, Status.ERROR, Status.FAILED, Status.XPASSED})
_JUNIT = {Status.CRASHED: "error", Status.TIMEOUT: "error", Status.ERROR: "error", Status.FAILED: "failure",
          Status.XPASSED: "failure", Status.XFAILED: "skipped", Status.SKIPPED: "skipped", Status.PASSED: ""}

NOT_RUN = "not-run"
"""A cell or case with no recorded test (not a test outcome, so not a member)."""

ICON: dict[str, str] = {"passed": "✅", "failed": "❌", "error": "❌", "crashed": "❌", "timeout": "❌", "xpassed": "❌",
                        "skipped": "⏭", "xfailed": "🔶", NOT_RUN: "–"}
"""Icon per status (and not-run). Every failing status shares ❌ so a matrix reads at a glance;
the status word next to it says which."""

SEVERITY: tuple[str, ...] = tuple(s.value for s in Status)
"""Status names worst first."""

DISPLAY: tuple[str, ...] = ("passed", "failed", "error", "crashed", "timeout", "xpassed", "xfailed", "skipped")
"""Order for summaries and tallies: the good news, then the bad, then what did not count."""

FAILING: frozenset[str] = frozenset(s.value for s in _FAILING)
RAN: frozenset[str] = frozenset(s.value for s in Status if s.ran)


def rank(status: str) -> int:
    """Severity rank of a status name; unknown names rank worst (-1) so they are never hidden."""
    try:
        return Status(status).rank
    except ValueError:
        return -1
