"""`--warm`: workers forked from a server that imported once. Forks must behave exactly like cold
workers — same statuses in the fault drill, replaced after a crash, dead when the runner dies —
and a server must never serve a changed environment or a multi-threaded parent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_runner_faults import DRILL, SLOW, _wait_for_records
from test_runner_kit import latest, run, write

from ipfs_accelerate.runner import warm, warm_key
from ipfs_accelerate.runner.cli import run_from_argv

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the warm server forks and passes fds: Linux")


@pytest.fixture
def warm_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short private socket folder (AF_UNIX path limit); every server started there is stopped."""
    d = Path(tempfile.mkdtemp(prefix="ipw-", dir="/tmp"))
    monkeypatch.setenv("IPFS_ACCELERATE_WARM_DIR", str(d))
    yield d
    for sock in d.glob("*.sock"):
        warm.WarmClient(sock).stop()
    shutil.rmtree(d, ignore_errors=True)


def _servers(d: Path) -> list[Path]:
    return sorted(p for p in d.glob("*.sock") if warm.WarmClient(p).ping())


def test_fault_drill_on_forked_workers(tmp_path: Path, warm_dir: Path) -> None:
    suite = tmp_path / "suite"
    write(suite / "test_drill.py", DRILL)
    write(suite / "test_normal.py", "def test_a(): pass\ndef test_b(): pass\n")
    rc = run(suite, str(suite / "test_drill.py"), str(suite / "test_normal.py"), "--timeout", "8", "--max-memory", "700",
             "--workers", "2", "--preload", "none", "--warm", "60", out=tmp_path / "out")
    r = latest(tmp_path / "out")
    st = {t.nodeid.split("::")[-1]: t for t in r.tests}
    why = "\n".join(f"{k}: {v.status} {v.reason[:200]}" for k, v in st.items()) + f"\n{r.workers}"
    assert rc == 1, why
    assert {k: v.status for k, v in st.items()} == {
        "test_ok_before": "passed", "test_segfault": "crashed", "test_ok_between": "passed", "test_hang": "timeout",
        "test_abort": "crashed", "test_memory_hog": "crashed", "test_fail": "failed", "test_skipped": "skipped",
        "test_ok_after": "passed", "test_a": "passed", "test_b": "passed",
    }, why
    assert "SIGSEGV" in st["test_segfault"].reason and "test_segfault" in st["test_segfault"].output, why
    assert "SIGABRT" in st["test_abort"].reason, why
    assert "in test_hang" in st["test_hang"].output, st["test_hang"].output
    assert "memory cap" in st["test_memory_hog"].reason, why
    assert r.options.warm_idle_s == 60
    # 4 workers killed (segfault, hang, abort, memory) and at least one to finish; a 6th only when
    # the other worker was busy at a kill (timing): replacements are forks (or spares) too
    assert len(r.workers) >= 5 and all(w.forked for w in r.workers), r.workers
    assert len(_servers(warm_dir)) == 1


def _maps_torch(pid: int) -> bool:
    """Whether process `pid` has torch's C++ library mapped: it imported torch."""
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def test_server_is_reused_and_workers_start_without_importing(tmp_path: Path, warm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behaviour, not timing (the warm-vs-cold import times are `bench/bench_warm.py`'s): a warm
    worker is a child of the one reused server, which imported torch before forking it; a cold
    worker is the runner's own child and imported torch itself."""
    suite = tmp_path / "suite"
    seen = tmp_path / "seen.json"
    write(suite / "test_one.py", "import json, os, sys\n\ndef test_env():\n"
          f"    open({str(seen)!r}, 'w').write(json.dumps({{'oldpwd': os.environ.get('OLDPWD', ''), "
          "'pid': os.getpid(), 'ppid': os.getppid(), 'torch': 'torch' in sys.modules}))\n")
    args = [str(suite / "test_one.py"), "--workers", "1", "--preload", "torch", "--plain"]

    def go(out: str, *extra: str) -> int:
        return run_from_argv([*args, "--output-dir", str(tmp_path / out), *extra], default_test_dir=suite)

    assert go("a", "--warm", "60") == 0
    [sock] = _servers(warm_dir)
    first = json.loads(seen.read_text())
    monkeypatch.setenv("OLDPWD", "/second/run")  # shell bookkeeping: same server, but the fork sees the runner's env
    assert go("b", "--warm", "60") == 0
    assert _servers(warm_dir) == [sock]  # same key, same server
    warm_seen = json.loads(seen.read_text())
    assert warm_seen["oldpwd"] == "/second/run"
    [w] = latest(tmp_path / "b").workers
    assert w.forked and w.import_s is not None and w.pid == warm_seen["pid"], w
    server = warm_seen["ppid"]
    assert server == first["ppid"] != os.getpid(), (first, warm_seen)  # both runs' workers: forks of one server
    assert _maps_torch(server) and warm_seen["torch"]  # torch came with the fork: the server imported it
    assert go("c") == 0  # a cold worker has to import torch itself
    cold_seen = json.loads(seen.read_text())
    [cold] = latest(tmp_path / "c").workers
    assert not cold.forked and cold.import_s is not None and cold.pid == cold_seen["pid"], cold
    assert cold_seen["ppid"] == os.getpid() and cold_seen["torch"]  # the runner's own child: imported torch itself


def test_key_changes_with_environment_and_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"A": "1"}
    k = warm.server_key(env, tmp_path, ["torch"], 1)
    assert k == warm.server_key(dict(env), tmp_path, ["torch"], 1)
    assert k != warm.server_key({"A": "2"}, tmp_path, ["torch"], 1)
    assert k == warm.server_key({**env, "_": "/usr/bin/flock", "SHLVL": "3"}, tmp_path, ["torch"], 1)  # shell bookkeeping
    assert k != warm.server_key(env, tmp_path, ["torch", "transformers"], 1)
    assert k != warm.server_key(env, tmp_path, ["torch"], 2)
    assert k != warm.server_key(env, tmp_path / "x", ["torch"], 1) or not (tmp_path / "x").exists()
    pkg = tmp_path / "pkg"
    write(pkg / "mod.py", "x = 1\n")
    monkeypatch.setattr(warm_key, "PACKAGE_DIR", pkg)  # the key lives in warm_key; warm re-exports it
    before = warm.server_key(env, tmp_path, ["torch"], 1)
    os.utime(pkg / "mod.py", ns=(time.time_ns(), time.time_ns() + 10**9))  # an edited runner module
    assert warm.server_key(env, tmp_path, ["torch"], 1) != before


def test_multithreaded_server_refuses_and_runner_goes_cold(tmp_path: Path, warm_dir: Path) -> None:
    sock = warm_dir / "t.sock"
    code = ("import threading, time\n"
            "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
            "from ipfs_accelerate.runner.warm import main\n"
            f"raise SystemExit(main(['--socket', {str(sock)!r}, '--preload', 'none', '--idle', '5']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3 and "refusing to serve: 2 threads" in proc.stdout
    assert not sock.exists()


def test_forked_worker_dies_with_the_runner(tmp_path: Path, warm_dir: Path) -> None:
    suite, out, log = tmp_path / "suite", tmp_path / "out", tmp_path / "exec.jsonl"
    write(suite / "test_slow.py", SLOW.replace("_mark('test_", "_mark(str(os.getpid()) + ':test_"))
    env = {**os.environ, "RUNNER_SUITE_LOG": str(log), "RUNNER_SUITE_GATE": str(tmp_path / "never")}  # busy at the kill
    cmd = [sys.executable, "-m", "ipfs_accelerate.cli", "run", str(suite / "test_slow.py"), "--test-dir", str(suite),
           "--output-dir", str(out), "--preload", "none", "--workers", "2", "--plain", "--warm", "60"]
    proc = subprocess.Popen(cmd, cwd=suite, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_records(out, 3, proc)
    finally:
        proc.kill()
        proc.wait()
    pids = {int(json.loads(line)["test"].split(":")[0]) for line in log.read_text().splitlines()}
    assert pids and os.getpid() not in pids
    deadline = time.monotonic() + 120  # a guard against a hang, not a speed claim (census runs at load 15)
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if Path(f"/proc/{p}").exists() and "Z" not in _state(p)}
        time.sleep(0.1)
    assert not alive, f"forked workers outlived the runner: {alive}"
    assert len(_servers(warm_dir)) == 1  # the server itself stays for the next run


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_idle_server_exits(tmp_path: Path, warm_dir: Path) -> None:
    client = warm.connect_or_start(dict(os.environ), tmp_path, [], 1, idle_s=1.0)
    assert client is not None and client.ping()
    deadline = time.monotonic() + 120  # likewise: the claim is that it exits
    while client.ping() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not client.ping() and not client.path.exists()


def test_stop_lets_running_workers_finish(tmp_path: Path, warm_dir: Path) -> None:
    suite, out, log = tmp_path / "suite", tmp_path / "out", tmp_path / "exec.jsonl"
    write(suite / "test_slow.py", SLOW)
    env = {**os.environ, "RUNNER_SUITE_LOG": str(log)}
    cmd = [sys.executable, "-m", "ipfs_accelerate.cli", "run", str(suite / "test_slow.py"), "--test-dir", str(suite),
           "--output-dir", str(out), "--preload", "none", "--workers", "2", "--plain", "--warm", "60"]
    proc = subprocess.Popen(cmd, cwd=suite, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for_records(out, 2, proc)
    [sock] = _servers(warm_dir)
    assert warm.WarmClient(sock).stop()
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    r = latest(out)
    assert r.summary["passed"] == 16 and all(w.forked for w in r.workers), r.workers
    assert not sock.exists() and not warm.WarmClient(sock).ping()


def _wait_spares(sock: Path, n: int) -> list[int]:
    deadline = time.monotonic() + 180  # likewise: the claim is that spares appear
    while time.monotonic() < deadline:
        st = warm.WarmClient(sock).status()
        if len(st["spares"]) >= n and not st["running"]:
            return st["spares"]
        time.sleep(0.1)
    raise AssertionError(f"no {n} spares: {warm.WarmClient(sock).status()}")


def test_spares_serve_the_next_run_but_never_a_changed_suite(tmp_path: Path, warm_dir: Path) -> None:
    """After a run the server keeps as many collected forks as it used; the next identical run
    gets them (no collection), runs the same tests with the same statuses — a crash in a spare is a
    crash like any other — and a changed test file or another selection never gets a stale one."""
    suite = tmp_path / "suite"
    write(suite / "test_a.py", "import os\n\ndef test_ok(): pass\n\ndef test_crash(): os.abort()\n")
    write(suite / "test_b.py", "def test_b1(): pass\n\ndef test_b2(): assert 1 + 1 == 2\n")
    files = [str(suite / "test_a.py"), str(suite / "test_b.py")]

    def go(out: str, *paths: str) -> object:
        run(suite, *(paths or files), "--workers", "2", "--preload", "none", "--warm", "60", out=tmp_path / out)
        return latest(tmp_path / out)

    first = go("1")
    assert not any(w.spare for w in first.workers)
    [sock] = _servers(warm_dir)
    spares = _wait_spares(sock, 2)
    second = go("2")
    statuses = {t.nodeid: t.status for t in first.tests}
    assert {t.nodeid: t.status for t in second.tests} == statuses
    assert statuses[next(k for k in statuses if k.endswith("test_crash"))] == "crashed"
    claimed = [w for w in second.workers if w.spare]
    assert len(claimed) == 2 and {w.pid for w in claimed} == set(spares), second.workers  # forked before the run began
    assert second.hardware, "one claimed spare still reports the hardware"

    _wait_spares(sock, 2)
    write(suite / "test_b.py", "def test_b1(): pass\n\ndef test_b2(): pass\n\ndef test_b3(): pass\n")  # edited after they collected
    third = go("3")
    assert not any(w.spare for w in third.workers)
    assert any(t.nodeid.endswith("test_b3") for t in third.tests)

    _wait_spares(sock, 2)
    fourth = go("4", files[1])  # another selection: other pytest arguments
    assert not any(w.spare for w in fourth.workers) and len(fourth.tests) == 3
