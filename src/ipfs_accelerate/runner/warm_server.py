"""The warm server process: import once, fork workers (and keep *spares*) on request. See `warm.py`
for why and for the safety rules.

    python -m ipfs_accelerate.runner.warm_server --socket PATH --preload torch,transformers --idle 600
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import protocol as wire
from .preload import preload as do_preload
from .spare import adopt, watch_runner


def _pytest_args(msg: wire.Spawn) -> list[str]:
    return msg.argv[msg.argv.index("--") + 1 :] if "--" in msg.argv else []


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def _child(msg: wire.Spawn, fds: list[int], close: list[Any], spare: socket.socket | None = None) -> None:
    """In the forked process: become a worker (a spare: collect, then wait to be claimed). Never returns."""
    rc = 1
    try:
        os.setsid()
        for s in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        for obj in close:
            with contextlib.suppress(OSError):
                obj.close()
        if spare is None:
            cmd_r, msg_w, log_fd = fds
        else:  # no runner yet: its pipes and log arrive with the claim
            cmd_r = msg_w = -1
            log_fd = os.open(os.devnull, os.O_WRONLY)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        adopt(log_fd, msg.env)
        os.chdir(msg.cwd)
        argv = [a.replace("{cmd}", str(cmd_r)).replace("{msg}", str(msg_w)) for a in msg.argv]
        if spare is None:
            watch_runner(msg.runner_pid)
        else:
            argv = ["--spare-fd", str(spare.fileno()), *(a for a in argv if a != "--hardware-info")]
        sys.argv = ["ipfs_accelerate.runner.worker", *argv]
        from . import worker

        rc = worker.main(argv)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(rc)


def collection_inputs(pytest_args: list[str]) -> list[tuple[str, int, int]]:
    """(path, mtime, size) of what a collection read besides this package (which keys the server):
    the Python and config files under the rootdir and the path arguments. A spare whose inputs
    changed since it collected is discarded, never handed out."""
    roots = [a for a in pytest_args if not a.startswith("-") and os.path.exists(a)]
    if "--rootdir" in pytest_args:
        roots.append(pytest_args[pytest_args.index("--rootdir") + 1])
    out = []
    for root in sorted(set(roots)):
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
            for name in sorted(filenames):
                if name.endswith((".py", ".ini", ".toml", ".cfg")):
                    with contextlib.suppress(OSError):
                        st = os.stat(os.path.join(dirpath, name))
                        out.append((os.path.join(dirpath, name), st.st_mtime_ns, st.st_size))
    return out


def _warm_pytest() -> None:
    """One throw-away pytest session: imports the pytest11 plugins and pytest's own lazily
    imported machinery (assertion rewriting, fixtures, terminal) once, for every fork."""
    import io

    import pytest

    with tempfile.TemporaryDirectory(prefix="ipfs-warm-") as tmp:
        (Path(tmp) / "test_warm.py").write_text("import pytest\n\n\n@pytest.mark.parametrize('x', [1])\ndef test_x(x):\n    assert x\n")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "--rootdir", tmp, tmp])


def serve(path: Path, preload: list[str], threads: int, idle_s: float) -> int:
    import gc

    start = time.perf_counter()
    do_preload(preload, threads, fork_safe=True)
    from . import worker  # noqa: F401  (the forked worker runs it without importing)

    _warm_pytest()

    n = _threads()
    if n != 1:
        print(f"refusing to serve: {n} threads after importing {preload} (fork would copy a locked runtime)", flush=True)
        return 3
    gc.collect()
    gc.freeze()  # imported modules stay shared copy-on-write in every fork
    tmp = path.with_name(path.name + f".{os.getpid()}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp))
    listener.listen(64)
    os.replace(tmp, path)  # atomic: clients see a ready server or none
    inode = path.stat().st_ino
    print(f"serving {path} after {time.perf_counter() - start:.1f} s of imports ({','.join(preload)})", flush=True)

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    srv = _Server(sel, listener, (wake_r, wake_w))
    last = time.monotonic()
    stopping = False
    try:
        while True:
            for key, _ in sel.select(timeout=1.0):
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                elif key.data == "accept":
                    conn, _ = listener.accept()
                    op = srv.handle(conn)
                    if op == "stop":  # no new workers; running ones finish (they die with this process)
                        stopping = True
                        srv.drop_spares()
                        sel.unregister(listener)
                        listener.close()
                        with contextlib.suppress(FileNotFoundError):
                            if path.stat().st_ino == inode:
                                path.unlink()
                        if not srv.running:
                            return 0
                    if op == "spawn":  # a ping is not use: it must not keep an unused server alive
                        last = time.monotonic()
            if srv.reap():
                last = time.monotonic()
            try:
                replaced = path.stat().st_ino != inode
            except FileNotFoundError:
                replaced = True
            if (replaced or time.monotonic() - last > idle_s) and not srv.running:
                return 0
            if not stopping and not replaced:
                srv.refill()
    finally:
        srv.drop_spares()
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_ino == inode:
                path.unlink()


class _Server:
    """The server's workers: running ones (each reports its exit to its runner's connection) and
    *spares* — forks that already collected the last run's tests and wait for the next run.

    Why spares: a fork is ready in ~0.1 s, but pytest's collection of the spec's 34 model files
    takes another ~0.3 s, before any test and in every worker: serial time again. After a run's
    workers have all exited, the server forks as many spares as that run used (at most
    `MAX_SPARES`), with the same worker arguments. The next run asking for workers with those
    arguments gets a spare — its collection is done — if the files that collection read
    (`collection_inputs`) are unchanged; otherwise the spare is dropped and a fresh fork collects.
    """

    MAX_SPARES = 8

    def __init__(self, sel: selectors.BaseSelector, listener: socket.socket, pipe: tuple[int, int]) -> None:
        self.sel, self.listener, self.pipe = sel, listener, pipe
        self.running: dict[int, socket.socket] = {}  # pid -> its runner's connection
        self.spares: dict[int, socket.socket] = {}  # pid -> the control socket that hands it a runner's fds
        self.last: tuple[str, wire.Spawn] | None = None  # the latest request's (kind, message)
        self.kind_of: dict[int, str] = {}
        self.want = 0
        self.spare_inputs: list[tuple[str, int, int]] = []

    @staticmethod
    def kind(msg: wire.Spawn) -> str:
        """Requests a spare can serve: same worker arguments (bar which one reports the hardware) and cwd."""
        return json.dumps([[a for a in msg.argv if a != "--hardware-info"], msg.cwd])

    @staticmethod
    def _reply(conn: socket.socket, msg: wire.Message) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(wire.encode(msg))

    def handle(self, conn: socket.socket) -> str:
        """Serve one connection; returns the request's op ("error" for a bad request)."""
        conn.settimeout(10)
        try:
            data, fds = wire.recv_line(conn, 3)
            msg = wire.decode(data)
        except (OSError, wire.ProtocolError):
            conn.close()
            return "error"
        if isinstance(msg, (wire.Ping, wire.Stop, wire.Status)):
            reply: wire.Message = (wire.Pong() if isinstance(msg, wire.Ping) else wire.Bye() if isinstance(msg, wire.Stop)
                                   else wire.StatusReply(running=sorted(self.running), spares=sorted(self.spares)))
            self._reply(conn, reply)
            conn.close()
            return msg.op
        if not isinstance(msg, wire.Spawn) or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            self._reply(conn, wire.Refused(reason=f"bad request: {msg.op!r} with {len(fds)} fds"))
            conn.close()
            return "error"
        kind = self.kind(msg)
        pid = self._claim(kind, msg, fds) or self._fork(msg, fds)
        for fd in fds:
            os.close(fd)
        self._reply(conn, wire.Pid(pid=pid))
        self.running[pid] = conn
        self.kind_of[pid] = kind
        if self.last is None or self.last[0] != kind:
            self.drop_spares()  # another runner's kind of worker now: the next run is likelier to be like it
            self.last, self.want = (kind, msg), 0
        self.want = min(self.MAX_SPARES, max(self.want, sum(1 for k in self.kind_of.values() if k == kind)))
        return "spawn"

    def _fork(self, msg: wire.Spawn, fds: list[int], spare: socket.socket | None = None) -> int:
        pid = os.fork()
        if pid == 0:
            for fd in self.pipe:
                with contextlib.suppress(OSError):
                    os.close(fd)
            _child(msg, fds, [self.listener, self.sel, *self.running.values(), *self.spares.values()], spare)
        return pid

    def _claim(self, kind: str, msg: wire.Spawn, fds: list[int]) -> int | None:
        """Hand the runner's fds to a spare of this kind; None if there is none (or they are stale)."""
        if not self.spares or self.last is None or self.last[0] != kind:
            return None
        if collection_inputs(_pytest_args(msg)) != self.spare_inputs:
            self.drop_spares()  # a test file changed since they collected
            return None
        while self.spares:
            pid, ctrl = self.spares.popitem()
            try:
                socket.send_fds(ctrl, [wire.encode(msg)], fds)
            except OSError:  # it died meanwhile; reap() collects it
                continue
            finally:
                ctrl.close()
            return pid
        return None

    def refill(self) -> None:
        """Between runs (none of the last kind running), keep `want` spares of that kind."""
        if self.last is None or self.want == 0 or any(k == self.last[0] for k in self.kind_of.values()):
            return
        _kind, msg = self.last
        if not self.spares:  # snapshot before they collect; topping up keeps the older (stricter) one
            self.spare_inputs = collection_inputs(_pytest_args(msg))
        while len(self.spares) < self.want:
            mine, theirs = socket.socketpair()
            pid = self._fork(msg, [], spare=theirs)
            theirs.close()
            self.spares[pid] = mine

    def drop_spares(self) -> None:
        for pid, ctrl in self.spares.items():
            ctrl.close()
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        self.spares.clear()

    def reap(self) -> bool:
        """Collect exited children; report a running worker's exit to its runner. True if any."""
        any_ = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return any_
            if pid == 0:
                return any_
            any_ = True
            self.kind_of.pop(pid, None)
            ctrl = self.spares.pop(pid, None)
            if ctrl is not None:
                ctrl.close()
            conn = self.running.pop(pid, None)
            if conn is not None:
                rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                self._reply(conn, wire.Exited(rc=rc))
                conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ipfs_accelerate.runner.warm", description=__doc__.splitlines()[0])
    ap.add_argument("--socket", type=Path, required=True)
    ap.add_argument("--preload", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--idle", type=float, default=600.0)
    args = ap.parse_args(argv)
    groups = [g for g in args.preload.split(",") if g and g != "none"]
    return serve(args.socket, groups, args.threads, args.idle)


if __name__ == "__main__":
    raise SystemExit(main())
