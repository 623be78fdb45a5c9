"""A forked worker taking over a runner: its log becomes stdout/stderr, its environment becomes
os.environ, and it dies with that runner. Used by the warm server's fresh forks and by *spares*
(forks that collected ahead of any run and are claimed later) — imported by both `worker` and
`warm_server`, so neither imports the other."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import sys
import time
from typing import Any

from .channel import WorkerChannel
from .preload import hardware_info
from .protocol import ProtocolError, Spawn, decode, recv_line


def adopt(log_fd: int, env: dict[str, str] | None) -> None:
    """In a worker: the runner's log becomes stdout/stderr, the runner's env becomes os.environ."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()  # type: ignore[union-attr]
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    if isinstance(env, dict):
        os.environ.clear()
        os.environ.update(env)


def watch_runner(pid: int) -> None:
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


def claim_spare(ctrl_fd: int, groups: list[str]) -> tuple[WorkerChannel, dict[str, Any]]:
    """In a spare, after its collection: block until the server hands it a runner's pipes and log,
    then become that runner's worker. Exits quietly if the server drops it instead."""
    ctrl = socket.socket(fileno=ctrl_fd)
    ctrl.settimeout(None)
    msg: Spawn | None = None
    fds: list[int] = []
    try:
        data, fds = recv_line(ctrl, 3)
        got = decode(data) if data else None
        msg = got if isinstance(got, Spawn) else None
    except (OSError, ProtocolError):
        pass
    if msg is None or len(fds) != 3:
        os._exit(0)
    ctrl.close()
    cmd_r, msg_w, log_fd = fds
    adopt(log_fd, msg.env)
    watch_runner(msg.runner_pid)
    info: dict[str, Any] = {"pid": os.getpid(), "spare": True}
    if "--hardware-info" in msg.argv:
        info["hardware"] = hardware_info(groups)
    return WorkerChannel(cmd_r, msg_w), info
