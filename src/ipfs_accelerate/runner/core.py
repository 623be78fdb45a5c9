"""One run, start to finish: plan (`plan.py`), collect, shard, resume, execute on the pool, record
(`record.py`), report.

Exit codes: 0 everything that ran passed (skips and xfails allowed); 1 a failure (failed, error,
xpassed, crashed, timeout, or a test left unrun); 2 usage error; 3 nothing selected or every
selected test skipped ("ran zero tests" is never success); 130 interrupted (the partial report is
written and `--resume` continues it).
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..generate.layout import find_test_dir
from ..results.plain import Selection
from ..results.store import RunStore, find_run, new_run_id
from . import progress as progress_mod
from .plan import (
    RunOptions,
    _compact,  # noqa: F401  (tests import it from here)
    batches,
    collect,
    preload_groups,
    pytest_args,
    selection,
    total_memory_mb,
    usable_cpus,
    worker_env,
)
from .pool import Pool, PoolConfig
from .protocol import TestDone
from .record import Recorder, environment, problem_record, versions
from .selection import UsageError, parse_shard

if TYPE_CHECKING:  # pydantic (~0.2 s to import) loads only once the workers are launched
    from ..results.run import Options, RunResult, TestFacets
    from .ray_executor import RayExecutor

EXIT_INTERRUPTED = 130
__all__ = ["EXIT_INTERRUPTED", "RunFailure", "RunOptions", "Runner"]


class RunFailure(Exception):
    """The run could not proceed (workers cannot start): exit code 1."""


class Runner:
    def __init__(self, opts: RunOptions, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.opts = opts
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.by_id: dict[str, TestFacets] = {}  # every collected test of this run, by node id
        self.progress: progress_mod.Progress = progress_mod.Progress(0, opts.verbose, self.out)
        self.pool: Pool | RayExecutor | None = None  # set once the run's executor is configured
        self.recorder: Recorder | None = None  # set once the run header is saved (something will run)

    def run(self) -> int:
        try:
            return self._run()
        except UsageError as exc:
            print(f"error: {exc}", file=self.err)
            return 2
        except RunFailure as exc:
            print(f"error: {exc}", file=self.err)
            return 1

    def _run(self) -> int:
        o = self.opts
        store: RunStore | None = None
        header: RunResult | None = None
        if o.resume:
            run_dir = find_run(o.output_dir, o.resume)
            if run_dir is None:
                raise UsageError(f"--resume: no run {o.resume!r} under {o.output_dir}/ (nothing to resume)")
            store = RunStore(run_dir)
            header = store.load_header()
            sel = header.selection
            test_dir = Path(sel.test_dir)
            print(f"resuming run {header.run_id} in {run_dir} (its recorded selection is used)", file=self.out)
        else:
            found = o.test_dir or (Path.cwd() if o.paths else find_test_dir(Path.cwd()))
            if found is None:
                raise UsageError("no skills/ or apis/ test folder in . or ./test; pass --test-dir")
            test_dir = found.resolve()
            if not test_dir.is_dir():
                raise UsageError(f"test directory {test_dir} does not exist")
            sel = selection(o, test_dir)
            if o.scale != "tiny":  # seam(scale): workers' pytest gets --scale (recorded, so --resume keeps it)
                sel.pytest_args = [*sel.pytest_args, "--scale", o.scale]
        shard = parse_shard(sel.shard)
        env = worker_env(o.threads)
        workers = o.workers or max(1, min(usable_cpus(), int(total_memory_mb() // 1536)))
        max_mem = o.max_memory_mb or max(1024.0, 0.8 * total_memory_mb() / max(workers, 1))
        env["IPFS_ACCEL_MAX_MEMORY_MB"] = f"{max_mem:.0f}"  # seam(scale): --scale full skips what would not fit
        preload = preload_groups(o, sel)
        warm = None
        started = time.monotonic()  # a warm server started now is part of this run's time
        if o.warm > 0 and o.executor == "local" and sel.files and not o.collect_only and sys.platform.startswith("linux"):
            from . import warm as warm_mod

            warm = warm_mod.connect_or_start(env, Path.cwd(), preload, o.threads, o.warm,
                                             log=lambda m: print(m, file=self.err) if o.verbose or "reused" not in m else None)
        run_dir = store.dir if store is not None else o.output_dir / (o.run_id or new_run_id())
        cfg = PoolConfig(workers=min(workers, max(len(sel.files), 1)), timeout_s=o.timeout, max_memory_mb=max_mem,
                         pytest_args=pytest_args(sel, test_dir), cwd=Path.cwd(), log_dir=run_dir / "workers", env=env,
                         preload=preload, threads=o.threads, recycle_after=o.recycle_after,
                         recycle_rss_mb=min(4096.0, 0.5 * max_mem), warm=warm)
        pool: Pool | RayExecutor
        if o.executor == "ray":
            pool = self._ray_executor(sel, test_dir, env, dataclasses.replace(cfg, workers=1))
        else:
            pool = Pool(
                cfg, on_test=self._on_test, unit_of=self._unit_of,
                log=lambda msg: self.progress.log(msg), on_batch=lambda b: self.progress.batch_done(b.file, len(b.ids)),
            )
        self.pool = pool
        old = {s: signal.signal(s, lambda *_: pool.interrupt()) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if sel.files and not o.collect_only:  # never a pytest without file arguments: it would collect the cwd
                pool.start(pool.cfg.workers)  # imports overlap collection
            from ..results.run import Options, build_validators

            build_validators()  # pydantic's import and schema builds overlap the workers' start too
            options = Options(workers=workers, timeout_s=o.timeout, max_memory_mb=max_mem, recycle_after=o.recycle_after,
                              threads_per_worker=o.threads, warm_idle_s=o.warm if warm is not None else 0.0, argv=o.argv,
                              memory_cap_off=pool.memory_cap_off)
            if pool.memory_cap_off:
                print(f"warning: {pool.memory_cap_off}", file=self.err)
            code = self._execute(pool, sel, test_dir, env, shard, store, header, options, run_dir, started)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            self.progress.close()
            pool.close()
        if code is None or self.recorder is None:
            if (run_dir / "workers").is_dir() and not (run_dir / "run.json").exists():
                shutil.rmtree(run_dir, ignore_errors=True)  # nothing ran: leave no empty run folder
        return 3 if code is None else code

    def _execute(self, pool: Pool | RayExecutor, sel: Selection, test_dir: Path, env: dict[str, str], shard: tuple[int, int] | None,
                 store: RunStore | None, header: RunResult | None, options: Options, run_dir: Path, started: float) -> int | None:
        from ..results.run import RunResult, exit_code
        from . import shard as shard_mod

        o = self.opts
        items, problems = self._collect(pool, sel, test_dir, env)
        if pool.interrupted:
            print("interrupted before any test ran", file=self.err)
            return EXIT_INTERRUPTED
        wanted = {"mock": {"mock"}, "real": {"real"}, "all": {"mock", "real"}}[sel.impl_type]
        items = [i for i in items if i.impl in wanted]  # API tests parametrised by their own fixture, too
        if shard and not o.resume:
            counts: dict[str, int] = {}
            for it in items:
                counts[it.file] = counts.get(it.file, 0) + 1
            for p in problems:
                counts.setdefault(p["nodeid"].split("::", 1)[0], 1)
            history_run = shard_mod.latest_results(o.output_dir) if o.durations_from is None else _load(o.durations_from)
            mine = set(shard_mod.pick(counts, shard_mod.durations_by_file(history_run), *shard))
            items = [i for i in items if i.file in mine]
            problems = [p for p in problems if p["nodeid"].split("::", 1)[0] in mine]
            sel = dataclasses.replace(sel, files=[f for f in sel.files if f in mine])
        by_id = {i.nodeid: i for i in items}
        self.by_id.update(by_id)
        selected = len(items) + len(problems)
        if sel.missing and not o.resume:
            shown = ", ".join(sel.missing[:8]) + (" …" if len(sel.missing) > 8 else "")
            print(f"note: {len(sel.missing)} selected names have no generated test file ({shown}); "
                  "generate them with generate_unified_test.py", file=self.err)
        if o.collect_only:
            for i in items:
                print(i.nodeid, file=self.out)
            for p in problems:
                print(f"{p['nodeid']}  [{p['status']}: {p['reason'][:120]}]", file=self.out)
            print(f"{selected} tests selected", file=self.out)
            return 0 if selected else 3
        if selected == 0:
            print("nothing selected: no test matches the filters (exit 3). Files considered: "
                  f"{len(sel.files)} under {test_dir}", file=self.err)
            return None
        if store is None:
            store = RunStore(run_dir)
            header = RunResult(run_id=run_dir.name, started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                               environment=environment(), versions=versions(), selection=sel, options=options)
        assert header is not None
        header.selected = selected
        header.options = options
        header.state = "running"
        store.save_header(header)
        rec = self.recorder = Recorder(store, header, self.by_id, self.out, o.report, hardware=lambda: pool.hardware, opts=o)
        for prob in problems:
            rec.add_problem(problem_record(prob, test_dir))
        todo = [i for i in items if i.nodeid not in rec.records]
        if o.resume:
            print(f"{len(rec.records)} of {selected} tests already recorded; running the other {len(todo)}", file=self.out)
        planned = batches(todo, by_id, o.output_dir, store.dir)
        self.progress = rec.progress = progress_mod.make(len(todo), o.verbose, o.plain, self.out)
        if not pool.interrupted:
            pool.run(planned)
        self.progress.close()  # the bar ends before the summary prints
        if pool.fatal:
            for b in pool.pending:
                for nid in b.ids:
                    if nid not in rec.records:
                        rec.on_test(TestDone(nodeid=nid, status="error", reason=f"not run: {pool.fatal.splitlines()[0]}"), "")
            print(f"error: {pool.fatal}", file=self.err)
        pool.close()
        header.wall_s += time.monotonic() - started
        header.hardware = pool.hardware or header.hardware
        header.workers = [*header.workers, *pool.stats]
        header.batches = [*header.batches, *pool.batch_stats]
        state = "interrupted" if pool.interrupted else "complete"
        final = rec.flush(state)
        store.close()
        rec.print_summary(final)
        if pool.interrupted:
            print(f"interrupted: partial report written; continue with --resume {final.run_id}", file=self.err)
            return EXIT_INTERRUPTED
        code = exit_code(final.tests, selected)
        if final.not_run and code == 0:
            code = 1
        if code == 0 and rec.published and rec.published.failed_on:  # seam(history): --fail-on
            code = 2 if rec.published.failed_on == ["baseline"] else 1
        return code

    def _unit_of(self, nodeid: str) -> str:
        return self.by_id[nodeid].unit if nodeid in self.by_id else nodeid.split("::")[0]

    def _ray_executor(self, sel: Selection, test_dir: Path, env: dict[str, str], cfg: PoolConfig) -> RayExecutor:
        """The run's pool settings go to every Ray task's one-worker Pool (workers: Ray decides)."""
        from .ray_executor import RayExecutor

        o = self.opts

        def collect_here() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            items, problems = collect(sel, test_dir, env)
            return [i.model_dump() for i in items], problems

        return RayExecutor(
            cfg, o.address,
            on_test=self._on_test, unit_of=self._unit_of,
            hardware_of=lambda nid: self.by_id[nid].hardware if nid in self.by_id else None, collect=collect_here,
            log=lambda msg: self.progress.log(msg), on_batch=lambda b: self.progress.batch_done(b.file, len(b.ids)),
        )

    def _on_test(self, msg: TestDone, worker: str) -> None:
        assert self.recorder is not None, "a test finished before the run header was saved"
        self.recorder.on_test(msg, worker)

    def _collect(self, pool: Pool | RayExecutor, sel: Selection, test_dir: Path, env: dict[str, str]) -> tuple[list[TestFacets], list[dict[str, Any]]]:
        """The first worker's collection; if every worker dies collecting (a module crashes on
        import), a collector process per file finds the culprits and the workers restart without them."""
        if not sel.files:
            return [], []
        if self.opts.collect_only:
            return collect(sel, test_dir, env)
        from ..results.run import TestFacets

        ready = pool.wait_ready()
        if ready is not None or pool.interrupted:
            return ([TestFacets(**i) for i in ready.items], list(ready.problems)) if ready else ([], [])
        items, problems = collect(sel, test_dir, env)
        bad = {p["nodeid"].split("::", 1)[0] for p in problems if p["status"] == "crashed"}
        if not bad:
            raise RunFailure(f"workers fail to start: {pool.fatal or 'see the logs in ' + str(pool.cfg.log_dir)}")
        keep = dataclasses.replace(sel, files=[f for f in sel.files if f not in bad])
        pool.restart(pytest_args(keep, test_dir), pool.cfg.workers)
        ready = pool.wait_ready()
        if ready is None:
            raise RunFailure(f"workers fail to start even without {', '.join(sorted(bad))}")
        crashed = [p for p in problems if p["status"] == "crashed"]
        return [TestFacets(**i) for i in ready.items], [*ready.problems, *crashed]


def _load(path: Path) -> RunResult | None:
    from ..results.store import load_results

    try:
        return load_results(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--durations-from {path}: {exc}") from exc
