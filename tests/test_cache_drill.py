"""Corruption drill on real cases: OpenVINO IR of tiny bert through the artifact cache.

Each damage is detected by CID on the next run, the entry is evicted and rebuilt, the case passes
with the same numbers, and its result says the entry was replaced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ipfs_accelerate.cache import Cache, CacheConfig, transfer, unixfs
from ipfs_accelerate.harness.case import Case

MODEL = "bert"


def run_case(root: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IPFS_ACCELERATE_CACHE", str(root))
    monkeypatch.delenv("IPFS_ACCELERATE_NO_CACHE", raising=False)
    result = Case(MODEL, "openvino").run()
    if result.status == "skipped":
        pytest.skip(result.reason)
    assert result.status == "passed", result.reason
    (use,) = [u for u in result.metrics.cache if u.stage == "openvino-ir"]
    return result, use


def damage_truncate(obj: Path, index: Path) -> None:
    data = (obj / "model.bin").read_bytes()
    (obj / "model.bin").write_bytes(data[: len(data) // 2])


def damage_flip(obj: Path, index: Path) -> None:
    data = bytearray((obj / "model.bin").read_bytes())
    data[len(data) // 3] ^= 0x40  # one weight's byte
    (obj / "model.bin").write_bytes(bytes(data))


def damage_delete(obj: Path, index: Path) -> None:
    (obj / "model.xml").unlink()


def damage_index(obj: Path, index: Path) -> None:
    index.write_bytes(b"\x00garbage{{")


def test_corruption_drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cache"
    first, use = run_case(root, monkeypatch)
    assert use.status == "miss" and use.bytes > 0
    cid = use.cid
    parity = [(o.name, o.max_abs) for o in first.parity.outputs]
    again, use = run_case(root, monkeypatch)
    assert use.status == "hit" and use.cid == cid and use.bytes == first.metrics.cache[0].bytes
    for damage in (damage_truncate, damage_flip, damage_delete, damage_index):
        index = next(p for p in (root / "index").glob("*.json") if json.loads(p.read_text()).get("cid") == cid)
        damage(root / "objects" / cid, index)
        result, use = run_case(root, monkeypatch)
        assert use.status == "replaced", damage.__name__
        assert use.detail, damage.__name__  # what was wrong: CID mismatch / missing / garbage
        # the rebuilt IR verifies under its own CID (OpenVINO's node names carry per-process
        # counters, so a rebuild in the same process is not byte-identical to the first)
        assert unixfs.cid_of(root / "objects" / use.cid) == use.cid
        cid = use.cid
        assert [(o.name, o.max_abs) for o in result.parity.outputs] == parity
        assert result.conversion == first.conversion
    assert Cache(CacheConfig(root=root)).verify() == []
    # no absolute path of this machine (cache root, working dir, home) in anything stored
    markers = [str(p).encode() for p in (tmp_path, Path.cwd(), Path.home())]
    for f in [*(root / "objects").rglob("*"), *(root / "index").glob("*.json")]:
        if f.is_file():
            data = f.read_bytes()
            assert not any(m in data for m in markers), f.relative_to(root)


def test_exported_car_makes_a_fresh_cache_hit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, use = run_case(tmp_path / "ci-job-1", monkeypatch)
    assert use.status == "miss"
    root, n = transfer.export_car(Cache(CacheConfig(root=tmp_path / "ci-job-1")), tmp_path / "cache.car")
    assert n == len(Cache(CacheConfig(root=tmp_path / "ci-job-1")).entries()) >= 1  # IR + compiled blobs
    rep = transfer.import_car(Cache(CacheConfig(root=tmp_path / "ci-job-2")), tmp_path / "cache.car")
    assert rep.added == n and rep.rejected == []
    _, use2 = run_case(tmp_path / "ci-job-2", monkeypatch)
    assert use2.status == "hit" and use2.cid == use.cid


def test_no_cache_flag_builds_without_storing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPFS_ACCELERATE_CACHE", str(tmp_path))
    monkeypatch.setenv("IPFS_ACCELERATE_NO_CACHE", "1")
    result = Case(MODEL, "openvino").run()
    if result.status == "skipped":
        pytest.skip(result.reason)
    assert result.status == "passed", result.reason
    assert [u.status for u in result.metrics.cache] == ["off"]
    assert not list((tmp_path / "index").glob("*.json"))


def test_two_concurrent_runs_share_one_cache(tmp_path: Path) -> None:
    """Two processes run the same OpenVINO cases at once on one cache: both pass, one builds each
    artifact (the other waits on its lock and hits), and the cache verifies clean afterwards."""
    pytest.importorskip("openvino")
    script = (
        "import json,sys\n"
        "from ipfs_accelerate.harness.case import Case\n"
        "out=[]\n"
        "for m in sys.argv[1:]:\n"
        "    r=Case(m,'openvino').run()\n"
        "    out.append([m,r.status,[[u.stage,u.status] for u in r.metrics.cache],[u.cid for u in r.metrics.cache]])\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "IPFS_ACCELERATE_CACHE": str(tmp_path)}
    env.pop("IPFS_ACCELERATE_NO_CACHE", None)
    procs = [
        subprocess.Popen([sys.executable, "-c", script, MODEL, "gpt2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    for model_a, model_b in zip(*outs, strict=True):
        assert model_a[1] == model_b[1] == "passed", (model_a, model_b)
        assert model_a[3] == model_b[3]  # the same CID for the same artifact
        for stage in ("openvino-ir", "openvino-compiled"):  # exactly one build of each artifact
            assert sorted(st for sg, st in model_a[2] + model_b[2] if sg == stage) == ["hit", "miss"], stage
    cache = Cache(CacheConfig(root=tmp_path))
    assert cache.verify() == [] and sum(e.kind == "openvino-ir" for e in cache.entries()) == 2
