"""One timer thread that cuts connections whose deadline passed.

A socket read blocks for up to its read timeout, and httpx fixes that timeout for the whole body
when the response starts, so a stream's gap limit (shorter than the time allowed for its first
event) cannot be a socket timeout. Instead a stream arms this watchdog for its next limit and
re-arms it after every event; when a limit passes first, the watchdog shuts the socket down, the
blocked read returns, and the stream raises the typed timeout naming that limit. The same
mechanism serves sync and async streams (shutdown wakes a selector as it wakes a blocked recv).
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["WATCHDOG", "Watchdog", "shutdown_socket"]


class Watchdog:
    """``arm(delay, fn)`` runs ``fn`` on the timer thread after ``delay`` seconds unless the
    returned handle is cancelled first (``cancel(handle)``: lazy deletion, O(1))."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[list[Any]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, delay: float, fn: Callable[[], None]) -> list[Any]:
        entry = [time.monotonic() + max(delay, 0.0), next(self._seq), fn]
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="api-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        return entry

    @staticmethod
    def cancel(entry: list[Any] | None) -> None:
        if entry is not None:
            entry[2] = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                when, _, fn = self._heap[0]
                if fn is None:
                    heapq.heappop(self._heap)
                    continue
                delay = when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
            try:
                fn()
            except Exception:  # noqa: BLE001 — a cut that fails leaves the socket timeout to act
                pass


WATCHDOG = Watchdog()


def shutdown_socket(network_stream: Any) -> Callable[[], None]:
    """A callable that shuts down the socket under an httpcore network stream (no-op if none)."""

    def cut() -> None:
        sock = network_stream.get_extra_info("socket") if network_stream is not None else None
        shutdown = getattr(sock, "shutdown", None)  # a socket, or asyncio's TransportSocket
        if shutdown is not None:
            try:
                shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    return cut
