"""A warm worker server: import torch/transformers once, fork ready workers in ~0.1 s.

    ipfs-accelerate run --warm 600 ...      # this run and any run in the next 600 s idle
    python -m ipfs_accelerate.runner.warm --socket PATH --preload torch,transformers --idle 600

Why: a worker spends ~5 s importing torch + transformers before its first test (measured on the
2-core box: torch 1.6-2.4 s, transformers' modelling core 2.5 s) — longer than half the tests of
the spec's model set take. That start-up is serial (no test can run before it), so it caps what a
second worker can gain, and a developer rerunning one model pays it every time. The server pays it
once; each worker is a fork of it (copy-on-write, `gc.freeze`d) that runs the usual worker loop.

Safety rules, because fork and threads do not mix:
* the server imports modules only — it never runs a torch op or sets thread pools, and it leaves
  OpenVINO to the workers (its native library starts a thread on import: ~0.3 s per worker);
  after its imports it checks it is single-threaded (/proc/self/task) and refuses to serve
  otherwise (the runner then spawns workers cold, as without --warm);
* one server per *key*: interpreter, environment, working directory, thread count, preload
  groups and the files of this package and of torch/transformers/openvino/pytest (mtime+size).
  Change any of them (an edited runner module, a pip upgrade, another env var) and a new server
  starts — a fork never runs stale code;
* a forked worker gets its own session (`setsid`, so the runner's process-group kill works) and
  dies when the runner dies (pidfd watch), like a cold worker with PR_SET_PDEATHSIG;
* the server exits after `idle` seconds without a worker alive or a request.

Protocol: one Unix-socket connection per worker. The client sends a JSON line with the worker's
argv and cwd plus three fds (command pipe, message pipe, log) via SCM_RIGHTS; the server answers
`pid N` and, when that worker exits, `exit RC` (RC < 0: killed by signal -RC, like Popen).
Between runs the server keeps *spares*: forks that already collected the last run's tests (see
`_Server`), so the next run's workers skip pytest's collection too.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parents[1]
THIRD_PARTY = ("torch", "transformers", "openvino", "pytest", "pluggy")


def _tree_fingerprint(root: Path) -> list[tuple[str, int, int]]:
    out = []
    for p in sorted(root.rglob("*.py")):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((str(p.relative_to(root)), st.st_mtime_ns, st.st_size))
    return out


def _third_party_fingerprint() -> list[tuple[str, str, int]]:
    """Top-level files of the heavy dependencies (found without importing them)."""
    out = []
    for name in THIRD_PARTY:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None)
        if origin:
            st = os.stat(origin)
            dist = Path(origin).parent
            out.append((name, origin, st.st_mtime_ns + dist.stat().st_mtime_ns))
        else:
            out.append((name, "", 0))
    return out


# Shell bookkeeping that differs between two invocations of the same command (`_` is the
# program bash ran: `flock ... python` vs `python`). Not part of the key; a forked worker gets
# the runner's exact environment anyway (applied after the fork).
VOLATILE_ENV = frozenset({"_", "OLDPWD", "PWD", "SHLVL", "COLUMNS", "LINES", "PS1", "PS2", "PROMPT_COMMAND",
                          "HISTFILE", "HISTSIZE", "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "TERM_SESSION_ID", "WINDOWID"})


def server_key(env: dict[str, str], cwd: Path, preload: list[str], threads: int) -> str:
    """Everything a forked worker inherits instead of computing it itself: the environment the
    imports saw (e.g. HF_HUB_OFFLINE is read at import), the code, the interpreter."""
    h = hashlib.sha256()
    stable = sorted((k, v) for k, v in env.items() if k not in VOLATILE_ENV)
    parts: list[Any] = [sys.executable, sys.version, str(cwd.resolve()), stable, sorted(preload), threads,
                        _tree_fingerprint(PACKAGE_DIR), _third_party_fingerprint()]
    h.update(json.dumps(parts, default=str).encode())
    return h.hexdigest()[:20]


def socket_dir() -> Path:
    """$IPFS_ACCELERATE_WARM_DIR, else a per-user folder in the temp dir (AF_UNIX paths are
    limited to ~107 bytes, so a long temp dir falls back to /tmp)."""
    base = os.environ.get("IPFS_ACCELERATE_WARM_DIR")
    d = Path(base) if base else Path(tempfile.gettempdir()) / f"ipfs-accelerate-warm-{os.getuid()}"
    if len(str(d)) > 80:
        d = Path("/tmp") / f"ipfs-accelerate-warm-{os.getuid()}"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def _recv_line(sock: socket.socket, maxfds: int = 0) -> tuple[bytes, list[int]]:
    """One newline-terminated message (and up to `maxfds` fds sent with its first bytes); b"" if
    the peer closed first. Every message of this protocol, either way, is one JSON line."""
    data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, maxfds) if maxfds else (sock.recv(1 << 16), [], 0, None)
    while data and not data.endswith(b"\n"):
        more = sock.recv(1 << 16)
        if not more:
            break
        data += more
    return data, fds


def _adopt(log_fd: int, env: Any) -> None:
    """In a worker: the runner's log becomes stdout/stderr, the runner's env becomes os.environ."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    if isinstance(env, dict):
        os.environ.clear()
        os.environ.update(env)


def _pytest_args(msg: dict[str, Any]) -> list[str]:
    argv = msg["argv"]
    return argv[argv.index("--") + 1 :] if "--" in argv else []


# ---- client side (the runner) --------------------------------------------------------------


class ForkedWorker:
    """The part of `subprocess.Popen` the pool uses, for a worker forked by the server."""

    def __init__(self, conn: socket.socket, pid: int) -> None:
        self.conn = conn
        self.pid = pid
        self.returncode: int | None = None
        self._buf = b""

    def _consume(self, data: bytes) -> None:
        self._buf += data
        for line in self._buf.split(b"\n")[:-1]:
            if line.startswith(b"exit "):
                self.returncode = int(line.split()[1])
        if not data and self.returncode is None:  # the server died: its children died with it
            self.returncode = -signal.SIGKILL

    def _read(self, timeout: float | None) -> None:
        """One read of the server's report; timeout 0: don't block, None: block."""
        self.conn.settimeout(timeout)
        try:
            self._consume(self.conn.recv(4096))
        except (BlockingIOError, TimeoutError):
            pass
        except OSError:
            self._consume(b"")

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired("forked worker", timeout or 0.0)
            self._read(left)
        return self.returncode

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()


class WarmClient:
    """Connects to (or starts) the server for one key and asks it for workers."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _ask(self, op: str) -> bytes:
        """One request without fds; the server's one-line answer (b"" if none answered)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(str(self.path))
                s.sendall(json.dumps({"op": op}).encode() + b"\n")
                return _recv_line(s)[0]
        except OSError:
            return b""

    def ping(self) -> bool:
        return self._ask("ping").startswith(b"pong")

    def status(self) -> dict[str, list[int]]:
        """Pids of the server's running workers and of its spares (collected, waiting for a run)."""
        return json.loads(self._ask("status") or b'{"running": [], "spares": []}')

    def stop(self) -> bool:
        """Ask the server to stop serving: it takes no new workers and exits once the ones it
        forked have finished (they would die with it). False if none answered."""
        return self._ask("stop").startswith(b"bye")

    def spawn(self, argv: list[str], cwd: Path, fds: tuple[int, int, int], env: dict[str, str] | None = None) -> ForkedWorker:
        """`argv`: the worker's own arguments; `{cmd}` and `{msg}` are replaced by the fd numbers
        the worker ends up with. `fds`: (command read end, message write end, log). `env`: the
        worker's environment (default: the server's, which differs at most in VOLATILE_ENV)."""
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(30)
            conn.connect(str(self.path))
            msg = json.dumps({"op": "spawn", "argv": argv, "cwd": str(cwd), "runner_pid": os.getpid(), "env": env}).encode() + b"\n"
            socket.send_fds(conn, [msg], list(fds))
            line = b""
            while not line.endswith(b"\n"):
                chunk = conn.recv(64)
                if not chunk:
                    raise OSError("warm server closed the connection")
                line += chunk
            if not line.startswith(b"pid "):
                raise OSError(f"warm server refused: {line.decode(errors='replace').strip()}")
            rest = line.split(b"\n", 1)
            worker = ForkedWorker(conn, int(rest[0].split()[1]))
            worker._buf = rest[1] if len(rest) > 1 else b""
            return worker
        except BaseException:
            conn.close()
            raise


def connect_or_start(env: dict[str, str], cwd: Path, preload: list[str], threads: int, idle_s: float,
                     timeout_s: float = 300.0, log: Any = lambda _m: None) -> WarmClient | None:
    """The warm server for this key, started (detached) if none answers; None if it cannot serve
    (it found itself multi-threaded after its imports, or died): the caller spawns cold workers."""
    key = server_key(env, cwd, preload, threads)
    d = socket_dir()
    path = d / f"{key}.sock"
    client = WarmClient(path)
    if client.ping():
        log(f"warm server {key} ready (reused)")
        return client
    import fcntl

    with open(d / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runners at once: one server
        if client.ping():
            return client
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        log_path = d / f"{key}.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ipfs_accelerate.runner.warm", "--socket", str(path), "--preload", ",".join(preload) or "none",
                 "--threads", str(threads), "--idle", str(idle_s)],
                cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if path.exists() and client.ping():
                log(f"warm server {key} started in {time.monotonic() - start:.1f} s (idle exit after {idle_s:.0f} s)")
                return client
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-400:] if log_path.exists() else ""
                log(f"warm server cannot serve (exit {proc.returncode}); starting workers cold. {tail.strip()}")
                return None
            time.sleep(0.05)
        proc.kill()
        log("warm server did not start in time; starting workers cold")
        return None


# ---- server side ---------------------------------------------------------------------------


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def _watch_runner(pid: int) -> None:
    """Forked worker: exit when the runner exits (its parent is the server, so PDEATHSIG cannot)."""
    import threading

    def wait() -> None:
        try:
            fd = os.pidfd_open(pid)  # readable when the process exits
            sel = selectors.DefaultSelector()
            sel.register(fd, selectors.EVENT_READ)
            sel.select()
        except (OSError, AttributeError):
            while True:
                time.sleep(0.5)
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
        os._exit(1)

    threading.Thread(target=wait, name="runner-watch", daemon=True).start()


def _child(msg: dict[str, Any], fds: list[int], close: list[Any], spare: socket.socket | None = None) -> None:
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
        _adopt(log_fd, msg.get("env"))
        os.chdir(msg["cwd"])
        argv = [a.replace("{cmd}", str(cmd_r)).replace("{msg}", str(msg_w)) for a in msg["argv"]]
        if spare is None:
            _watch_runner(int(msg["runner_pid"]))
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


def claim_spare(ctrl_fd: int, groups: list[str]) -> tuple[Any, dict[str, Any]]:
    """In a spare, after its collection: block until the server hands it a runner's pipes and log,
    then become that runner's worker. Exits quietly if the server drops it instead."""
    from .channel import WorkerChannel
    from .worker import hardware_info

    ctrl = socket.socket(fileno=ctrl_fd)
    ctrl.settimeout(None)
    try:
        data, fds = _recv_line(ctrl, 3)
        msg = json.loads(data) if data else None
    except (OSError, ValueError):
        msg, fds = None, []
    if msg is None or len(fds) != 3:
        os._exit(0)
    ctrl.close()
    cmd_r, msg_w, log_fd = fds
    _adopt(log_fd, msg.get("env"))
    _watch_runner(int(msg["runner_pid"]))
    info: dict[str, Any] = {"pid": os.getpid(), "spare": True}
    if "--hardware-info" in msg["argv"]:
        info["hardware"] = hardware_info(groups)
    return WorkerChannel(cmd_r, msg_w), info


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

    from .worker import preload as do_preload

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
        self.last: tuple[str, dict[str, Any]] | None = None  # the latest request's (kind, message)
        self.kind_of: dict[int, str] = {}
        self.want = 0
        self.spare_inputs: list[tuple[str, int, int]] = []

    @staticmethod
    def kind(msg: dict[str, Any]) -> str:
        """Requests a spare can serve: same worker arguments (bar which one reports the hardware) and cwd."""
        return json.dumps([[a for a in msg["argv"] if a != "--hardware-info"], msg["cwd"]])

    def handle(self, conn: socket.socket) -> str:
        conn.settimeout(10)
        try:
            data, fds = _recv_line(conn, 3)
            msg = json.loads(data)
        except (OSError, ValueError):
            conn.close()
            return "error"
        op = msg.get("op")
        if op in ("ping", "stop", "status"):
            reply = {"ping": b"pong\n", "stop": b"bye\n"}.get(op) or (json.dumps(
                {"running": sorted(self.running), "spares": sorted(self.spares)}) + "\n").encode()
            with contextlib.suppress(OSError):
                conn.sendall(reply)
            conn.close()
            return op
        if op != "spawn" or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):
                conn.sendall(b"error bad request\n")
            conn.close()
            return "error"
        kind = self.kind(msg)
        pid = self._claim(kind, msg, fds) or self._fork(msg, fds)
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            conn.sendall(f"pid {pid}\n".encode())
        self.running[pid] = conn
        self.kind_of[pid] = kind
        if self.last is None or self.last[0] != kind:
            self.drop_spares()  # another runner's kind of worker now: the next run is likelier to be like it
            self.last, self.want = (kind, msg), 0
        self.want = min(self.MAX_SPARES, max(self.want, sum(1 for k in self.kind_of.values() if k == kind)))
        return "spawn"

    def _fork(self, msg: dict[str, Any], fds: list[int], spare: socket.socket | None = None) -> int:
        pid = os.fork()
        if pid == 0:
            for fd in self.pipe:
                with contextlib.suppress(OSError):
                    os.close(fd)
            _child(msg, fds, [self.listener, self.sel, *self.running.values(), *self.spares.values()], spare)
        return pid

    def _claim(self, kind: str, msg: dict[str, Any], fds: list[int]) -> int | None:
        """Hand the runner's fds to a spare of this kind; None if there is none (or they are stale)."""
        if not self.spares or self.last is None or self.last[0] != kind:
            return None
        if collection_inputs(_pytest_args(msg)) != self.spare_inputs:
            self.drop_spares()  # a test file changed since they collected
            return None
        while self.spares:
            pid, ctrl = self.spares.popitem()
            try:
                socket.send_fds(ctrl, [json.dumps(msg).encode() + b"\n"], fds)
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
                with contextlib.suppress(OSError):
                    conn.sendall(f"exit {rc}\n".encode())
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
