"""Two real runs of the same code compared: the runner runs tiny bert and gpt2 on CPU twice (real
forward passes, one worker), records both in the history database, and `compare` (and
`run --baseline previous --fail-on ...`) reports no fingerprint drift and no new failure, having
judged every case's latency from its stored samples. ~15 s of CPU (~50 s wall on a loaded 2-core machine).

Whether two real runs' latencies differ is a fact about the machine's load, not about this code:
on a loaded 2-core VM a run can be >25 % slower than the one before it (the flake census saw it),
so the latency verdicts of real runs are measured in `bench/bench_history_noise.py`, and the
judgement itself is tested on seeded samples in tests/test_history.py."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ipfs_accelerate.results import history as hist
from ipfs_accelerate.results import history_cli
from ipfs_accelerate.results.store import load_results

REPO = Path(__file__).resolve().parents[1]
MODELS = ("bert", "gpt2")


def test_identical_real_runs_compare_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from ipfs_accelerate.runner.cli import run_from_argv

    out = tmp_path / "results"
    argv = ["--type", "model", "--models", *MODELS, "--hardware", "cpu", "--impl-type", "mock", "--workers", "1",
            "-k", "metrics", "--no-cache", "--test-dir", str(REPO / "test"), "--output-dir", str(out)]
    assert run_from_argv(argv) == 0
    assert run_from_argv([*argv, "--baseline", "previous", "--fail-on", "new-failure,fingerprint"]) == 0

    db = hist.default_path(out)
    runs = hist.runs(db)
    assert len(runs) == 2 and all(r.state == "complete" for r in runs)
    for r in runs:  # what compare needs was recorded: samples per case and a fingerprint digest
        cases = [t.case for t in load_results(out / r.run_id).tests if t.case is not None]
        assert sorted(c.model for c in cases) == sorted(MODELS)
        assert all(len(c.metrics.latency.samples_ms) >= 5 for c in cases)
        assert all(c.fingerprint and len(c.fingerprint) == 16 for c in cases)

    capsys.readouterr()
    parser = argparse.ArgumentParser()
    history_cli.configure_compare(parser)
    ns = parser.parse_args(["--history", str(db), "--json", "--fail-on", "fingerprint"])
    assert history_cli.main_compare(ns) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["latency_judged"] == len(MODELS) and doc["latency_not_judged"] == 0  # every case judged, none skipped
    kinds = [c["kind"] for c in doc["changes"]]
    assert "fingerprint" not in kinds and "new-failure" not in kinds
    head_md = (out / runs[0].run_id / "report.md").read_text(encoding="utf-8")
    assert f"## Compared with {runs[1].run_id}" in head_md
