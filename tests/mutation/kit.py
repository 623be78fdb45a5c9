"""A valid RunResult for the mutation tests (real schema objects, no pytest runs)."""

from __future__ import annotations

from ipfs_accelerate.results.plain import Selection
from ipfs_accelerate.results.run import Environment, Options, RunResult, TestRecord


def make_run(run_id: str, durations: dict[str, list[float]] | None = None) -> RunResult:
    tests = [TestRecord(nodeid=f"{f}::t{i}", file=f, status="passed", duration_s=d)
             for f, ds in (durations or {}).items() for i, d in enumerate(ds)]
    return RunResult(
        run_id=run_id, started_at="2026-12-03T00:00:00+00:00", state="complete",
        environment=Environment(python="3.11", platform="Linux", machine="x86_64", hostname="h", cpu_count=2,
                                usable_cpus=2, memory_gb=24, cwd="."),
        selection=Selection(), options=Options(workers=1, timeout_s=60, max_memory_mb=0, recycle_after=0), tests=tests,
    )
