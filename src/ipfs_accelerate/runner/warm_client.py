"""The runner's side of the warm server: find or start the server for this run's key, ask it for
workers, and watch a forked worker like a `subprocess.Popen`. See `warm.py`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .protocol import (
    Bye,
    Exited,
    LineBuffer,
    Message,
    Pid,
    Ping,
    Pong,
    ProtocolError,
    Refused,
    Spawn,
    Status,
    StatusReply,
    Stop,
    decode,
    encode,
    recv_line,
)
from .warm_key import server_key, socket_dir


class ForkedWorker:
    """The part of `subprocess.Popen` the pool uses, for a worker forked by the server."""

    def __init__(self, conn: socket.socket, pid: int, buf: LineBuffer | None = None) -> None:
        self.conn = conn
        self.pid = pid
        self.returncode: int | None = None
        self._buf = buf or LineBuffer()

    def _consume(self, data: bytes) -> None:
        for msg in self._buf.feed(data):
            if isinstance(msg, Exited):
                self.returncode = msg.rc
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

    def _ask(self, request: Message) -> Message | None:
        """One request without fds; the server's one-message answer (None if none answered)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(str(self.path))
                s.sendall(encode(request))
                line = recv_line(s)[0]
            return decode(line) if line else None
        except (OSError, ProtocolError):
            return None

    def ping(self) -> bool:
        return isinstance(self._ask(Ping()), Pong)

    def status(self) -> dict[str, list[int]]:
        """Pids of the server's running workers and of its spares (collected, waiting for a run)."""
        reply = self._ask(Status())
        if not isinstance(reply, StatusReply):
            return {"running": [], "spares": []}
        return {"running": list(reply.running), "spares": list(reply.spares)}

    def stop(self) -> bool:
        """Ask the server to stop serving: it takes no new workers and exits once the ones it
        forked have finished (they would die with it). False if none answered."""
        return isinstance(self._ask(Stop()), Bye)

    def spawn(self, argv: list[str], cwd: Path, fds: tuple[int, int, int], env: dict[str, str] | None = None) -> ForkedWorker:
        """`argv`: the worker's own arguments; `{cmd}` and `{msg}` are replaced by the fd numbers
        the worker ends up with. `fds`: (command read end, message write end, log). `env`: the
        worker's environment (default: the server's, which differs at most in VOLATILE_ENV)."""
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(30)
            conn.connect(str(self.path))
            request = Spawn(argv=argv, cwd=str(cwd), runner_pid=os.getpid(), env=env)
            socket.send_fds(conn, [encode(request)], list(fds))
            buf = LineBuffer()
            got: list[Message] = []
            while not got:
                chunk = conn.recv(4096)
                if not chunk:
                    raise OSError("warm server closed the connection")
                got = buf.feed(chunk)
            first, rest = got[0], got[1:]
            if isinstance(first, Refused):
                raise OSError(f"warm server refused: {first.reason}")
            if not isinstance(first, Pid):
                raise OSError(f"warm server answered {first.op!r} to a spawn request")
            worker = ForkedWorker(conn, first.pid, buf)
            for msg in rest:  # it may have exited already
                if isinstance(msg, Exited):
                    worker.returncode = msg.rc
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
                [sys.executable, "-m", "ipfs_accelerate.runner.warm_server", "--socket", str(path), "--preload", ",".join(preload) or "none",
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
