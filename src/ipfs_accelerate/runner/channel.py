"""The worker's end of the two pipes to the runner: blocking reads of commands, one write per
message (the runner's end is non-blocking and fed by a selector; see `protocol.LineBuffer`)."""

from __future__ import annotations

import os

from .protocol import Message, decode, write_all


class WorkerChannel:
    def __init__(self, cmd_fd: int, msg_fd: int) -> None:
        self._cmd = os.fdopen(cmd_fd, "rb")
        self._msg_fd = msg_fd

    def send(self, msg: Message) -> None:
        write_all(self._msg_fd, msg)

    def recv(self) -> Message | None:
        """Next command, or None when the runner closed the pipe (it exited or was killed)."""
        line = self._cmd.readline()
        if not line:
            return None
        return decode(line)
