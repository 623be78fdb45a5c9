"""CID compatibility with independent IPFS implementations (npm `ipfs-car`, helia's unixfs).

Needs `npm ci` in scripts/ipfs (scripts/setup_test.sh runs it); skipped with that reason otherwise.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipfs_accelerate.cache import transfer, unixfs
from ipfs_accelerate.cache.store import Cache, CacheConfig

PEERS = Path(__file__).resolve().parent.parent / "scripts" / "ipfs"
IPFS_CAR = PEERS / "node_modules" / ".bin" / "ipfs-car"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None or not IPFS_CAR.exists(),
    reason="npm IPFS peers not installed: run `cd scripts/ipfs && npm ci` (node + npm needed)",
)


def ipfs_car(*args: str, cwd: Path) -> str:
    proc = subprocess.run([str(IPFS_CAR), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def sample_folder(root: Path) -> Path:
    rng = random.Random(12)
    d = root / "artifact"
    (d / "tokenizer" / "nested").mkdir(parents=True)
    (d / "model.xml").write_text("<net name='tiny'/>\n" * 50)
    (d / "model.bin").write_bytes(rng.randbytes(unixfs.CHUNK_SIZE * 2 + 12345))  # 3 chunks
    (d / "exact.bin").write_bytes(rng.randbytes(unixfs.CHUNK_SIZE))  # exactly one chunk
    (d / "plus1.bin").write_bytes(rng.randbytes(unixfs.CHUNK_SIZE + 1))
    (d / "empty").write_bytes(b"")
    (d / "tokenizer" / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    (d / "tokenizer" / "nested" / "ünïcode name.json").write_text("{}")
    (d / "B-upper-sorts-first").write_text("b")
    return d


def test_folder_cid_equals_ipfs_car(tmp_path: Path) -> None:
    d = sample_folder(tmp_path)
    out = ipfs_car("pack", str(d), "--output", str(tmp_path / "x.car"), cwd=tmp_path)
    assert out.splitlines()[-1] == unixfs.cid_of(d)
    for name in ("model.bin", "exact.bin", "plus1.bin", "empty"):
        out = ipfs_car("pack", str(d / name), "--no-wrap", "--output", str(tmp_path / f"{name}.car"), cwd=tmp_path)
        assert out.splitlines()[-1] == unixfs.cid_of(d / name), name


def test_exported_car_unpacks_with_ipfs_car_and_theirs_imports_here(tmp_path: Path) -> None:
    cache = Cache(CacheConfig(root=tmp_path / "cache"))
    src = sample_folder(tmp_path)

    def build(folder: Path) -> None:
        shutil.copytree(src, folder, dirs_exist_ok=True)

    with cache.artifact("sample", {"v": 1}, build) as path:
        cid = path.name
    root, n = transfer.export_car(cache, tmp_path / "export.car")
    assert n == 1
    assert ipfs_car("roots", str(tmp_path / "export.car"), cwd=tmp_path).splitlines() == [root]
    ipfs_car("unpack", str(tmp_path / "export.car"), "--output", str(tmp_path / "unpacked"), cwd=tmp_path)
    assert unixfs.cid_of(tmp_path / "unpacked" / "objects" / cid) == cid
    assert (tmp_path / "unpacked" / "objects" / cid / "model.bin").read_bytes() == (src / "model.bin").read_bytes()
    # the other direction: a CAR written by ipfs-car of our export folder imports on a fresh cache
    ipfs_car("pack", str(tmp_path / "unpacked"), "--output", str(tmp_path / "theirs.car"), cwd=tmp_path)
    fresh = Cache(CacheConfig(root=tmp_path / "fresh"))
    rep = transfer.import_car(fresh, tmp_path / "theirs.car")
    assert rep.root == root and rep.added == 1 and rep.rejected == []
    calls: list[Path] = []
    with fresh.artifact("sample", {"v": 1}, calls.append) as hit:
        assert hit.name == cid
    assert calls == []


def test_import_rejects_forged_entries(tmp_path: Path) -> None:
    cache = Cache(CacheConfig(root=tmp_path / "cache"))
    with cache.artifact("k", {"v": 1}, lambda f: (f / "a").write_text("good")):
        pass
    transfer.export_car(cache, tmp_path / "e.car")
    ipfs_car("unpack", str(tmp_path / "e.car"), "--output", str(tmp_path / "u"), cwd=tmp_path)
    (obj,) = (tmp_path / "u" / "objects").iterdir()
    (obj / "a").write_text("evil")  # object no longer matches its CID name
    ipfs_car("pack", str(tmp_path / "u"), "--output", str(tmp_path / "forged.car"), cwd=tmp_path)
    fresh = Cache(CacheConfig(root=tmp_path / "fresh"))
    rep = transfer.import_car(fresh, tmp_path / "forged.car")
    assert rep.added == 0 and any("hashes to" in r for r in rep.rejected or [])
    assert fresh.entries() == []


@pytest.fixture
def peer() -> Iterator[str]:
    proc = subprocess.Popen([NODE, "peer.mjs", "0"], cwd=PEERS, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("listening"):
            err = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"helia peer did not start: {line!r} {err[-2000:]}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_push_to_helia_peer_and_pull_into_fresh_cache(tmp_path: Path, peer: str) -> None:
    import json
    import urllib.request

    cache = Cache(CacheConfig(root=tmp_path / "a"))
    src = sample_folder(tmp_path)
    with cache.artifact("sample", {"v": 2}, lambda f: shutil.copytree(src, f, dirs_exist_ok=True)) as path:
        cid = path.name
    root, n = transfer.push(cache, peer)
    assert n == 1
    # the peer lists the pushed folder through @helia/unixfs: our layout is a real UnixFS DAG
    with urllib.request.urlopen(f"{peer}/api/v0/ls?arg={root}", timeout=30) as resp:
        names = [link["Name"] for link in json.load(resp)["Objects"][0]["Links"]]
    assert names == ["index", "objects"]
    fresh = Cache(CacheConfig(root=tmp_path / "b"))
    rep = transfer.pull(fresh, peer, root)
    assert rep.added == 1 and rep.rejected == []
    calls: list[Path] = []
    with fresh.artifact("sample", {"v": 2}, calls.append) as hit:
        assert hit.name == cid and unixfs.cid_of(hit) == cid
    assert calls == []
    with pytest.raises(urllib.error.HTTPError):
        transfer.pull(fresh, peer, str(unixfs.make_cid("raw", b"never pushed")))  # 404
