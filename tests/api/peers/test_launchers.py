"""The launchers themselves: bounded readiness, clean stop, no orphans, deterministic model."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from ipfs_accelerate.api.testing.peers import (
    TINY_B,
    TINY_W,
    LlamaCppServer,
    PeerError,
    free_port,
    write_tiny_gguf,
)
from ipfs_accelerate.api.testing.peers._proc import ChildProcess, wait_http_ready

pytestmark = pytest.mark.timeout(60)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_free_port_is_bindable_on_loopback() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    assert 1024 <= port <= 65535


def test_child_stop_escalates_to_sigkill_and_reaps(tmp_path: Path) -> None:
    # A child that ignores SIGTERM must still be gone within the grace period + kill.
    code = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    child = ChildProcess([sys.executable, "-c", code], log_path=tmp_path / "c.log")
    child.start()
    deadline = time.monotonic() + 10
    while "up" not in child.tail() and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = child.pid
    assert pid is not None and child.alive()
    rc = child.stop(grace=0.5)  # the child sleeps 60 s: only the SIGKILL ends it in the test
    assert rc == -9
    assert not _pid_alive(pid)
    assert child.stop() == -9  # idempotent


def test_wait_ready_fails_fast_when_process_dies(tmp_path: Path) -> None:
    child = ChildProcess(
        [sys.executable, "-c", "import sys; print('boom: bad model', flush=True); sys.exit(3)"],
        log_path=tmp_path / "d.log",
    )
    child.start()
    # a timeout far past the test's own: only noticing the death can end the wait in time
    with pytest.raises(PeerError, match=r"(?s)exited before.*boom: bad model"):
        wait_http_ready(
            f"http://127.0.0.1:{free_port()}/", timeout=600, alive=child.alive, describe=child.tail
        )
    child.stop()


def test_wait_ready_is_bounded_when_nothing_listens() -> None:
    with pytest.raises(PeerError, match="not ready after 0.3s"):
        wait_http_ready(f"http://127.0.0.1:{free_port()}/", timeout=0.3)


def test_tiny_gguf_is_deterministic_and_well_formed(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf", reason="gguf not installed; run scripts/setup_api_peers.sh")
    a = write_tiny_gguf(tmp_path / "a.gguf", seed=7)
    b = write_tiny_gguf(tmp_path / "b.gguf", seed=7)
    c = write_tiny_gguf(tmp_path / "c.gguf", seed=8)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a.path, b.path, c.path)]
    assert digest[0] == digest[1] != digest[2]
    assert a.path.stat().st_size < 1_000_000

    reader = gguf.GGUFReader(str(a.path))
    fields = reader.fields
    assert bytes(fields["general.architecture"].parts[-1]).decode() == "llama"
    assert "llama.pooling_type" not in fields
    tokens = [bytes(fields["tokenizer.ggml.tokens"].parts[i]).decode()
              for i in fields["tokenizer.ggml.tokens"].data]
    assert tokens[:3] == ["<unk>", "<s>", "</s>"]
    assert "<0x00>" in tokens and "<0xFF>" in tokens  # byte fallback
    assert tokens[a.token_id("▁hello")] == "▁hello"
    assert "tokenizer.chat_template" in fields
    names = {t.name for t in reader.tensors}
    assert {"token_embd.weight", "output.weight", "blk.1.ffn_down.weight"} <= names

    e = write_tiny_gguf(tmp_path / "e.gguf", embedding=True)
    pooling = gguf.GGUFReader(str(e.path)).fields["llama.pooling_type"]
    assert int(pooling.parts[-1][0]) == int(gguf.PoolingType.MEAN)


@pytest.mark.peer
def test_llama_launcher_reports_bad_model_with_log(tmp_path: Path) -> None:
    from ipfs_accelerate.api.testing.peers import llama_cpp_skip_reason

    if (reason := llama_cpp_skip_reason()) is not None:
        pytest.skip(reason)
    bad = tmp_path / "not-a-model.gguf"
    bad.write_bytes(b"definitely not gguf")
    # the start-up timeout is past the test's own: the launcher must notice the exit
    with pytest.raises(PeerError, match="exited before"), LlamaCppServer(bad, startup_timeout=600):
        pass


def test_kserve_app_constants_match_launcher() -> None:
    # _kserve_app.py cannot import the package (it runs under kserve's own venv); pin the copy.
    import ast

    src = (Path(__file__).parents[3] / "src/ipfs_accelerate/api/testing/peers/_kserve_app.py")
    tree = ast.parse(src.read_text())
    consts = {
        t.targets[0].id: ast.literal_eval(t.value.args[0])
        for t in tree.body
        if isinstance(t, ast.Assign) and isinstance(t.targets[0], ast.Name)
        and t.targets[0].id in {"W", "B"}
    }
    assert consts["W"] == TINY_W.tolist()
    assert consts["B"] == TINY_B.tolist()


def test_skip_reasons_name_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ipfs_accelerate.api.testing.peers import kserve_skip_reason, llama_cpp_skip_reason

    missing = str(tmp_path / "no-such-python")
    monkeypatch.setenv("IPFS_ACCEL_KSERVE_PYTHON", missing)
    assert "unusable" in (kserve_skip_reason() or "")
    assert "unusable" in (llama_cpp_skip_reason(missing) or "")
    monkeypatch.delenv("IPFS_ACCEL_KSERVE_PYTHON")
    monkeypatch.setenv("IPFS_ACCEL_KSERVE_VENV", str(tmp_path / "no-venv"))
    reason = kserve_skip_reason()
    if reason is not None:  # kserve importable here would make it None: that is fine too
        assert "scripts/setup_api_peers.sh" in reason
