"""Run-level records: one `TestRecord` per finished pytest test, one `RunResult` per run.

`results.jsonl` (append-only, one TestRecord per line, written as each test finishes) is the
source of truth for `--resume`; `results.json` (a RunResult, rewritten atomically) is what reports
and other tools read. Both validate against these models.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import Field

from .plain import FAILING, RAN, Selection
from .schema import SCHEMA_VERSION, CaseResult, Record, Status
from .status import DISPLAY

Kind = Literal["model", "api", "other"]
RunState = Literal["running", "interrupted", "complete"]


class TestFacets(Record):
    """What a test is, not how it went: the collector describes each item with these fields (as
    plain JSON), the runner plans on them and every TestRecord begins with them — one declaration.
    `unit`: tests sharing one (file, hardware, impl) share a memoised case in a worker."""

    __test__ = False  # not a pytest class despite the name

    nodeid: str
    file: str
    kind: Kind = "other"
    unit: str = ""
    model: str | None = None
    api: str | None = None
    category: str | None = None
    task: str | None = None
    hardware: str | None = None
    impl: str = "mock"


class TestRecord(TestFacets):
    """One pytest test (node id) after setup, call and teardown — or after its worker died."""

    __test__ = False  # not a pytest class despite the name

    status: Status
    reason: str = ""
    duration_s: float = 0.0
    output: str = ""
    case: CaseResult | None = None
    worker: str = ""
    finished_at: float = 0.0


class Environment(Record):
    python: str
    platform: str
    machine: str
    hostname: str
    cpu_count: int
    usable_cpus: int
    memory_gb: float
    cwd: str


class Options(Record):
    """How it ran (does not change what runs)."""

    workers: int
    timeout_s: float
    max_memory_mb: float
    recycle_after: int
    threads_per_worker: int = 1
    warm_idle_s: float = 0.0  # >0: workers were forks of a warm server kept that long when idle
    memory_cap_off: str = ""  # why max_memory_mb was not enforced ("" = it was); never a silent 0 MB reading
    argv: list[str] = Field(default_factory=list)


class WorkerStat(Record):
    name: str
    pid: int
    startup_s: float | None = None
    import_s: float | None = None
    collect_s: float | None = None
    forked: bool = False  # from the warm server (imports inherited), not a fresh interpreter
    spare: bool = False  # a fork that had collected before the run asked for it (warm server)
    batches: int = 0
    tests: int = 0
    end: str = ""  # "recycled", "stopped", "crashed", "timeout", "memory", "killed"


class BatchStat(Record):
    """One dispatched file batch: wall time seen by the runner vs time inside its tests; the
    difference is the runner's fixed cost (dispatch, pytest protocol, result messages)."""

    file: str
    worker: str
    tests: int
    units: int
    wall_s: float
    tests_s: float
    cpu_s: float | None = None  # the worker's CPU time (user + sys) for the batch: wall much above it = CPU taken by others
    page_faults: int | None = None  # minor faults in the batch (forked workers copy inherited pages on first write)


class RunResult(Record):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    state: RunState = "running"
    started_at: str
    finished_at: str | None = None
    wall_s: float = 0.0
    environment: Environment
    versions: dict[str, str] = Field(default_factory=dict)
    hardware: dict = Field(default_factory=dict)
    selection: Selection
    options: Options
    selected: int = 0
    summary: dict[str, int] = Field(default_factory=dict)
    not_run: int = 0
    workers: list[WorkerStat] = Field(default_factory=list)
    batches: list[BatchStat] = Field(default_factory=list)
    tests: list[TestRecord] = Field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(t.status for t in self.tests)


def summarize(tests: list[TestRecord]) -> dict[str, int]:
    counts = Counter(t.status for t in tests)
    return {s: counts.get(s, 0) for s in DISPLAY}


def exit_code(tests: list[TestRecord], selected: int) -> int:
    """0 all passed (skips/xfails allowed), 1 any failure, 3 nothing ran (zero selected or all skipped)."""
    if any(t.status in FAILING for t in tests):
        return 1
    if selected == 0 or not any(t.status in RAN for t in tests):
        return 3
    return 0


def build_validators() -> None:
    """Build every result model's validator now (the runner calls this while its workers start).
    Lives here, not in schema.py, because this module defines the rest of the models: schema
    importing run back would be an import cycle."""
    todo = list(Record.__subclasses__())
    while todo:
        cls = todo.pop()
        cls.model_rebuild()
        todo += cls.__subclasses__()
