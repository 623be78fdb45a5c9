"""Process plumbing shared by the peer launchers: free ports, bounded readiness, reaping.

Peers are real third-party servers started as child processes (or threads, for moto). Every
wait here is bounded so a broken peer fails a test with its log tail instead of hanging CI.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

import httpx

_REAP_TIMEOUT = 30.0  # seconds to reap a SIGKILLed child (see ChildProcess.stop)


class PeerError(RuntimeError):
    """A peer could not be started or did not become ready in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for an unused TCP port on ``host``.

    There is a small window between closing this socket and the peer binding the port; launchers
    retry once on a bind failure rather than pretending the race does not exist.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def log_tail(path: Path | None, limit: int = 4000) -> str:
    if path is None or not path.exists():
        return ""
    data = path.read_bytes()[-limit:]
    return data.decode("utf-8", "replace")


def wait_http_ready(
    url: str,
    *,
    timeout: float,
    alive: Callable[[], bool] = lambda: True,
    ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200,
    interval: float = 0.05,
    describe: Callable[[], str] = lambda: "",
) -> float:
    """Poll ``url`` until ``ok(response)``; return seconds waited.

    Raises :class:`PeerError` when the deadline passes or ``alive()`` turns false (the process
    died), including ``describe()`` (usually the peer's log tail) so the cause is visible.
    """
    start = time.monotonic()
    deadline = start + timeout
    last = "no attempt"
    with httpx.Client(timeout=httpx.Timeout(2.0), trust_env=False) as client:
        while True:
            if not alive():
                raise PeerError(f"peer exited before {url} was ready\n{describe()}")
            try:
                resp = client.get(url)
                if ok(resp):
                    return time.monotonic() - start
                last = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if time.monotonic() >= deadline:
                raise PeerError(
                    f"peer at {url} not ready after {timeout:.1f}s (last: {last})\n{describe()}"
                )
            time.sleep(interval)


class ChildProcess:
    """A child process whose output goes to a log file (never a pipe that could fill and block).

    ``stop()`` sends SIGTERM to the process group, waits a bounded time, then SIGKILLs; it is
    idempotent and always reaps, so tests never leave zombies or orphaned servers behind.
    """

    def __init__(
        self, argv: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,  # own process group: stop() reaches uvicorn workers too
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def tail(self) -> str:
        return log_tail(self.log_path)

    def stop(self, grace: float = 5.0) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                # SIGKILL cannot be refused; this bound only covers a loaded scheduler that is
                # slow to run the dying child (``grace`` here failed stop() on two busy cores)
                proc.wait(timeout=max(grace, _REAP_TIMEOUT))
        with contextlib.suppress(Exception):
            self._log.close()
        return proc.returncode


def start_on_free_port(
    make_argv: Callable[[int], Sequence[str]],
    ready_url: Callable[[int], str],
    *,
    log_dir: Path,
    name: str,
    timeout: float,
    attempts: int = 2,
) -> tuple[int, ChildProcess]:
    """Start a peer on a free port and wait until `ready_url(port)` answers.

    A second attempt covers losing the free-port race; a failed child is stopped and its last
    error (with the log tail) is raised.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    last: PeerError | None = None
    for _ in range(attempts):
        port = free_port()
        child = ChildProcess(list(make_argv(port)), log_path=log_dir / f"{name}-{port}.log", env=env)
        child.start()
        try:
            wait_http_ready(ready_url(port), timeout=timeout, alive=child.alive, describe=child.tail)
        except PeerError as exc:
            child.stop()
            last = exc
            continue
        return port, child
    raise last or PeerError(f"{name} failed to start")


class Peer:
    """The lifecycle every peer launcher shares: ``with Peer() as p`` starts it and always stops
    it; ``stop()`` is idempotent. Subclasses write ``start()`` (and ``_stop()`` if they hold more
    than a child process)."""

    port: int = 0

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> int | None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ChildPeer(Peer):
    """A peer run as a child process on a free port, logging to ``log_dir`` (a temporary folder
    unless given): :meth:`_launch` starts it and waits for readiness; ``stop()`` reaps it and
    removes the temporary folder; ``log()`` is its log tail."""

    name = "peer"

    def __init__(self, *, startup_timeout: float, log_dir: Path | None = None) -> None:
        self.startup_timeout = startup_timeout
        self.log_dir = log_dir
        self.port = 0
        self._child: ChildProcess | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def _launch(self, argv: Callable[[int], Sequence[str]], ready_url: Callable[[int], str]) -> Self:
        if self.log_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"{self.name}-peer-")
        log_dir = self.log_dir or Path(self._tmp.name)  # type: ignore[union-attr]
        try:
            self.port, self._child = start_on_free_port(
                argv, ready_url, log_dir=log_dir, name=self.name, timeout=self.startup_timeout
            )
        except PeerError:
            self.stop()
            raise
        return self

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    def log(self) -> str:
        return "" if self._child is None else self._child.tail()

    def stop(self) -> int | None:
        rc = None
        if self._child is not None:
            rc = self._child.stop()
            self._child = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return rc
