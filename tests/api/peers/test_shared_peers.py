"""SharedPeers: one peer per run for all xdist workers, stopped only when no worker uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ._shared import SharedPeers


class Sleeper:
    """A stand-in peer: a real child process, so liveness checks are real."""

    starts = 0

    def __init__(self) -> None:
        Sleeper.starts += 1
        self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        self.pid = self.proc.pid
        self.stopped = threading.Event()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.stopped.set()


def _facts(p: Sleeper) -> dict[str, object]:
    return {"base_url": f"http://peer/{p.pid}", "pid": p.pid}


@pytest.mark.timeout(30)
def test_one_peer_for_all_workers_stopped_after_the_last(tmp_path: Path) -> None:
    Sleeper.starts = 0
    # two "workers": real live pids (this process and its parent)
    owner, user = SharedPeers(tmp_path, me=os.getpid()), SharedPeers(tmp_path, me=os.getppid())
    peers: list[Sleeper] = []

    def start() -> Sleeper:
        peers.append(Sleeper())
        return peers[-1]

    a = owner.get("p", start, _facts)
    b = user.get("p", start, _facts)
    assert Sleeper.starts == 1 and a["base_url"] == b["base_url"]
    assert sorted(b["users"]) == sorted({os.getpid(), os.getppid()})

    done = threading.Thread(target=owner.release_all)
    done.start()
    assert not peers[0].stopped.wait(0.5)  # the other worker still uses it: the owner waits
    user.release_all()
    done.join(25)  # a bound on a hang, not a timing
    assert not done.is_alive() and peers[0].stopped.is_set()
    assert not (tmp_path / "p.json").exists()

    # after the last user left, the next worker to need it starts a fresh one
    again = SharedPeers(tmp_path, me=os.getpid())
    again.get("p", start, _facts)
    assert Sleeper.starts == 2
    peers[1].proc.kill()  # the peer dies under the run: the next get starts another
    peers[1].proc.wait()
    SharedPeers(tmp_path, me=os.getppid()).get("p", start, _facts)
    assert Sleeper.starts == 3
    again.release_all()  # its own peer died and was replaced: it leaves the new one alone
    assert peers[1].stopped.is_set() and not peers[2].stopped.is_set()
    assert (tmp_path / "p.json").exists()
    last = SharedPeers(tmp_path, me=os.getpid())
    last.get("p", start, _facts)
    assert Sleeper.starts == 3  # still the third, shared
    last._owned["p"] = peers[2]  # pretend ownership to test the bound on the owner's wait

    state = json.loads((tmp_path / "p.json").read_text())
    (tmp_path / "p.json").write_text(json.dumps({**state, "owner": os.getpid()}))
    last.release_all(max_wait=0.3)  # bounded although the other "worker" never releases
    assert peers[2].stopped.is_set() and not (tmp_path / "p.json").exists()
    for p in peers:
        if not p.stopped.is_set():
            p.stop()


def test_a_failed_start_leaves_no_state(tmp_path: Path) -> None:
    def boom() -> Sleeper:
        raise RuntimeError("peer failed to start")

    with pytest.raises(RuntimeError):
        SharedPeers(tmp_path).get("p", boom, _facts)
    assert not (tmp_path / "p.json").exists()
