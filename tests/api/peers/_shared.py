"""One real peer process for every pytest-xdist worker of a run, instead of one per worker.

The pytest-xdist "session fixture once" recipe, extended to a process's lifetime: the workers of
a run share ``getbasetemp().parent``; a ``<name>.json`` there (guarded by an flock) says where the
peer listens and which worker pids use it. The first worker to need a peer starts it and owns it
(only the owner can reap its child); the others register as users. At the end every worker first
deregisters everywhere — never waiting while registered, so two owners cannot wait on each other —
then each owner waits until no live worker uses its peer and stops it. That wait runs at config
cleanup, outside every test's pytest-timeout: an owner that ends early only idles.

``prefetch`` starts peers on background threads, so the three start-ups (each mostly waiting on a
child process) overlap instead of queueing one after another in front of the first peer tests.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: An owner whose peer is still used this long after its own tests ended stops it anyway.
MAX_OWNER_WAIT = 1800.0


@dataclass(frozen=True)
class PeerAddress:
    """What the tests read from a (possibly another worker's) peer: the same attribute names as
    the launchers, so fixtures can hand out either."""

    base_url: str
    alias: str = ""
    pid: int | None = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    return True


class SharedPeers:
    """Peers shared by the workers whose basetemp parent is ``root`` (see the module doc)."""

    def __init__(self, root: Path, me: int | None = None) -> None:
        self.root = root
        self.me = me or os.getpid()
        self._used: set[str] = set()
        self._owned: dict[str, Any] = {}
        self._states: dict[str, dict[str, Any]] = {}
        self._guard = threading.Lock()
        self._name_locks: dict[str, threading.Lock] = {}
        self._threads: list[threading.Thread] = []

    def _name_lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._name_locks.setdefault(name, threading.Lock())

    def prefetch(self, name: str, start: Callable[[], Any], facts: Callable[[Any], dict[str, Any]]) -> None:
        """``get`` on a background thread; errors are left for the test's own ``get`` to raise."""

        def run() -> None:
            with contextlib.suppress(Exception):
                self.get(name, start, facts)

        thread = threading.Thread(target=run, name=f"peer-prefetch-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[Path]:
        with open(self.root / f"{name}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield self.root / f"{name}.json"
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def get(self, name: str, start: Callable[[], Any], facts: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """The peer's facts (``facts(peer)`` as its owner wrote them), starting it if no live
        worker has; ``start`` raising leaves no state behind, so each worker sees the error."""
        with self._name_lock(name):  # a prefetch of this peer in flight: wait for it
            known = self._states.get(name)
            if known is not None and known.get("pid") and _pid_alive(known["pid"]):
                return known
            state = self._get(name, start, facts)
            self._states[name] = state
            return state

    def _get(self, name: str, start: Callable[[], Any], facts: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        with self._locked(name) as path:
            state = json.loads(path.read_text()) if path.exists() else None
            if state is not None and not (state.get("pid") and _pid_alive(state["pid"])):
                state = None  # the peer died (or its owner crashed): start a fresh one
            if state is None:
                peer = start()
                self._owned[name] = peer
                state = {**facts(peer), "owner": self.me, "users": []}
            state["users"] = sorted({*state["users"], self.me})
            path.write_text(json.dumps(state))
        self._used.add(name)
        return state

    def release_all(self, max_wait: float = MAX_OWNER_WAIT) -> None:
        for thread in self._threads:  # a start still in flight would leave an orphan behind
            thread.join()
        for name in self._used:
            with self._locked(name) as path:
                if path.exists():
                    state = json.loads(path.read_text())
                    state["users"] = [u for u in state["users"] if u != self.me]
                    path.write_text(json.dumps(state))
        deadline = time.monotonic() + max_wait
        for name, peer in self._owned.items():
            while True:
                with self._locked(name) as path:
                    state = json.loads(path.read_text()) if path.exists() else {}
                    if state.get("owner") != self.me:
                        break  # ours died and another worker started a new one: not ours to end
                    users = [u for u in state["users"] if _pid_alive(u)]
                    if not users or time.monotonic() > deadline:
                        path.unlink()
                        break
                time.sleep(0.1)
            peer.stop()
        self._owned.clear()
        self._used.clear()
        self._states.clear()
