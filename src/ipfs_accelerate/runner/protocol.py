"""Every message between runner, worker and warm server: one typed class each, one encode/decode.

Why one module: the runner ↔ worker pipes and the warm server's Unix socket used to speak dicts
keyed by `"op"` strings spelled in four modules plus a second, line-based protocol (`pid N`,
`exit RC`). Here each message is a frozen dataclass; the wire form is one JSON line
`{"op": <tag>, ...fields}`, so a reader can `decode` any line and `match` on the class.

    runner → worker       Run, Stop
    worker → runner       Ready, Start, TestDone, BatchDone, Exit
    runner → warm server  Spawn, Ping, Stop, Status
    warm server → runner  Pid, Exited, Pong, Bye, StatusReply, Refused
    warm server → spare   Spawn (the claiming runner's request, with its fds)
    Ray task → driver     NodeInfo, then the pool's Start / TestDone, then TaskEnd
"""

from __future__ import annotations

import dataclasses
import json
import socket
from dataclasses import dataclass, field
from typing import Any, ClassVar, dataclass_transform


class ProtocolError(ValueError):
    """A line that is not one of the messages below (unknown op, missing or unknown field)."""


MESSAGES: dict[str, type[Message]] = {}


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
@dataclass(frozen=True)
class Message:
    """Base of every message: `class Run(Message, op="run")` makes a frozen dataclass with that
    wire tag and registers it for `decode` (one declaration per message, no list to keep in step)."""

    op: ClassVar[str] = ""

    def __init_subclass__(cls, op: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if op in MESSAGES:
            raise TypeError(f"message op {op!r} is taken by {MESSAGES[op].__name__}")
        cls.op = op
        dataclass(frozen=True)(cls)
        MESSAGES[op] = cls


# ---- runner → worker ---------------------------------------------------------------------------
class Run(Message, op="run"):
    """Run these node ids (one file's batch) in this order."""

    ids: list[str]


class Stop(Message, op="stop"):
    """Worker: finish the session and exit. Warm server: take no new workers, exit when idle."""


# ---- worker → runner ---------------------------------------------------------------------------
class Ready(Message, op="ready"):
    """Imports and collection done; the first worker's `items`/`problems` are the run's test list."""

    pid: int
    import_s: float | None = None
    collect_s: float | None = None
    n_items: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    hardware: dict[str, Any] | None = None
    spare: bool = False


class Start(Message, op="start"):
    """A test began; `offset` is where its output starts in the worker log (for the crash tail)."""

    nodeid: str
    offset: int = 0


class TestDone(Message, op="test"):
    """One test's outcome. The pool also builds these for tests it killed (timeout, memory, crash)."""

    __test__: ClassVar[bool] = False  # not a pytest test class
    nodeid: str
    status: str
    reason: str = ""
    duration_s: float = 0.0
    output: str = ""
    case: dict[str, Any] | None = None


class BatchDone(Message, op="batch_done"):
    """A batch ended: the worker's own view of its cost (the runner adds its wall time)."""

    wall_s: float = 0.0
    rss_mb: float | None = None  # None: the worker could not measure itself (no psutil)
    cpu_s: float | None = None
    page_faults: int | None = None


class Exit(Message, op="exit"):
    """pytest returned `rc`; the worker exits next."""

    rc: int


# ---- runner ↔ warm server --------------------------------------------------------------------
class Spawn(Message, op="spawn"):
    """Fork a worker with these arguments (`{cmd}`/`{msg}` become its fd numbers); the three fds
    (command pipe, message pipe, log) travel with this line via SCM_RIGHTS."""

    argv: list[str]
    cwd: str
    runner_pid: int
    env: dict[str, str] | None = None


class Ping(Message, op="ping"):
    """Is a server listening on this socket? (answered by Pong)"""


class Status(Message, op="status"):
    """Which workers does the server hold? (answered by StatusReply)"""


class Pid(Message, op="pid"):
    """The worker forked (or spare claimed) for a Spawn."""

    pid: int


class Exited(Message, op="exited"):
    """A forked worker ended; rc < 0: killed by signal -rc (as `Popen.returncode`)."""

    rc: int


class Pong(Message, op="pong"):
    """Ping's answer."""


class Bye(Message, op="bye"):
    """Stop's answer: the server takes no new workers."""


class StatusReply(Message, op="status_reply"):
    """Pids of the running workers and of the spares."""

    running: list[int] = field(default_factory=list)
    spares: list[int] = field(default_factory=list)


class Refused(Message, op="refused"):
    """A request the server will not serve, and why."""

    reason: str


# ---- Ray task → driver (`ray_executor.py`) ------------------------------------------------------
class NodeInfo(Message, op="node"):
    """Where a Ray task runs: reported first (versions) and again once its worker is ready (hardware)."""

    node_id: str
    hostname: str
    pid: int
    versions: dict[str, str] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)


class TaskEnd(Message, op="task_end"):
    """The task's pool finished; `fatal` when its workers could not start (its tests are not run)."""

    fatal: str = ""
    workers: list[dict[str, Any]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)


def encode(msg: Message) -> bytes:
    """One JSON line. Values JSON cannot hold (a Path in a case dict) become strings."""
    body = {"op": msg.op, **{f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}}
    return (json.dumps(body, default=str) + "\n").encode("utf-8")


def decode(line: bytes | str) -> Message:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not a JSON message: {line[:200]!r}") from exc
    if not isinstance(data, dict):
        raise ProtocolError(f"not a JSON object: {line[:200]!r}")
    op = data.pop("op", None)
    cls = MESSAGES.get(op) if isinstance(op, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message op {op!r}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ProtocolError(f"bad {op!r} message: {exc}") from exc


class LineBuffer:
    """Accumulate non-blocking reads; return the complete messages received so far."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        return [decode(line) for line in lines if line.strip()]


def write_all(fd: int, msg: Message) -> None:
    """Write one message to a pipe (blocking or not: loops over partial writes)."""
    import os

    view = memoryview(encode(msg))
    while view:
        view = view[os.write(fd, view):]


def recv_line(sock: socket.socket, maxfds: int = 0) -> tuple[bytes, list[int]]:
    """One newline-terminated line from a socket (and up to `maxfds` fds sent with its first
    bytes); b"" if the peer closed first."""
    if maxfds:
        data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, maxfds)
    else:
        data, fds = sock.recv(1 << 16), []
    while data and not data.endswith(b"\n"):
        more = sock.recv(1 << 16)
        if not more:
            break
        data += more
    return data, fds
