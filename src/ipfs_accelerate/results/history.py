"""Run history: every run, and every test in it, in one SQLite file (stdlib `sqlite3`).

Why SQLite: one file beside the results, no server, readable by any tool, and its WAL journal
gives what two concurrent runners and a SIGKILL need — each `record()` is one transaction, so a
reader sees the previous flush or the next, never half of one, and a killed writer leaves the
last committed flush. A run row is written as `running` with its pid and host; a later reader
that finds the pid gone on the same host reports it `incomplete` (it never finished).

Schema versions live in `PRAGMA user_version`; `MIGRATIONS[i]` moves version i to i+1, so an
old database is upgraded on open and a database from a newer release is refused with one line.
Per-test latency samples are stored (JSON list) so `compare` can judge statistically.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .status import FAILING

if TYPE_CHECKING:
    from .run import RunResult, TestRecord

DB_NAME = "history.sqlite"

MIGRATIONS: list[str] = [
    # 0 -> 1: runs and tests
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, state TEXT NOT NULL,
        machine_key TEXT NOT NULL, hostname TEXT NOT NULL, pid INTEGER, wall_s REAL,
        environment TEXT NOT NULL, versions TEXT NOT NULL, hardware TEXT NOT NULL,
        selection TEXT NOT NULL, options TEXT NOT NULL, summary TEXT NOT NULL, results_dir TEXT
    );
    CREATE TABLE tests (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE, nodeid TEXT NOT NULL,
        kind TEXT, model TEXT, api TEXT, category TEXT, task TEXT, hardware TEXT, impl TEXT, precision TEXT,
        status TEXT NOT NULL, reason TEXT NOT NULL, duration_s REAL,
        latency_p50_ms REAL, latency_samples TEXT, first_inference_ms REAL, peak_rss_mb REAL,
        fingerprint TEXT, expected TEXT,
        PRIMARY KEY (run_id, nodeid)
    );
    CREATE INDEX tests_by_model ON tests (model, hardware);
    CREATE INDEX runs_by_machine ON runs (machine_key, started_at);
    """,
    # 1 -> 2: cache hits per run (the cache engineer's counters, when a run reports them)
    "ALTER TABLE runs ADD COLUMN cache TEXT NOT NULL DEFAULT '{}';",
]
SCHEMA_VERSION = len(MIGRATIONS)

METRICS = ("latency_p50", "first_inference", "peak_rss", "duration")
_METRIC_COLUMN = {"latency_p50": "latency_p50_ms", "first_inference": "first_inference_ms", "peak_rss": "peak_rss_mb",
                  "duration": "duration_s"}


class HistoryError(Exception):
    """The history database cannot be used; the message is one line for the user."""


def default_path(output_dir: Path) -> Path:
    """Beside the run folders: `<output-dir>/history.sqlite`."""
    return Path(output_dir) / DB_NAME


def machine_key(env: dict[str, Any], hardware: dict[str, Any]) -> str:
    """Runs are comparable when they ran on the same machine shape: host, arch, usable CPUs, CPU
    model. Library versions are deliberately left out: an upgrade is what a comparison is for."""
    cpu = (hardware or {}).get("cpu") or {}
    parts = [env.get("hostname", ""), env.get("machine", ""), str(env.get("usable_cpus", "")), str(cpu.get("model", ""))]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """Open (creating and migrating as needed) with WAL and a busy timeout for concurrent runs."""
    path = Path(path)
    if not create and not path.exists():
        raise HistoryError(f"no history database at {path} (runs record into <output-dir>/{DB_NAME}, or --history PATH)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        con.execute("PRAGMA busy_timeout = 30000")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA foreign_keys = ON")
        _migrate(con, path)
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"history database {path}: {exc}") from exc
    except OSError as exc:
        raise HistoryError(f"history database {path}: {exc.strerror or exc}") from exc
    con.row_factory = sqlite3.Row
    return con


def _migrate(con: sqlite3.Connection, path: Path) -> None:
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise HistoryError(f"history database {path} has schema version {version}, newer than this release's "
                           f"{SCHEMA_VERSION}: upgrade ipfs-accelerate or pass another --history PATH")
    if version == SCHEMA_VERSION:
        return
    con.execute("BEGIN IMMEDIATE")  # one migrator at a time; the loser re-reads the version
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        for i in range(version, SCHEMA_VERSION):
            for stmt in (s for s in MIGRATIONS[i].split(";") if s.strip()):
                con.execute(stmt)
            con.execute(f"PRAGMA user_version = {i + 1}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _samples(case: Any) -> list[float]:
    lat = case.metrics.latency if case is not None else None
    return list(getattr(lat, "samples_ms", None) or []) if lat is not None else []


def _test_row(run_id: str, t: TestRecord) -> tuple[Any, ...]:
    c = t.case
    m = c.metrics if c is not None else None
    lat = m.latency if m is not None else None
    samples = _samples(c)
    return (run_id, t.nodeid, t.kind, t.model, t.api, t.category, t.task, t.hardware, t.impl,
            c.precision if c is not None else None, str(t.status), t.reason, t.duration_s,
            lat.p50_ms if lat else None, json.dumps(samples) if samples else None,
            m.first_inference_ms if m else None, m.peak_rss_mb if m else None,
            getattr(c, "fingerprint", None) if c is not None else None, c.expected if c is not None else None)


def record(path: Path, run: RunResult, *, results_dir: Path | None = None, cache: dict[str, Any] | None = None,
           pid: int | None = None) -> None:
    """Upsert the run and all its tests in one transaction (idempotent: call on every flush)."""
    env = run.environment.model_dump()
    state = run.state
    row = (run.run_id, run.started_at, run.finished_at, state, machine_key(env, run.hardware), env["hostname"],
           os.getpid() if pid is None else pid, run.wall_s, json.dumps(env), json.dumps(run.versions),
           json.dumps(run.hardware, default=str), json.dumps(run.selection.__dict__, default=str),
           run.options.model_dump_json(), json.dumps(run.summary), str(results_dir) if results_dir else None,
           json.dumps(cache or {}))
    with closing(connect(path)) as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("INSERT OR REPLACE INTO runs (run_id, started_at, finished_at, state, machine_key, hostname, pid, wall_s, "
                        "environment, versions, hardware, selection, options, summary, results_dir, cache) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
            con.executemany("INSERT OR REPLACE INTO tests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                            [_test_row(run.run_id, t) for t in run.tests])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_state(state: str, hostname: str, pid: int | None) -> str:
    """A `running` row whose process is gone (on this host) never finished: `incomplete`."""
    if state == "running" and hostname == socket.gethostname() and not _alive(pid):
        return "incomplete"
    return state


@dataclass
class RunRow:
    run_id: str
    started_at: str
    finished_at: str | None
    state: str
    machine_key: str
    wall_s: float
    summary: dict[str, int]
    versions: dict[str, str]
    selection: dict[str, Any]
    cache: dict[str, Any] = field(default_factory=dict)
    results_dir: str | None = None

    @property
    def failing(self) -> int:
        return sum(n for s, n in self.summary.items() if s in FAILING)


def _run_row(r: sqlite3.Row) -> RunRow:
    return RunRow(run_id=r["run_id"], started_at=r["started_at"], finished_at=r["finished_at"],
                  state=effective_state(r["state"], r["hostname"], r["pid"]), machine_key=r["machine_key"],
                  wall_s=r["wall_s"] or 0.0, summary=json.loads(r["summary"]), versions=json.loads(r["versions"]),
                  selection=json.loads(r["selection"]), cache=json.loads(r["cache"] or "{}"), results_dir=r["results_dir"])


@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(connect(path, create=False)) as con:
        yield con


def runs(path: Path, limit: int | None = None) -> list[RunRow]:
    """Runs, newest first."""
    with reading(path) as con:
        q = "SELECT * FROM runs ORDER BY started_at DESC, run_id DESC" + (" LIMIT ?" if limit else "")
        return [_run_row(r) for r in con.execute(q, (limit,) if limit else ())]


def resolve(path: Path, ref: str | None, *, before: str | None = None) -> RunRow:
    """A run by id, unique id prefix, `latest`, `previous` (the comparable run before the latest),
    or `~N` (N runs back); `before` = the latest comparable run older than that run id."""
    all_runs = runs(path)
    if not all_runs:
        raise HistoryError(f"no runs recorded in {path}")
    if before is not None:
        head = resolve(path, before)
        older = [r for r in all_runs if r.machine_key == head.machine_key and (r.started_at, r.run_id) < (head.started_at, head.run_id)
                 and r.state in ("complete", "interrupted")]
        if not older:
            raise HistoryError(f"no earlier comparable run (same machine key {head.machine_key}) before {head.run_id}")
        return older[0]
    if ref in (None, "latest"):
        return all_runs[0]
    if ref == "previous":
        return resolve(path, None, before=all_runs[0].run_id)
    if ref.startswith("~") and ref[1:].isdigit():
        n = int(ref[1:])
        if n >= len(all_runs):
            raise HistoryError(f"{ref}: only {len(all_runs)} runs recorded")
        return all_runs[n]
    hits = [r for r in all_runs if r.run_id == ref] or [r for r in all_runs if r.run_id.startswith(ref)]
    if len(hits) != 1:
        ids = ", ".join(r.run_id for r in all_runs[:5])
        raise HistoryError(f"run {ref!r} {'is ambiguous' if hits else 'not found'} in {path} (latest: {ids})")
    return hits[0]


@dataclass
class TestRow:
    nodeid: str
    status: str
    reason: str = ""
    model: str | None = None
    hardware: str | None = None
    impl: str | None = None
    category: str | None = None
    p50_ms: float | None = None
    samples: list[float] = field(default_factory=list)
    peak_rss_mb: float | None = None
    fingerprint: str | None = None
    expected: str | None = None

    __test__ = False


def tests(path: Path, run_id: str) -> dict[str, TestRow]:
    with reading(path) as con:
        rows = con.execute("SELECT * FROM tests WHERE run_id = ?", (run_id,)).fetchall()
    return {r["nodeid"]: TestRow(nodeid=r["nodeid"], status=r["status"], reason=r["reason"], model=r["model"],
                                 hardware=r["hardware"], impl=r["impl"], category=r["category"], p50_ms=r["latency_p50_ms"],
                                 samples=json.loads(r["latency_samples"]) if r["latency_samples"] else [],
                                 peak_rss_mb=r["peak_rss_mb"], fingerprint=r["fingerprint"], expected=r["expected"])
            for r in rows}


def trend(path: Path, metric: str, *, model: str | None = None, hardware: str | None = None,
          last: int = 20) -> list[tuple[str, str, str, float]]:
    """(run_id, model, hardware, value) of `metric` over the last `last` runs, oldest first."""
    if metric not in _METRIC_COLUMN:
        raise HistoryError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    col = _METRIC_COLUMN[metric]
    recent = [r.run_id for r in runs(path, limit=last)]
    if not recent:
        return []
    q = (f"SELECT t.run_id, t.model, t.hardware, t.{col} AS v FROM tests t JOIN runs r USING (run_id) "
         f"WHERE t.run_id IN ({','.join('?' * len(recent))}) AND t.{col} IS NOT NULL"
         + (" AND t.model = ?" if model else "") + (" AND t.hardware = ?" if hardware else "")
         + " ORDER BY r.started_at, t.model, t.hardware")
    args: list[Any] = [*recent, *([model] if model else []), *([hardware] if hardware else [])]
    with reading(path) as con:
        return [(r["run_id"], r["model"] or "", r["hardware"] or "", float(r["v"])) for r in con.execute(q, args)]


def rows_from_run(run: RunResult) -> dict[str, TestRow]:
    """The same rows `tests()` returns, straight from a RunResult (compare without a database)."""
    out: dict[str, TestRow] = {}
    for t in run.tests:
        r = _test_row(run.run_id, t)
        out[t.nodeid] = TestRow(nodeid=t.nodeid, status=str(t.status), reason=t.reason, model=t.model, hardware=t.hardware,
                                impl=t.impl, category=t.category, p50_ms=r[13], samples=_samples(t.case),
                                peak_rss_mb=r[16], fingerprint=r[17], expected=r[18])
    return out
