"""JSON-lines messages over a pair of pipes between the runner and one worker.

The worker side blocks (it has nothing else to do); the runner side is non-blocking and fed by a
selector, so one slow or dead worker never stalls the others.
"""

from __future__ import annotations

import json
import os
from typing import Any


class WorkerChannel:
    """Worker end: blocking reads of commands, one write per message."""

    def __init__(self, cmd_fd: int, msg_fd: int) -> None:
        self._cmd = os.fdopen(cmd_fd, "r", encoding="utf-8")
        self._msg_fd = msg_fd

    def send(self, msg: dict[str, Any]) -> None:
        data = memoryview((json.dumps(msg, default=str) + "\n").encode("utf-8"))
        while data:
            n = os.write(self._msg_fd, data)
            data = data[n:]

    def recv(self) -> dict[str, Any] | None:
        """Next command, or None when the runner closed the pipe (it exited or was killed)."""
        line = self._cmd.readline()
        if not line:
            return None
        return json.loads(line)


class LineBuffer:
    """Runner end: accumulate non-blocking reads, yield complete JSON messages."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        out = []
        for line in lines:
            if line.strip():
                out.append(json.loads(line))
        return out
