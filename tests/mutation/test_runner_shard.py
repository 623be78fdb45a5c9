"""Pure unit tests of runner/shard.py that kill its mutants (no pytest collection, no workers).

Sharding decides which CI job runs which file: a wrong weight or tie-break silently drops or
doubles files across jobs, so these pin the weights, the greedy order and the history lookup.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipfs_accelerate.results.run import RunResult
from ipfs_accelerate.runner import shard

from .kit import make_run

_run = make_run


def test_durations_by_file_sums_per_file() -> None:
    assert shard.durations_by_file(None) == {}
    got = shard.durations_by_file(_run("r", {"a.py": [1.0, 2.5], "b.py": [0.5]}))
    assert got == {"a.py": 3.5, "b.py": 0.5} and type(got) is dict


def test_weights_history_first_then_median_per_test() -> None:
    counts = {"a.py": 2, "b.py": 4, "c.py": 3, "d.py": 1}
    history = {"a.py": 10.0, "b.py": 4.0, "d.py": 0.0}  # per test: a 5.0, b 1.0; d has no usable time
    w = shard.weights(counts, history)
    assert w == {"a.py": 10.0, "b.py": 4.0, "c.py": 9.0, "d.py": 3.0}  # median(5, 1) = 3 per test


def test_weights_without_history_is_one_second_per_test() -> None:
    assert shard.weights({"a.py": 3, "b.py": 0}, {}) == {"a.py": 3.0, "b.py": 0.0}
    # a file with zero tests or negative history does not feed the median
    assert shard.weights({"a.py": 0, "b.py": 2, "c.py": 1}, {"a.py": 50.0, "c.py": -1.0}) == {"a.py": 50.0, "b.py": 2.0, "c.py": 1.0}


def test_weights_history_below_one_second_is_still_history() -> None:
    assert shard.weights({"a": 2, "b": 1}, {"a": 0.5, "b": 3.0}) == {"a": 0.5, "b": 3.0}


def test_weights_median_of_three() -> None:
    counts = {"a.py": 1, "b.py": 1, "c.py": 1, "new.py": 2}
    history = {"a.py": 1.0, "b.py": 2.0, "c.py": 9.0}
    assert shard.weights(counts, history)["new.py"] == 4.0


def test_assign_longest_first_to_lightest_shard() -> None:
    w = {"a": 5.0, "b": 4.0, "c": 3.0, "d": 3.0, "e": 1.0}
    # a->0 (5), b->1 (4), c->1 (7), d->0 (8), e->1 (8)
    assert shard.assign(w, 2) == [["a", "d"], ["b", "c", "e"]]
    assert shard.assign(w, 1) == [["a", "b", "c", "d", "e"]]
    assert shard.assign({"x": 1.0}, 3) == [["x"], [], []]


def test_assign_ties_go_to_lowest_index_and_by_name() -> None:
    assert shard.assign({"b": 1.0, "a": 1.0, "c": 1.0}, 2) == [["a", "c"], ["b"]]
    # weights equal to 6 decimals count as ties (name decides), so float noise cannot reorder shards
    assert shard.assign({"b": 1.0000004, "a": 1.0}, 2) == [["a"], ["b"]]
    assert shard.assign({"b": 1.01, "a": 1.0}, 2) == [["b"], ["a"]]


def test_assign_sorts_each_shard_and_covers_every_file_once() -> None:
    w = {f"f{i:02d}": float((i * 7) % 11 + 1) for i in range(20)}
    shards = shard.assign(w, 3)
    assert sorted(f for s in shards for f in s) == sorted(w)
    assert all(s == sorted(s) for s in shards)
    loads = [sum(w[f] for f in s) for s in shards]
    assert max(loads) - min(loads) <= max(w.values())


def test_pick_is_one_based() -> None:
    counts = {"a": 1, "b": 1}
    history = {"a": 2.0, "b": 1.0}
    assert shard.pick(counts, history, 1, 2) == ["a"]
    assert shard.pick(counts, history, 2, 2) == ["b"]


def _write(out: Path, run: RunResult, results: bool = True, text: str | None = None) -> Path:
    d = out / run.run_id
    d.mkdir(parents=True)
    (d / "run.json").write_text("{}")
    if results:
        (d / "results.json").write_text(text if text is not None else run.model_dump_json())
    return d


def test_latest_results_newest_complete_readable_not_excluded(tmp_path: Path) -> None:
    assert shard.latest_results(tmp_path / "none") is None
    old = _write(tmp_path, _run("20261201-000000-000-aaaa", {"old.py": [1.0]}))
    mid = _write(tmp_path, _run("20261202-000000-000-aaaa", {"mid.py": [1.0]}))
    got = shard.latest_results(tmp_path)
    assert got is not None and got.run_id == mid.name
    got = shard.latest_results(tmp_path, exclude=mid)
    assert got is not None and got.run_id == old.name
    _write(tmp_path, _run("20261203-000000-000-aaaa", {}), results=False)  # still running: no results.json
    _write(tmp_path, _run("20261204-000000-000-aaaa", {}), text="{broken")  # unreadable: skipped
    got = shard.latest_results(tmp_path, exclude=tmp_path / "nonexistent")
    assert got is not None and got.run_id == mid.name
    assert json.loads((mid / "results.json").read_text())["run_id"] == mid.name


@pytest.mark.parametrize("exclude_rel", ["20261202-000000-000-aaaa", "./20261202-000000-000-aaaa"])
def test_latest_results_exclude_compares_resolved_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exclude_rel: str) -> None:
    _write(tmp_path, _run("20261201-000000-000-aaaa", {}))
    _write(tmp_path, _run("20261202-000000-000-aaaa", {}))
    monkeypatch.chdir(tmp_path)
    got = shard.latest_results(tmp_path, exclude=Path(exclude_rel))
    assert got is not None and got.run_id == "20261201-000000-000-aaaa"
