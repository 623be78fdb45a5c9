"""`ipfs-accelerate fake-server FAMILY`: prints the bound URL, serves, obeys faults, stops on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from ipfs_accelerate.api.testing import reply_text

from .conftest import http

pytestmark = pytest.mark.timeout(90)  # hang bounds: a child python starts slowly on busy cores


def _start(*args: str, ignore_sigint: bool = False) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipfs_accelerate.cli", "fake-server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as a background job of a non-interactive shell (nohup, CI) starts it: SIGINT ignored
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, (
        line,
        proc.stderr.read() if proc.poll() is not None else "",
    )
    url = line.split("listening on ")[1].split()[0]
    return proc, url


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_fake_server_cli_serves_faults_and_stops_on_ctrl_c() -> None:
    proc, url = _start("openai", "--fault", "503;retry-after=1")
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        first = http().post(url + "/v1/chat/completions", json=body)
        assert first.status_code == 503 and first.headers["retry-after"] == "1"
        ok = http().post(url + "/v1/chat/completions", json=body)
        assert ok.json()["choices"][0]["message"]["content"] == reply_text("hi")
        h = {"x-fake-fault": "429"}
        assert http().post(url + "/v1/chat/completions", json=body, headers=h).status_code == 429
        http().post(url + "/__fake__/faults", json={"fault": "500", "times": 1})
        assert http().post(url + "/v1/chat/completions", json=body).status_code == 500
        assert http().get(url + "/__fake__/stats").json()["requests"] == 4
    finally:
        assert _stop(proc) == 0


def test_fake_server_cli_by_provider_alias_and_api_key() -> None:
    proc, url = _start("claude", "--api-key", "sekrit")
    try:
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        h = {"anthropic-version": "2023-06-01"}
        assert (
            http()
            .post(url + "/v1/messages", json=body, headers={**h, "x-api-key": "nope"})
            .status_code
            == 401
        )
        assert (
            http()
            .post(url + "/v1/messages", json=body, headers={**h, "x-api-key": "sekrit"})
            .status_code
            == 200
        )
    finally:
        assert _stop(proc) == 0


def test_fake_server_cli_stops_on_sigint_even_when_started_with_it_ignored() -> None:
    proc, url = _start("ollama", ignore_sigint=True)
    try:
        assert http().get(url + "/api/tags").status_code == 200
    finally:
        assert _stop(proc) == 0


def test_fake_server_cli_rejects_bad_fault_spec() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ipfs_accelerate.cli", "fake-server", "openai", "--fault", "teapot"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert r.returncode == 2 and "unknown fault kind" in r.stderr
