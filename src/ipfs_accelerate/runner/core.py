"""One run, start to finish: select, collect, shard, resume, execute on the pool, report.

Exit codes: 0 everything that ran passed (skips and xfails allowed); 1 a failure (failed, error,
xpassed, crashed, timeout, or a test left unrun); 2 usage error; 3 nothing selected or every
selected test skipped ("ran zero tests" is never success); 130 interrupted (the partial report is
written and `--resume` continues it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..results.plain import Selection
from ..results.store import RunStore, find_run, new_run_id
from . import progress as progress_mod
from .collect import Item
from .pool import Batch, Pool, PoolConfig
from .selection import UsageError, find_test_dir, parse_shard, resolve

if TYPE_CHECKING:  # pydantic (~0.2 s to import) loads only once the workers are launched
    from ..results.run import Environment, Options, RunResult, TestRecord

EXIT_INTERRUPTED = 130
VERSION_PACKAGES = ("ipfs-accelerate", "torch", "transformers", "openvino", "tokenizers", "numpy", "pytest", "pydantic", "httpx", "rich")
FLUSH_EVERY_S = 5.0


class RunFailure(Exception):
    """The run could not proceed (workers cannot start): exit code 1."""


@dataclass
class RunOptions:
    """Everything `ipfs-accelerate run` accepts, after argparse."""

    test_dir: Path | None = None
    paths: list[str] = field(default_factory=list)
    type: str = "all"
    models: list[str] = field(default_factory=list)
    apis: list[str] = field(default_factory=list)
    category: str = "all"
    limit: int | None = None
    hardware: list[str] = field(default_factory=lambda: ["cpu", "cuda", "openvino"])
    impl_type: str = "all"
    keyword: str | None = None
    workers: int | None = None
    timeout: float = 300.0
    max_memory_mb: float | None = None
    recycle_after: int = 50
    threads: int = 1
    warm: float = 0.0
    verbose: bool = False
    report: Path | None = None
    output_dir: Path = Path("test_results")
    run_id: str | None = None
    benchmark: bool = False
    resume: str | None = None
    shard: str | None = None
    durations_from: Path | None = None
    preload: str = "auto"
    plain: bool | None = None
    collect_only: bool = False
    argv: list[str] = field(default_factory=list)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def total_memory_mb() -> float:
    import psutil

    return psutil.virtual_memory().total / 2**20


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


def _plugin_registered() -> bool:
    return any(ep.value == "ipfs_accelerate.pytest_plugin" for ep in metadata.entry_points(group="pytest11"))


def _compact(files: list[str], test_dir: Path) -> list[str]:
    """A folder instead of its files when every Python file in it is selected: pytest lists the
    parent folder once per file argument (34 files: 1,122 collect_file calls; collection took
    0.26 s vs 0.18 s for the folder in a warm process), once per folder argument."""
    by_dir: dict[Path, list[str]] = {}
    for f in files:
        by_dir.setdefault((test_dir / f).parent, []).append(f)
    out: list[str] = []
    for d, chosen in by_dir.items():
        try:
            entries = list(d.iterdir())
        except OSError:
            entries = []
        subdirs = [e for e in entries if e.is_dir() and e.name != "__pycache__"]
        modules = {e.name for e in entries if e.suffix == ".py" and e.name not in ("conftest.py", "__init__.py")}
        if len(chosen) > 1 and not subdirs and modules == {Path(f).name for f in chosen}:
            out.append(str(d))
        else:
            out += [str(test_dir / f) for f in chosen]
    return out


def pytest_args(sel: Selection, test_dir: Path) -> list[str]:
    """Files first (`--hardware` takes several values), then options shared by collector and workers."""
    args = _compact(list(sel.files), test_dir)
    args += ["--rootdir", str(test_dir), "-o", "addopts=", "-p", "no:cacheprovider", "--continue-on-collection-errors",
             "--capture=tee-sys", "-q", "--no-header", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if not _plugin_registered():  # running from a source checkout without `pip install -e .`
        args += ["-p", "ipfs_accelerate.pytest_plugin"]
    if sel.hardware:
        args += ["--hardware", *sel.hardware]
    args += ["--impl-type", sel.impl_type]
    if sel.benchmark:
        args.append("--benchmark-cases")
    if sel.keyword:
        args += ["-k", sel.keyword]
    return args + list(sel.pytest_args)


def worker_env(threads: int) -> dict[str, str]:
    """One thread per runtime per worker (oversubscribing 2 cores made BERT 100x slower), no hub."""
    import ipfs_accelerate

    env = dict(os.environ)
    pkg_root = str(Path(ipfs_accelerate.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
    n = str(threads)
    env.update({
        "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "NUMEXPR_NUM_THREADS": n,
        "IPFS_ACCEL_THREADS": n, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
    })
    return env


def collect(sel: Selection, test_dir: Path, env: dict[str, str]) -> tuple[list[Item], list[dict[str, Any]]]:
    """Collect in a child process; if it dies, collect file by file to name the culprit."""
    if not sel.files:
        return [], []
    items, problems, ok = _collect_files(sel, test_dir, env, sel.files)
    if ok:
        return items, problems
    items, problems = [], []
    for f in sel.files:
        one = dataclasses.replace(sel, files=[f])
        i, p, ok = _collect_files(one, test_dir, env, [f])
        if ok:
            items += i
            problems += p
        else:
            problems.append({"nodeid": f, "status": "crashed", "reason": "collection crashed the collector process", "output": p[0]["output"] if p else ""})
    return items, problems


def _collect_files(sel: Selection, test_dir: Path, env: dict[str, str], files: list[str]) -> tuple[list[Item], list[dict[str, Any]], bool]:
    with tempfile.TemporaryDirectory(prefix="ipfs-collect-") as tmp:
        out = Path(tmp) / "items.json"
        cmd = [sys.executable, "-m", "ipfs_accelerate.runner.collect", "--out", str(out), "--", *pytest_args(sel, test_dir)]
        proc = subprocess.run(cmd, cwd=os.getcwd(), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", start_new_session=True)  # a terminal Ctrl-C is the runner's to handle
        if not out.exists():
            return [], [{"output": (proc.stdout + proc.stderr)[-4000:]}], False
        data = json.loads(out.read_text(encoding="utf-8"))
    if data["rc"] in (3, 4) and not data["items"]:  # pytest internal/usage error: not a test result
        raise UsageError(f"pytest could not collect the selection (exit {data['rc']}):\n{(proc.stdout + proc.stderr)[-2000:]}")
    return [Item(**i) for i in data["items"]], data["problems"], True


def _unit_order(ids: list[str], items: dict[str, Item]) -> list[str]:
    """Group a file's tests by (hardware, impl) unit, keeping pytest's order inside each unit."""
    first: dict[str, int] = {}
    for i, nid in enumerate(ids):
        first.setdefault(items[nid].unit, i)
    return sorted(ids, key=lambda nid: (first[items[nid].unit], ids.index(nid)))


def _problem_record(p: dict[str, Any], test_dir: Path) -> TestRecord:
    from ..results.run import TestRecord

    nodeid = p["nodeid"]
    file = nodeid.split("::", 1)[0]
    kind = "model" if file.startswith("skills/") else "api" if file.startswith("apis/") else "other"
    return TestRecord(nodeid=nodeid, file=file, kind=kind, unit=file, status=p["status"], reason=p.get("reason", ""),
                      output=p.get("output", ""), finished_at=time.time())


class Runner:
    def __init__(self, opts: RunOptions, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.opts = opts
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    # ---- setup ---------------------------------------------------------------------------
    def _selection(self, test_dir: Path) -> Selection:
        o = self.opts
        from .selection import check_hardware

        hardware = check_hardware(o.hardware)
        if o.paths:
            if o.models or o.apis or o.category != "all" or o.limit is not None:
                raise UsageError("explicit test paths cannot be combined with --models/--apis/--category/--limit")
            files = []
            for p in o.paths:
                path = Path(p).resolve()
                if not path.exists():
                    raise UsageError(f"no such test file or folder: {p}")
                files.append(path.relative_to(test_dir).as_posix() if path.is_relative_to(test_dir) else str(path))
            return Selection(type=o.type, hardware=hardware, impl_type=o.impl_type, keyword=o.keyword, benchmark=o.benchmark,
                             shard=o.shard, test_dir=str(test_dir), files=files, paths=list(o.paths))
        res = resolve(test_dir, o.type, o.models, o.apis, o.category, o.limit)
        explicit = set(o.models) | set(o.apis)
        missing_explicit = [m for m in res.missing if m in explicit]
        if missing_explicit:
            kind = "--type model --models" if set(missing_explicit) & set(o.models) else "--type api --apis"
            raise UsageError(
                f"no generated test file for {', '.join(missing_explicit)} under {test_dir}; "
                f"generate it first: python generate_unified_test.py {kind} {' '.join(missing_explicit)}"
            )
        return Selection(
            missing=res.missing,
            type=o.type, models=list(o.models), apis=list(o.apis), category=o.category, limit=o.limit,
            hardware=hardware, impl_type=o.impl_type, keyword=o.keyword, benchmark=o.benchmark, shard=o.shard,
            test_dir=str(test_dir), files=[p.relative_to(test_dir).as_posix() for p in res.files],
        )

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
            sel = self._selection(test_dir)
        shard = parse_shard(sel.shard)
        env = worker_env(o.threads)
        workers = o.workers or max(1, min(usable_cpus(), int(total_memory_mb() // 1536)))
        max_mem = o.max_memory_mb or max(1024.0, 0.8 * total_memory_mb() / max(workers, 1))
        preload = self._preload(sel)
        warm = None
        started = time.monotonic()  # a warm server started now is part of this run's time
        if o.warm > 0 and sel.files and not o.collect_only and sys.platform.startswith("linux"):
            from . import warm as warm_mod

            warm = warm_mod.connect_or_start(env, Path.cwd(), preload, o.threads, o.warm,
                                             log=lambda m: print(m, file=self.err) if o.verbose or "reused" not in m else None)
        run_dir = store.dir if store is not None else o.output_dir / (o.run_id or new_run_id())
        self.records: dict[str, TestRecord] = {}
        self.by_id: dict[str, Item] = {}
        self.progress = progress_mod.Progress(0, o.verbose, self.out)
        pool = Pool(
            PoolConfig(workers=min(workers, max(len(sel.files), 1)), timeout_s=o.timeout, max_memory_mb=max_mem,
                       pytest_args=pytest_args(sel, test_dir), cwd=Path.cwd(), log_dir=run_dir / "workers", env=env,
                       preload=preload, threads=o.threads, recycle_after=o.recycle_after,
                       recycle_rss_mb=min(4096.0, 0.5 * max_mem), warm=warm),
            on_test=self._on_test, unit_of=lambda nid: self.by_id[nid].unit if nid in self.by_id else nid.split("::")[0],
            log=lambda msg: self.progress.log(msg), on_batch=lambda b: self.progress.batch_done(b.file, len(b.ids)),
        )
        self.pool = pool
        old = {s: signal.signal(s, lambda *_: pool.interrupt()) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if sel.files and not o.collect_only:  # never a pytest without file arguments: it would collect the cwd
                pool.start(pool.cfg.workers)  # imports overlap collection
            from ..results.run import Options
            from ..results.schema import build_validators

            build_validators()  # pydantic's import and schema builds overlap the workers' start too
            options = Options(workers=workers, timeout_s=o.timeout, max_memory_mb=max_mem, recycle_after=o.recycle_after,
                              threads_per_worker=o.threads, warm_idle_s=o.warm if warm is not None else 0.0, argv=o.argv)
            code = self._execute(sel, test_dir, env, shard, store, header, options, run_dir, started)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            self.progress.close()
            pool.close()
        if code is None or not hasattr(self, "store"):
            if (run_dir / "workers").is_dir() and not (run_dir / "run.json").exists():
                shutil.rmtree(run_dir, ignore_errors=True)  # nothing ran: leave no empty run folder
        return 3 if code is None else code

    def _execute(self, sel: Selection, test_dir: Path, env: dict[str, str], shard: tuple[int, int] | None, store: RunStore | None,
                 header: RunResult | None, options: Options, run_dir: Path, started: float) -> int | None:
        from ..results.run import RunResult, exit_code
        from . import shard as shard_mod

        o, pool = self.opts, self.pool
        items, problems = self._collect(sel, test_dir, env)
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
        self.store, self.header = store, header

        recorded = {r.nodeid: r for r in store.load_records()}
        self.records.update(recorded)
        for rec in (_problem_record(p, test_dir) for p in problems):
            if rec.nodeid not in self.records:
                store.append(rec)
                self.records[rec.nodeid] = rec
        todo = [i for i in items if i.nodeid not in self.records]
        if o.resume:
            print(f"{len(self.records)} of {selected} tests already recorded; running the other {len(todo)}", file=self.out)
        batches = self._batches(todo, by_id, o.output_dir, store.dir)
        self._last_flush = 0.0
        self.progress = progress_mod.make(len(todo), o.verbose, o.plain, self.out)
        if not pool.interrupted:
            pool.run(batches)
        self.progress.close()  # the bar ends before the summary prints
        if pool.fatal:
            for b in pool.pending:
                for nid in b.ids:
                    if nid not in self.records:
                        self._on_test({"nodeid": nid, "status": "error", "reason": f"not run: {pool.fatal.splitlines()[0]}"}, "")
            print(f"error: {pool.fatal}", file=self.err)
        pool.close()
        header.wall_s += time.monotonic() - started
        header.hardware = pool.hardware or header.hardware
        header.workers = [*header.workers, *pool.stats]
        header.batches = [*header.batches, *pool.batch_stats]
        state = "interrupted" if pool.interrupted else "complete"
        final = self._flush(state)
        store.close()
        self._print_summary(final)
        if pool.interrupted:
            print(f"interrupted: partial report written; continue with --resume {final.run_id}", file=self.err)
            return EXIT_INTERRUPTED
        code = exit_code(final.tests, selected)
        if final.not_run and code == 0:
            code = 1
        return code

    def _collect(self, sel: Selection, test_dir: Path, env: dict[str, str]) -> tuple[list[Item], list[dict[str, Any]]]:
        """The first worker's collection; if every worker dies collecting (a module crashes on
        import), a collector process per file finds the culprits and the workers restart without them."""
        if not sel.files:
            return [], []
        if self.opts.collect_only:
            return collect(sel, test_dir, env)
        ready = self.pool.wait_ready()
        if ready is not None or self.pool.interrupted:
            return ([Item(**i) for i in ready["items"]], ready["problems"]) if ready else ([], [])
        items, problems = collect(sel, test_dir, env)
        bad = {p["nodeid"].split("::", 1)[0] for p in problems if p["status"] == "crashed"}
        if not bad:
            raise RunFailure(f"workers fail to start: {self.pool.fatal or 'see the logs in ' + str(self.pool.cfg.log_dir)}")
        keep = dataclasses.replace(sel, files=[f for f in sel.files if f not in bad])
        self.pool.restart(pytest_args(keep, test_dir), self.pool.cfg.workers)
        ready = self.pool.wait_ready()
        if ready is None:
            raise RunFailure(f"workers fail to start even without {', '.join(sorted(bad))}")
        crashed = [p for p in problems if p["status"] == "crashed"]
        return [Item(**i) for i in ready["items"]], [*ready["problems"], *crashed]

    def _preload(self, sel: Selection) -> list[str]:
        """Model test files get torch/transformers/OpenVINO imported before their first test."""
        if self.opts.preload != "auto":
            return [g for g in self.opts.preload.split(",") if g and g != "none"]
        if not any("skills" in Path(f).parts or Path(f).name.startswith("test_hf_") for f in sel.files):
            return []
        groups = ["torch", "transformers", "harness"]
        if "openvino" in sel.hardware:
            groups.append("openvino")
        return groups

    def _batches(self, todo: list[Item], by_id: dict[str, Item], output_dir: Path, run_dir: Path) -> list[Batch]:
        from . import shard as shard_mod

        per_file: dict[str, list[str]] = {}
        for it in todo:
            per_file.setdefault(it.file, []).append(it.nodeid)
        hist_run = shard_mod.latest_results(output_dir, exclude=run_dir)
        history = shard_mod.durations_by_file(hist_run)
        weights = shard_mod.weights({f: len(ids) for f, ids in per_file.items()}, history)
        batches = [Batch(f, _unit_order(ids, by_id), weights[f]) for f, ids in per_file.items()]
        batches.sort(key=lambda b: (-b.est_s, b.file))  # longest first: the tail of the run stays short
        return batches

    # ---- results -------------------------------------------------------------------------
    def _on_test(self, msg: dict[str, Any], worker: str) -> None:
        from ..results.run import TestRecord

        nodeid = msg["nodeid"]
        it = self.by_id.get(nodeid) or Item(nodeid=nodeid, file=nodeid.split("::", 1)[0])
        rec = TestRecord(
            nodeid=nodeid, file=it.file, kind=it.kind, unit=it.unit, model=it.model, api=it.api, category=it.category,
            task=it.task, hardware=it.hardware, impl=it.impl, status=msg["status"], reason=msg.get("reason", ""),
            duration_s=float(msg.get("duration_s") or 0.0), output=msg.get("output", ""), case=msg.get("case"),
            worker=worker, finished_at=time.time(),
        )
        self.store.append(rec)
        self.records[nodeid] = rec
        self.progress.test_done(rec)
        if time.monotonic() - self._last_flush > FLUSH_EVERY_S:
            self._flush("running")

    def _flush(self, state: str) -> RunResult:
        """Rewrite results.json, report.md and junit.xml atomically from what is recorded now."""
        from ..results import junit, report_md
        from ..results.run import RunResult, summarize

        self._last_flush = time.monotonic()
        tests = list(self.records.values())
        run = self.header.model_copy(update={"tests": tests, "state": state, "summary": summarize(tests),
                                             "not_run": max(0, self.header.selected - len(tests))})
        if state != "running":
            run.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        if state == "running" and hasattr(self, "pool"):
            run.hardware = self.pool.hardware or run.hardware
        run = RunResult.model_validate(run.model_dump())  # schema check before anything is written
        self.store.save_results(run)
        md = report_md.render(run)
        from ..results.store import JUNIT, REPORT, write_atomic

        write_atomic(self.store.dir / REPORT, md)
        write_atomic(self.store.dir / JUNIT, junit.render(run))
        if self.opts.report is not None:
            write_atomic(self.opts.report, md)
        if state != "running":
            self.store.save_header(run)
        return run

    def _print_summary(self, run: RunResult) -> None:
        s = run.summary
        parts = [f"{n} {k}" for k, n in s.items() if n]
        print(f"\n{len(run.tests)} tests: {', '.join(parts) or 'none'}"
              + (f"; {run.not_run} not run" if run.not_run else "") + f" in {run.wall_s:.1f} s", file=self.out)
        print(f"results: {self.store.dir / 'results.json'}", file=self.out)
        print(f"report:  {self.opts.report or self.store.dir / 'report.md'}", file=self.out)
        print(f"junit:   {self.store.dir / 'junit.xml'}", file=self.out)


def _load(path: Path) -> RunResult | None:
    from ..results.store import load_results

    try:
        return load_results(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--durations-from {path}: {exc}") from exc
