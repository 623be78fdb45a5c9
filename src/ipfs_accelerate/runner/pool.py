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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .channel import LineBuffer

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


@dataclass
class _Worker:
    name: str
    proc: Any  # subprocess.Popen, or warm.ForkedWorker (same poll/wait/pid/returncode)
    cmd_w: int
    msg_r: int
    log_path: Path
    spawned: float
    stat: WorkerStat
    state: str = "starting"  # starting, idle, busy, stopping, dead
    buf: LineBuffer = field(default_factory=LineBuffer)
    batch: Batch | None = None
    batch_start: float = 0.0
    batch_tests_s: float = 0.0
    done: set[str] = field(default_factory=set)
    batch_ran: bool = False
    heavy_batches: int = 0
    retiring: bool = False  # recycled after its current batch; its successor is already importing
    current: str | None = None
    current_start: float = 0.0
    offset: int = 0
    kill: tuple[str, str] | None = None  # (status, reason) when the runner killed it
    stop_at: float = 0.0
    last_mem: float = 0.0
    mem_checks: int = 0
    rss_mb: float = 0.0


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
        on_test: Callable[[dict[str, Any], str], None],
        unit_of: Callable[[str], str],
        log: Callable[[str], None] = lambda _msg: None,
        on_batch: Callable[[Batch], None] = lambda _batch: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = config
        self.on_test = on_test
        self.on_batch = on_batch
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
        self.collected: dict[str, Any] | None = None  # the first ready worker's collection
        self._closed = False
        self._asked_hardware = False
        self.fatal = ""

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

    def wait_ready(self) -> dict[str, Any] | None:
        """Drive the workers until one has collected; its ready message (with `items` and
        `problems`), or None when every worker died before that (a test module crashes on import)."""
        while not self._interrupted and self.collected is None:
            for key, _ in self.sel.select(timeout=0.05):
                self._read(key.data)
            now = self.clock()
            for w in list(self.workers):
                if w.proc.poll() is not None and w.state == "starting":
                    self._on_exit(w)
                elif w.state == "starting" and now - w.spawned > self.cfg.startup_timeout_s:
                    self._kill(w, "crashed", f"worker did not start within {self.cfg.startup_timeout_s:.0f} s")
            if self.collected is None and not any(w.state == "starting" for w in self.workers):
                return None
        return self.collected

    def restart(self, pytest_args: list[str], n: int) -> None:
        """New test list (collection culprits removed): stop everyone, start `n` fresh workers."""
        for w in self.workers:
            if w.state != "dead":
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
                busy = [w for w in self.workers if w.state == "busy"]
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
                    elif w.state == "busy":
                        self._watch(w, now)
                    elif w.state == "starting" and now - w.spawned > self.cfg.startup_timeout_s:
                        self._kill(w, "crashed", f"worker did not start within {self.cfg.startup_timeout_s:.0f} s")
                    elif w.state == "stopping" and now - w.stop_at > 30:
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
        alive = [w for w in self.workers if w.state in ("starting", "idle", "busy") and not w.retiring]
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

    def _send(self, w: _Worker, msg: dict[str, Any]) -> bool:
        import json

        data = (json.dumps(msg) + "\n").encode()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(w.cmd_w, view):]
        except OSError:  # broken pipe: it died; _on_exit records it
            return False
        return True

    def _dispatch(self) -> None:
        for w in self.workers:
            if w.state != "idle":
                continue
            if not self.pending:
                self._stop(w, "stopped")
                continue
            batch = self.pending.popleft()
            w.batch, w.done, w.batch_ran, w.state = batch, set(), False, "busy"
            w.batch_start, w.batch_tests_s = self.clock(), 0.0
            w.current, w.current_start = None, w.batch_start
            self._send(w, {"op": "run", "ids": batch.ids})

    def _stop(self, w: _Worker, why: str) -> None:
        w.state, w.stop_at, w.stat.end = "stopping", self.clock(), why
        self._send(w, {"op": "stop"})

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

    def _handle(self, w: _Worker, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "ready":
            w.state = "idle"
            w.stat.startup_s = self.clock() - w.spawned
            w.stat.import_s = msg.get("import_s")
            w.stat.collect_s = msg.get("collect_s")
            w.stat.spare = bool(msg.get("spare"))
            self.startup_failures = 0
            if msg.get("hardware"):
                self.hardware = msg["hardware"]
            if self.collected is None:
                self.collected = msg
            self.log(f"{w.name} ready in {w.stat.startup_s:.1f} s (imports {w.stat.import_s or 0:.1f} s, {msg.get('n_items', 0)} tests collected)")
        elif op == "start":
            w.current, w.current_start, w.offset = msg["nodeid"], self.clock(), int(msg.get("offset", 0))
        elif op == "test":
            nodeid = msg["nodeid"]
            w.current, w.current_start = None, self.clock()
            w.done.add(nodeid)
            w.stat.tests += 1
            w.batch_tests_s += float(msg.get("duration_s") or 0.0)
            self.unit_deaths.pop(self.unit_of(nodeid), None)  # only consecutive deaths count
            if msg.get("status") != "skipped":
                w.batch_ran = True
            self.on_test(msg, w.name)
        elif op == "batch_done":
            if w.batch is not None:
                from ..results.run import BatchStat

                self.batch_stats.append(BatchStat(
                    file=w.batch.file, worker=w.name, tests=len(w.batch.ids), units=len({self.unit_of(i) for i in w.batch.ids}),
                    wall_s=self.clock() - w.batch_start, tests_s=w.batch_tests_s, cpu_s=msg.get("cpu_s"), page_faults=msg.get("page_faults")))
                self.on_batch(w.batch)
            w.state, w.batch = "idle", None
            w.stat.batches += 1
            w.rss_mb = float(msg.get("rss_mb") or 0.0)
            if w.batch_ran:
                w.heavy_batches += 1
            if w.retiring or w.heavy_batches >= self.cfg.recycle_after or w.rss_mb > self.cfg.recycle_rss_mb:
                self.log(f"{w.name} recycled after {w.heavy_batches} batches (RSS {w.rss_mb:.0f} MB)")
                self._stop(w, "recycled")
            elif self.pending and (w.heavy_batches >= self.cfg.recycle_after - 1 or w.rss_mb > 0.85 * self.cfg.recycle_rss_mb):
                w.retiring = True  # one more batch; _spawn_needed starts its successor now, so no one waits for imports

    def _watch(self, w: _Worker, now: float) -> None:
        if w.current and now - w.current_start > self.cfg.timeout_s:
            self._kill(w, "timeout", f"timeout: still running after {self.cfg.timeout_s:g} s (per-test limit)", dump=True)
            return
        if not w.current and now - w.current_start > self.cfg.timeout_s:  # stuck outside any test (batch clean-up)
            self._kill(w, "timeout", f"worker hung for {self.cfg.timeout_s:g} s between tests", dump=True)
            return
        if now - w.last_mem < self.cfg.memory_poll_s:
            return
        w.last_mem = now
        w.mem_checks += 1
        rss = _tree_rss_mb(w.proc.pid, children=w.mem_checks % 10 == 0)
        if rss > self.cfg.max_memory_mb:
            self._kill(w, "crashed", f"memory cap exceeded: worker RSS {rss:.0f} MB > cap {self.cfg.max_memory_mb:.0f} MB")

    def _kill(self, w: _Worker, status: str, reason: str, dump: bool = False) -> None:
        if w.kill is None:
            w.kill = (status, reason)
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
        if w.state == "dead":
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
        state, w.state = w.state, "dead"
        try:  # test subprocesses (servers a test started) go with their worker
            os.killpg(w.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        status, reason = w.kill or ("crashed", f"worker died: {_signal_name(rc)}")
        if state == "starting":
            self.startup_failures += 1
            w.stat.end = "startup-failed"
            why = tail(w.log_path)
            self.log(f"{w.name} failed to start ({_signal_name(rc)}):\n{why[-1500:]}")
            if self.startup_failures >= MAX_STARTUP_FAILURES:
                self.fatal = f"workers failed to start {self.startup_failures} times; last: {reason}; log tail:\n{why[-1500:]}"
            return
        if state != "busy":
            if not w.stat.end:
                w.stat.end = "exited"
            return
        w.stat.end = {"timeout": "timeout"}.get(status, "memory" if "memory cap" in reason else "crashed")
        batch = w.batch
        assert batch is not None
        remaining = [i for i in batch.ids if i not in w.done]
        culprit = w.current
        if culprit is not None:
            out = tail(w.log_path, w.offset)
            self.on_test({"nodeid": culprit, "status": status, "reason": reason,
                          "duration_s": self.clock() - w.current_start, "output": out}, w.name)
            remaining = [i for i in remaining if i != culprit]
            unit = self.unit_of(culprit)
            self.unit_deaths[unit] = self.unit_deaths.get(unit, 0) + 1
            self.log(f"{w.name} {status} in {culprit}: {reason}; replacing it")
        else:
            batch.blind_deaths += 1
            self.log(f"{w.name} died between tests ({reason}); replacing it")
            if batch.blind_deaths >= MAX_UNIT_DEATHS:
                for nodeid in remaining:
                    self.on_test({"nodeid": nodeid, "status": "error", "duration_s": 0.0, "output": tail(w.log_path),
                                  "reason": f"not run: its worker died {batch.blind_deaths} times outside any test in {batch.file} (last: {reason})"}, w.name)
                return
        requeue = []
        for nodeid in remaining:
            u = self.unit_of(nodeid)
            if u != batch.file and self.unit_deaths.get(u, 0) >= MAX_UNIT_DEATHS:
                self.on_test({"nodeid": nodeid, "status": "error", "duration_s": 0.0, "output": "",
                              "reason": f"not run: {self.unit_deaths[u]} tests in a row of {u} killed their worker (last: {reason})"}, w.name)
            else:
                requeue.append(nodeid)
        if requeue:
            self.pending.appendleft(Batch(batch.file, requeue, batch.est_s, batch.blind_deaths))

    def _shutdown(self) -> None:
        for w in self.workers:
            if w.state == "dead":
                continue
            if w.state in ("idle", "stopping") and not self._interrupted:
                w.stat.end = w.stat.end or "stopped"
                self._send(w, {"op": "stop"})
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
            if w.state == "busy":
                w.state = "dead"  # interrupted: its in-flight test stays unrecorded, --resume reruns it
                for fd in (w.msg_r, w.cmd_w):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                continue
            self._on_exit(w)
        self.sel.close()


def _tree_rss_mb(pid: int, children: bool) -> float:
    try:
        import psutil

        proc = psutil.Process(pid)
        rss = proc.memory_info().rss
        if children:
            for child in proc.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    pass
        return rss / 2**20
    except Exception:
        return 0.0
