"""The worker pool: long-lived pytest workers, watched from outside.

The runner process never imports torch. It spawns `--workers` worker processes (each one pytest
session, see `worker.py`), hands each a *batch* — the remaining node ids of one test file, grouped
by (hardware, impl) unit so a model's cases share one build and one import of its modelling code
— and watches them:

* **timeout** — a test running longer than `timeout_s`: SIGUSR1 (faulthandler dumps every
  thread's stack into the worker log), then SIGKILL; recorded `timeout` with the log tail.
* **memory cap** — the worker's RSS (with its children) above `max_memory_mb`: SIGKILL; recorded
  `crashed` with the RSS that tripped it.
* **crash** — the worker died on its own (segfault, abort, os._exit): recorded `crashed` with the
  signal and the log tail (faulthandler's traceback included).

After any of these the worker is replaced and the rest of its batch goes back to the front of the
queue. When two tests in a row of one (model, hardware) case kill their workers (a model whose
memoised build segfaults kills every test of its case), the case's remaining tests are recorded
as not run, so one bad model cannot eat the whole run. Tests of a plain file are independent and
always retried. Workers are recycled after `recycle_after` batches that ran
something, or when their RSS passes `recycle_rss_mb` after a batch (converted models leak 15-60 MB
each), with the replacement importing while the old one exits.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .protocol import BatchDone, LineBuffer, Message, Ready, Run, Start, Stop, TestDone, write_all

if TYPE_CHECKING:  # pydantic loads after the first workers are launched (it costs ~0.2 s)
    from ..results.run import BatchStat, WorkerStat

MAX_UNIT_DEATHS = 2
MAX_STARTUP_FAILURES = 3
TAIL_CHARS = 4000


@dataclass
class Batch:
    file: str
    ids: list[str]
    est_s: float = 0.0
    blind_deaths: int = 0  # worker deaths outside any test: retried, but not forever


@dataclass
class PoolConfig:
    workers: int
    timeout_s: float
    max_memory_mb: float
    pytest_args: list[str]
    cwd: Path
    log_dir: Path
    env: dict[str, str]
    preload: list[str] = field(default_factory=list)
    threads: int = 1
    recycle_after: int = 50
    recycle_rss_mb: float = 2048.0
    startup_timeout_s: float = 300.0
    memory_poll_s: float = 0.1
    warm: Any = None  # a warm.WarmClient: workers are forks of a server that imported already


class WorkerState(Enum):
    STARTING = "starting"  # importing and collecting; not yet sent Ready
    IDLE = "idle"  # ready for a batch
    BUSY = "busy"  # running a batch
    STOPPING = "stopping"  # sent Stop; waiting for it to exit
    DEAD = "dead"  # exited and accounted for


@dataclass
class _Job:
    """The batch a busy worker holds, and the test inside it that is running now."""

    batch: Batch
    start: float
    tests_s: float = 0.0
    done: set[str] = field(default_factory=set)
    ran: bool = False  # something other than a skip ran: counts toward recycling
    current: str | None = None
    since: float = 0.0  # when `current` started, or the last test ended (hangs between tests)
    offset: int = 0  # where `current`'s output starts in the log


@dataclass
class _Life:
    """Why and when a worker ends."""

    heavy_batches: int = 0
    retiring: bool = False  # recycled after its current batch; its successor is already importing
    kill: tuple[str, str] | None = None  # (status, reason) when the runner killed it
    stop_at: float = 0.0


@dataclass
class _Memory:
    last_poll: float = 0.0
    polls: int = 0
    rss_mb: float = 0.0  # as the worker reported it after its last batch


@dataclass
class _Worker:
    name: str
    proc: Any  # subprocess.Popen, or warm_client.ForkedWorker (same poll/wait/pid/returncode)
    cmd_w: int
    msg_r: int
    log_path: Path
    spawned: float
    stat: WorkerStat
    state: WorkerState = WorkerState.STARTING
    buf: LineBuffer = field(default_factory=LineBuffer)
    job: _Job | None = None
    life: _Life = field(default_factory=_Life)
    mem: _Memory = field(default_factory=_Memory)


def _signal_name(rc: int) -> str:
    if rc < 0:
        try:
            return f"{signal.Signals(-rc).name} (signal {-rc})"
        except ValueError:
            return f"signal {-rc}"
    return f"exit code {rc}"


_HARNESS_FRAMES = ("/_pytest/", "/pluggy/", "<frozen runpy>", "/ipfs_accelerate/runner/")


def _drop_harness_frames(text: str) -> str:
    """faulthandler dumps ~30 pytest/pluggy frames per thread; keep the test's own frames."""
    lines = text.splitlines()
    kept = [ln for ln in lines if not (ln.startswith("  File ") and any(m in ln for m in _HARNESS_FRAMES))]
    dropped = len(lines) - len(kept)
    return "\n".join(kept) + (f"\n[{dropped} pytest/runner frames omitted]" if dropped else "")


def tail(path: Path, offset: int = 0, chars: int = TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(offset, size - chars * 4)
            fh.seek(start)
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return _drop_harness_frames(text)[-chars:]


class Pool:
    """Run batches on workers; every finished test goes to `on_test(fields, worker_name)`."""

    def __init__(
        self,
        config: PoolConfig,
        on_test: Callable[[TestDone, str], None],
        unit_of: Callable[[str], str],
        log: Callable[[str], None] = lambda _msg: None,
        on_batch: Callable[[Batch], None] = lambda _batch: None,
        clock: Callable[[], float] = time.monotonic,
        on_start: Callable[[str], None] = lambda _nodeid: None,
    ) -> None:
        self.cfg = config
        self.on_test = on_test
        self.on_batch = on_batch
        self.on_start = on_start  # a test began (the Ray executor reports which test its task holds)
        self.unit_of = unit_of
        self.log = log
        self.clock = clock
        self.sel = selectors.DefaultSelector()
        self.workers: list[_Worker] = []
        self.stats: list[WorkerStat] = []
        self.batch_stats: list[BatchStat] = []
        self.pending: deque[Batch] = deque()
        self.unit_deaths: dict[str, int] = {}
        self.startup_failures = 0
        self.hardware: dict[str, Any] = {}
        self._interrupted = False
        self._generation = 0
        self.collected: Ready | None = None  # the first ready worker's collection
        self._closed = False
        self._asked_hardware = False
        self.fatal = ""
        self.memory_cap_off = memory_probe_missing()  # recorded in the run header by the runner

    # ---- public --------------------------------------------------------------------------
    def interrupt(self) -> None:
        """Stop dispatching and kill the workers (signal-handler safe: only sets a flag)."""
        self._interrupted = True

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def start(self, n: int) -> None:
        """Spawn workers now, so their imports overlap collection (the runner's serial part).
        All are launched before any bookkeeping, which imports pydantic."""
        self.cfg.log_dir.mkdir(parents=True, exist_ok=True)
        for launched in [self._launch() for _ in range(min(n, self.cfg.workers))]:
            self._register(*launched)

    def wait_ready(self) -> Ready | None:
        """Drive the workers until one has collected; its ready message (with `items` and
        `problems`), or None when every worker died before that (a test module crashes on import)."""
        while not self._interrupted and self.collected is None:
            for key, _ in self.sel.select(timeout=0.05):
                self._read(key.data)
            now = self.clock()
            for w in list(self.workers):
                if w.proc.poll() is not None and w.state is WorkerState.STARTING:
                    self._on_exit(w)
                elif w.state is WorkerState.STARTING and now - w.spawned > self.cfg.startup_timeout_s:
                    self._kill(w, "crashed", f"worker did not start within {self.cfg.startup_timeout_s:.0f} s")
            if self.collected is None and not any(w.state is WorkerState.STARTING for w in self.workers):
                return None
        return self.collected

    def restart(self, pytest_args: list[str], n: int) -> None:
        """New test list (collection culprits removed): stop everyone, start `n` fresh workers."""
        for w in self.workers:
            if w.state is not WorkerState.DEAD:
                self._kill(w, "", "")
        self.cfg.pytest_args = pytest_args
        self.collected = None
        self.startup_failures = 0
        self.fatal = ""
        self.start(n)

    def run(self, batches: list[Batch]) -> None:
        self.pending.extend(batches)
        self.cfg.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            while not self._interrupted:
                busy = [w for w in self.workers if w.state is WorkerState.BUSY]
                if not self.pending and not busy:
                    break
                self._spawn_needed(len(busy))
                self._dispatch()
                for key, _ in self.sel.select(timeout=0.05):
                    self._read(key.data)
                now = self.clock()
                for w in list(self.workers):
                    if w.proc.poll() is not None:
                        self._on_exit(w)
                    elif w.state is WorkerState.BUSY:
                        self._watch(w, now)
                    elif w.state is WorkerState.STARTING and now - w.spawned > self.cfg.startup_timeout_s:
                        self._kill(w, "crashed", f"worker did not start within {self.cfg.startup_timeout_s:.0f} s")
                    elif w.state is WorkerState.STOPPING and now - w.life.stop_at > 30:
                        self._kill(w, "", "")
                if self.fatal:
                    break
        finally:
            self.close()

    def close(self) -> None:
        """Stop idle workers, kill busy ones (interrupted: their tests stay unrecorded). Idempotent."""
        if not self._closed:
            self._closed = True
            self._shutdown()

    # ---- workers -------------------------------------------------------------------------
    def _spawn_needed(self, busy: int) -> None:
        alive = [w for w in self.workers if w.state in (WorkerState.STARTING, WorkerState.IDLE, WorkerState.BUSY) and not w.life.retiring]
        want = min(self.cfg.workers, len(self.pending) + busy)
        for _ in range(want - len(alive)):
            self._spawn()

    def _spawn(self) -> None:
        self._register(*self._launch())

    def _launch(self) -> tuple[str, Any, int, int, Path, float]:
        """Start one worker process: (name, process, command pipe, message pipe, log path, when)."""
        spawned = self.clock()
        if self._generation == 0 and self.cfg.log_dir.is_dir():  # a resumed run keeps earlier workers' logs
            self._generation = len(list(self.cfg.log_dir.glob("w*.log")))
        self._generation += 1
        name = f"w{self._generation}"
        cmd_r, cmd_w = os.pipe()
        msg_r, msg_w = os.pipe()
        log_path = self.cfg.log_dir / f"{name}.log"
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        own = ["--preload", ",".join(self.cfg.preload) or "none", "--threads", str(self.cfg.threads)]
        if not self.hardware and not self._asked_hardware:
            self._asked_hardware = True
            own.append("--hardware-info")
        try:
            proc = self._fork_warm(own, (cmd_r, msg_w, log_fd)) if self.cfg.warm is not None else None
            if proc is None:
                argv = [sys.executable, "-m", "ipfs_accelerate.runner.worker", "--cmd-fd", str(cmd_r), "--msg-fd", str(msg_w),
                        *own, "--", *self.cfg.pytest_args]
                proc = subprocess.Popen(
                    argv, cwd=self.cfg.cwd, env=self.cfg.env, stdin=subprocess.DEVNULL,
                    stdout=log_fd, stderr=log_fd, pass_fds=(cmd_r, msg_w), start_new_session=True,
                )
        finally:
            os.close(cmd_r)
            os.close(msg_w)
            os.close(log_fd)
        os.set_blocking(msg_r, False)
        return name, proc, cmd_w, msg_r, log_path, spawned

    def _register(self, name: str, proc: Any, cmd_w: int, msg_r: int, log_path: Path, spawned: float) -> None:
        from ..results.run import WorkerStat

        stat = WorkerStat(name=name, pid=proc.pid, forked=not isinstance(proc, subprocess.Popen))
        w = _Worker(name=name, proc=proc, cmd_w=cmd_w, msg_r=msg_r, log_path=log_path, spawned=spawned, stat=stat)
        self.workers.append(w)
        self.stats.append(stat)
        self.sel.register(msg_r, selectors.EVENT_READ, w)

    def _fork_warm(self, own: list[str], fds: tuple[int, int, int]) -> Any:
        """A worker forked by the warm server; None (spawn cold) if the server is gone."""
        try:
            return self.cfg.warm.spawn(["--cmd-fd", "{cmd}", "--msg-fd", "{msg}", *own, "--", *self.cfg.pytest_args],
                                       self.cfg.cwd, fds, self.cfg.env)
        except OSError as exc:
            self.log(f"warm server unavailable ({exc}); starting workers cold")
            self.cfg.warm = None
            return None

    def _send(self, w: _Worker, msg: Message) -> bool:
        try:
            write_all(w.cmd_w, msg)
        except OSError:  # broken pipe: it died; _on_exit records it
            return False
        return True

    def _dispatch(self) -> None:
        for w in self.workers:
            if w.state is not WorkerState.IDLE:
                continue
            if not self.pending:
                self._stop(w, "stopped")
                continue
            batch = self.pending.popleft()
            now = self.clock()
            w.job, w.state = _Job(batch, start=now, since=now), WorkerState.BUSY
            self._send(w, Run(ids=batch.ids))

    def _stop(self, w: _Worker, why: str) -> None:
        w.state, w.life.stop_at, w.stat.end = WorkerState.STOPPING, self.clock(), why
        self._send(w, Stop())

    def _read(self, w: _Worker) -> None:
        while True:
            try:
                data = os.read(w.msg_r, 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                try:
                    self.sel.unregister(w.msg_r)
                except (KeyError, ValueError):
                    pass
                return
            for msg in w.buf.feed(data):
                self._handle(w, msg)

    def _handle(self, w: _Worker, msg: Message) -> None:
        job = w.job
        match msg:
            case Ready():
                w.state = WorkerState.IDLE
                w.stat.startup_s = self.clock() - w.spawned
                w.stat.import_s = msg.import_s
                w.stat.collect_s = msg.collect_s
                w.stat.spare = msg.spare
                self.startup_failures = 0
                if msg.hardware:
                    self.hardware = msg.hardware
                if self.collected is None:
                    self.collected = msg
                self.log(f"{w.name} ready in {w.stat.startup_s:.1f} s (imports {w.stat.import_s or 0:.1f} s, {msg.n_items} tests collected)")
            case Start() if job is not None:
                job.current, job.since, job.offset = msg.nodeid, self.clock(), msg.offset
                self.on_start(msg.nodeid)
            case TestDone() if job is not None:
                job.current, job.since = None, self.clock()
                job.done.add(msg.nodeid)
                w.stat.tests += 1
                job.tests_s += msg.duration_s
                self.unit_deaths.pop(self.unit_of(msg.nodeid), None)  # only consecutive deaths count
                if msg.status != "skipped":
                    job.ran = True
                self.on_test(msg, w.name)
            case BatchDone() if job is not None:
                from ..results.run import BatchStat

                b = job.batch
                self.batch_stats.append(BatchStat(
                    file=b.file, worker=w.name, tests=len(b.ids), units=len({self.unit_of(i) for i in b.ids}),
                    wall_s=self.clock() - job.start, tests_s=job.tests_s, cpu_s=msg.cpu_s, page_faults=msg.page_faults))
                self.on_batch(b)
                w.state, w.job = WorkerState.IDLE, None
                w.stat.batches += 1
                w.mem.rss_mb = msg.rss_mb or 0.0
                life = w.life
                if job.ran:
                    life.heavy_batches += 1
                if life.retiring or life.heavy_batches >= self.cfg.recycle_after or w.mem.rss_mb > self.cfg.recycle_rss_mb:
                    self.log(f"{w.name} recycled after {life.heavy_batches} batches (RSS {w.mem.rss_mb:.0f} MB)")
                    self._stop(w, "recycled")
                elif self.pending and (life.heavy_batches >= self.cfg.recycle_after - 1 or w.mem.rss_mb > 0.85 * self.cfg.recycle_rss_mb):
                    life.retiring = True  # one more batch; _spawn_needed starts its successor now, so no one waits for imports

    def _watch(self, w: _Worker, now: float) -> None:
        job = w.job
        assert job is not None
        due = now - job.since > self.cfg.timeout_s
        # the cap first, and always read when the time is up: a worker over its cap is a memory fault
        # even when this loop (starved of CPU) only looks again after the timeout has also passed
        if not self.memory_cap_off and (due or now - w.mem.last_poll >= self.cfg.memory_poll_s):
            w.mem.last_poll = now
            w.mem.polls += 1
            rss = tree_rss_mb(w.proc.pid, children=due or w.mem.polls % 10 == 0)
            if rss is not None and rss > self.cfg.max_memory_mb:
                self._kill(w, "crashed", f"memory cap exceeded: worker RSS {rss:.0f} MB > cap {self.cfg.max_memory_mb:.0f} MB")
                return
        if due and job.current:
            self._kill(w, "timeout", f"timeout: still running after {self.cfg.timeout_s:g} s (per-test limit)", dump=True)
        elif due:  # stuck outside any test (batch clean-up)
            self._kill(w, "timeout", f"worker hung for {self.cfg.timeout_s:g} s between tests", dump=True)

    def _kill(self, w: _Worker, status: str, reason: str, dump: bool = False) -> None:
        if w.life.kill is None:
            w.life.kill = (status, reason)
        if dump:
            try:
                os.kill(w.proc.pid, signal.SIGUSR1)
                time.sleep(0.5)  # let faulthandler write every thread's stack into the log
            except OSError:
                pass
        try:
            os.killpg(w.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        w.proc.wait()
        self._on_exit(w)

    def _on_exit(self, w: _Worker) -> None:
        if w.state is WorkerState.DEAD:
            return
        w.proc.wait()
        self._read(w)
        rc = w.proc.returncode
        getattr(w.proc, "close", lambda: None)()  # a forked worker's server connection
        try:
            self.sel.unregister(w.msg_r)
        except (KeyError, ValueError):
            pass
        for fd in (w.msg_r, w.cmd_w):
            try:
                os.close(fd)
            except OSError:
                pass
        state, w.state = w.state, WorkerState.DEAD
        try:  # test subprocesses (servers a test started) go with their worker
            os.killpg(w.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        status, reason = w.life.kill or ("crashed", f"worker died: {_signal_name(rc)}")
        if state is WorkerState.STARTING:
            self.startup_failures += 1
            w.stat.end = "startup-failed"
            why = tail(w.log_path)
            self.log(f"{w.name} failed to start ({_signal_name(rc)}):\n{why[-1500:]}")
            if self.startup_failures >= MAX_STARTUP_FAILURES:
                self.fatal = f"workers failed to start {self.startup_failures} times; last: {reason}; log tail:\n{why[-1500:]}"
            return
        if state is not WorkerState.BUSY or w.job is None:
            if not w.stat.end:
                w.stat.end = "exited"
            return
        w.stat.end = {"timeout": "timeout"}.get(status, "memory" if "memory cap" in reason else "crashed")
        job = w.job
        batch = job.batch
        remaining = [i for i in batch.ids if i not in job.done]
        culprit = job.current
        if culprit is not None:
            out = tail(w.log_path, job.offset)
            self.on_test(TestDone(nodeid=culprit, status=status, reason=reason, duration_s=self.clock() - job.since, output=out), w.name)
            remaining = [i for i in remaining if i != culprit]
            unit = self.unit_of(culprit)
            self.unit_deaths[unit] = self.unit_deaths.get(unit, 0) + 1
            self.log(f"{w.name} {status} in {culprit}: {reason}; replacing it")
        else:
            batch.blind_deaths += 1
            self.log(f"{w.name} died between tests ({reason}); replacing it")
            if batch.blind_deaths >= MAX_UNIT_DEATHS:
                for nodeid in remaining:
                    self.on_test(TestDone(nodeid=nodeid, status="error", output=tail(w.log_path),
                                          reason=f"not run: its worker died {batch.blind_deaths} times outside any test in {batch.file} (last: {reason})"), w.name)
                return
        requeue = []
        for nodeid in remaining:
            u = self.unit_of(nodeid)
            if u != batch.file and self.unit_deaths.get(u, 0) >= MAX_UNIT_DEATHS:
                self.on_test(TestDone(nodeid=nodeid, status="error",
                                      reason=f"not run: {self.unit_deaths[u]} tests in a row of {u} killed their worker (last: {reason})"), w.name)
            else:
                requeue.append(nodeid)
        if requeue:
            self.pending.appendleft(Batch(batch.file, requeue, batch.est_s, batch.blind_deaths))

    def _shutdown(self) -> None:
        for w in self.workers:
            if w.state is WorkerState.DEAD:
                continue
            if w.state in (WorkerState.IDLE, WorkerState.STOPPING) and not self._interrupted:
                w.stat.end = w.stat.end or "stopped"
                self._send(w, Stop())
                try:  # nothing is left to save in an idle worker: don't wait for torch's slow exit
                    w.proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
            if w.proc.poll() is None:
                try:
                    os.killpg(w.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                w.proc.wait()
                if not w.stat.end:
                    w.stat.end = "killed"
            if w.state is WorkerState.BUSY:
                w.state = WorkerState.DEAD  # interrupted: its in-flight test stays unrecorded, --resume reruns it
                for fd in (w.msg_r, w.cmd_w):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                continue
            self._on_exit(w)
        self.sel.close()


def memory_probe_missing() -> str:
    """Why the memory cap cannot be enforced here ("" when it can): recorded in the run header
    instead of the cap silently reading 0 MB forever."""
    try:
        import psutil  # noqa: F401
    except ImportError:
        return "psutil is not installed (pip install psutil): the per-worker memory cap is off"
    return ""


def tree_rss_mb(pid: int, children: bool) -> float | None:
    """RSS of a worker (and, when `children`, of the processes it started), or None once it has
    exited (its exit is recorded by the pool). Any other error propagates: a cap that silently
    reads 0 is a cap that is off."""
    import psutil

    try:
        proc = psutil.Process(pid)
        rss = proc.memory_info().rss
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    if children:
        for child in proc.children(recursive=True):
            try:
                rss += child.memory_info().rss
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                pass  # a child that exited between listing and reading holds no memory
    return rss / 2**20
