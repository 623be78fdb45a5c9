"""Pure unit tests of results/status.py that kill its mutants.

The Status enum decides the exit code (failing), the JUnit element and which outcome a matrix
cell shows (rank): every table entry is pinned here, not just a sample.
"""

from __future__ import annotations

from ipfs_accelerate.results import status as st
from ipfs_accelerate.results.status import Status

WORST_FIRST = ["crashed", "timeout", "error", "failed", "xpassed", "xfailed", "passed", "skipped"]


def test_values_and_severity_order() -> None:
    assert [s.value for s in Status] == WORST_FIRST
    assert st.SEVERITY == tuple(WORST_FIRST)
    assert [s.rank for s in Status] == list(range(8))
    assert [st.rank(v) for v in WORST_FIRST] == list(range(8))
    assert st.rank("bogus") == -1 and st.rank("") == -1
    assert Status("passed") == "passed" and isinstance(Status.PASSED, str)


def test_failing_and_ran() -> None:
    failing = {"crashed", "timeout", "error", "failed", "xpassed"}
    assert {s.value for s in Status if s.failing} == failing
    assert st.FAILING == frozenset(failing)
    assert {s.value for s in Status if not s.ran} == {"skipped"}
    assert st.RAN == frozenset(WORST_FIRST) - {"skipped"}


def test_junit_elements() -> None:
    assert {s.value: s.junit for s in Status} == {
        "crashed": "error", "timeout": "error", "error": "error", "failed": "failure", "xpassed": "failure",
        "xfailed": "skipped", "skipped": "skipped", "passed": "",
    }


def test_icons_and_display() -> None:
    assert {s.value: s.icon for s in Status} == {
        "passed": "✅", "failed": "❌", "error": "❌", "crashed": "❌", "timeout": "❌", "xpassed": "❌",
        "skipped": "⏭", "xfailed": "🔶",
    }
    assert st.ICON[st.NOT_RUN] == "–" and st.NOT_RUN == "not-run"
    assert st.DISPLAY == ("passed", "failed", "error", "crashed", "timeout", "xpassed", "xfailed", "skipped")
