"""Artifact cache store: CIDs, integrity on read, atomic/LRU/size bound, concurrency, hygiene."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
from pathlib import Path

import pytest

from ipfs_accelerate.cache import car, ledger, unixfs
from ipfs_accelerate.cache.store import Cache, CacheConfig, check_clean, key_id


def make_cache(root: Path, max_bytes: int = 2**30, clock=None) -> Cache:
    return Cache(CacheConfig(root=root, max_bytes=max_bytes), clock=clock or (lambda: 1000.0))


def writer(files: dict[str, bytes]):
    calls: list[Path] = []

    def build(folder: Path) -> None:
        calls.append(folder)
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)

    return build, calls


def test_raw_leaf_cid_is_sha256_of_the_bytes(tmp_path: Path) -> None:
    # a one-chunk file is a raw leaf: the multihash is sha2-256 of the content itself
    (tmp_path / "f").write_bytes(b"hello")
    assert unixfs.cid_of(tmp_path / "f") == "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    from multiformats import CID

    assert CID.decode(unixfs.cid_of(tmp_path / "f")).raw_digest == hashlib.sha256(b"hello").digest()


def test_known_folder_cid_and_chunking(tmp_path: Path) -> None:
    # values printed by `ipfs-car pack` 3.1.0 (tests/test_cache_ipfs.py re-derives them live)
    d = tmp_path / "d"
    d.mkdir()
    (d / "b.txt").write_bytes(b"hello")
    (d / "a").write_bytes(b"")
    assert unixfs.cid_of(d / "a") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    big = d / "big"
    big.write_bytes(bytes(range(256)) * (unixfs.CHUNK_SIZE // 256 * 2 + 8))  # 2 chunks + 2048 bytes
    node = unixfs.file_node(big)
    assert node.cid.codec.name == "dag-pb" and node.size == big.stat().st_size
    assert node.tsize > node.size  # leaves plus the File node's own bytes
    assert unixfs.cid_of(d).startswith("bafybei")
    # changing one byte anywhere changes the folder CID
    before = unixfs.cid_of(d)
    data = bytearray(big.read_bytes())
    data[unixfs.CHUNK_SIZE + 5] ^= 1
    big.write_bytes(bytes(data))
    assert unixfs.cid_of(d) != before


def test_car_roundtrip_and_tamper_detection(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "x.json").write_text('{"a": 1}')
    (src / "w.bin").write_bytes(bytes(3 * unixfs.CHUNK_SIZE // 2))
    out = tmp_path / "a.car"
    with out.open("wb") as fh:
        root, blocks = car.write_car(src, fh)
    assert str(root) == unixfs.cid_of(src) and blocks >= 4
    roots, found = car.read_car(out.read_bytes())
    assert [str(r) for r in roots] == [str(root)]
    car.unpack(roots[0], found, tmp_path / "back")
    assert (tmp_path / "back" / "sub" / "x.json").read_text() == '{"a": 1}'
    assert unixfs.cid_of(tmp_path / "back") == str(root)
    data = bytearray(out.read_bytes())
    data[-3] ^= 0xFF
    with pytest.raises(car.CarError, match="does not match its CID"):
        car.read_car(bytes(data))
    with pytest.raises(car.CarError):
        car.read_car(b"garbage")


def test_miss_then_hit_builds_once_and_ledger_records(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    build, calls = writer({"model.xml": b"<xml/>", "model.bin": b"\x01" * 100})
    ledger.drain()
    key = {"model": "bert", "seed": 0}
    with cache.artifact("ir", key, build) as p1:
        assert (p1 / "model.bin").read_bytes() == b"\x01" * 100
    with cache.artifact("ir", key, build) as p2:
        assert p2 == p1 and p2.name == unixfs.cid_of(p2)
    assert len(calls) == 1
    events = ledger.drain()
    assert [e["status"] for e in events] == ["miss", "hit"]
    assert events[1]["bytes"] == 106 and ledger.totals(events)["hits"] == 1
    (entry,) = cache.entries()
    assert entry.hits == 1 and entry.size == 106
    # a different key (another seed) is another entry, even with identical content (one object)
    with cache.artifact("ir", {**key, "seed": 1}, build) as p3:
        assert p3 == p1
    assert len(cache.entries()) == 2 and len(list((tmp_path / "objects").iterdir())) == 1


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "garbage-index", "extra-file", "typed-index", "path-index"])
def test_corruption_is_detected_evicted_and_rebuilt(tmp_path: Path, damage: str) -> None:
    cache = make_cache(tmp_path)
    files = {"model.xml": b"<net/>" * 10, "model.bin": bytes(range(200))}
    build, calls = writer(files)
    with cache.artifact("ir", {"m": 1}, build) as path:
        cid = path.name
    (entry,) = cache.entries()
    if damage == "truncate":
        (path / "model.bin").write_bytes(files["model.bin"][:50])
    elif damage == "flip":
        data = bytearray((path / "model.bin").read_bytes())
        data[7] ^= 0x10
        (path / "model.bin").write_bytes(bytes(data))
    elif damage == "delete":
        (path / "model.xml").unlink()
    elif damage == "extra-file":
        (path / "stray.txt").write_text("x")
    elif damage in {"typed-index", "path-index"}:  # well-formed JSON, wrong content
        index = tmp_path / "index" / f"{entry.key_id}.json"
        data = json.loads(index.read_text())
        data["cid"] = 12345 if damage == "typed-index" else "b/../../etc"
        index.write_text(json.dumps(data))
    else:
        (tmp_path / "index" / f"{entry.key_id}.json").write_text("{not json")
    ledger.drain()
    with cache.artifact("ir", {"m": 1}, build) as again:
        assert again.name == cid and unixfs.cid_of(again) == cid
        assert {p.name: p.read_bytes() for p in again.iterdir()} == files
    assert len(calls) == 2
    (event,) = ledger.drain()
    assert event["status"] == "replaced" and event["detail"]
    assert cache.verify() == []


def test_verify_reports_and_evicts(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    build, _ = writer({"a": b"1234"})
    with cache.artifact("k", {"n": 1}, build) as path:
        pass
    (path / "a").write_bytes(b"12")
    bad = cache.verify(evict=False)
    assert len(bad) == 1 and "CID mismatch" in bad[0][1]
    assert len(cache.verify()) == 1
    assert cache.entries() == [] and not path.exists()


def test_lru_eviction_keeps_the_bound(tmp_path: Path) -> None:
    now = [0.0]
    cache = make_cache(tmp_path, max_bytes=2500, clock=lambda: now[0])
    for i in range(3):  # 1000 bytes each; the third makes 3000 > 2500
        now[0] = float(i)
        build, _ = writer({"w": bytes([i]) * 1000})
        with cache.artifact("k", {"i": i}, build):
            pass
        if i == 1:
            now[0] = 1.5
            with cache.artifact("k", {"i": 0}, writer({"w": b"\x00" * 1000})[0]):
                pass  # touch entry 0: entry 1 is now the least recently used
    kept = sorted(e.key["i"] for e in cache.entries())
    assert kept == [0, 2]
    assert cache.total_bytes() <= 2500
    assert cache.gc(max_bytes=0) and cache.entries() == []


def test_no_cache_builds_every_time_and_leaves_nothing(tmp_path: Path) -> None:
    cache = Cache(CacheConfig(root=tmp_path, enabled=False))
    build, calls = writer({"a": b"x"})
    for _ in range(2):
        with cache.artifact("k", {"n": 1}, build) as path:
            assert (path / "a").read_bytes() == b"x"
        assert not path.exists()
    assert len(calls) == 2 and cache.entries() == []


def test_config_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("IPFS_ACCELERATE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("IPFS_ACCELERATE_CACHE_MAX_GB", "0.5")
    monkeypatch.setenv("IPFS_ACCELERATE_NO_CACHE", "1")
    cfg = CacheConfig.from_env()
    assert cfg.root == tmp_path / "xdg" / "ipfs-accelerate" / "artifacts"
    assert cfg.max_bytes == 2**29 and cfg.enabled is False
    monkeypatch.setenv("IPFS_ACCELERATE_CACHE", str(tmp_path / "own"))
    monkeypatch.setenv("IPFS_ACCELERATE_CACHE_MAX_GB", "-1")
    with pytest.raises(ValueError, match=">= 0"):
        CacheConfig.from_env()


def test_keys_refuse_absolute_paths_and_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    check_clean({"model": "bert", "file": "model.bin"})
    with pytest.raises(ValueError, match="absolute path"):
        check_clean({"model_id": "/opt/models/bert"})
    with pytest.raises(ValueError, match="home directory"):
        check_clean({"where": str(Path.home())})
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        check_clean({"header": "Bearer sk-test-0123456789"})
    cache = make_cache(tmp_path)
    with pytest.raises(ValueError):
        with cache.artifact("k", {"p": "/etc/passwd/x"}, writer({"a": b""})[0]):
            pass
    assert cache.entries() == []


def test_index_entry_stores_no_machine_paths(tmp_path: Path) -> None:
    cache = make_cache(tmp_path / "deep" / "root")
    with cache.artifact("k", {"n": 1}, writer({"a": b"z"})[0]):
        pass
    text = next((tmp_path / "deep" / "root" / "index").glob("*.json")).read_text()
    assert str(tmp_path) not in text and json.loads(text)["key"] == {"n": 1}
    assert json.loads(text)["key_id"] == key_id("k", {"n": 1})


def _worker(root: str, n: int, out: mp.Queue) -> None:
    cache = make_cache(Path(root))
    got = []
    for i in range(n):
        key = {"i": i % 4}
        payload = hashlib.sha256(str(i % 4).encode()).digest() * 2000
        build = writer({"w.bin": payload, "meta.json": b"{}"})[0]

        def counted(folder: Path, build=build, i=i) -> None:
            with open(Path(root) / "builds.log", "a") as fh:  # O_APPEND: one line per build
                fh.write(f"{i % 4}\n")
            build(folder)

        with cache.artifact("k", key, counted) as path:
            got.append((i % 4, path.name, (path / "w.bin").read_bytes() == payload))
    out.put(got)


def test_concurrent_processes_share_one_cache(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    q: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), 12, q)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    cids = {}
    for got in results:
        for i, cid, ok in got:
            assert ok
            assert cids.setdefault(i, cid) == cid  # every process saw the same content
    cache = make_cache(tmp_path)
    (tmp_path / "builds.log").rename(tmp_path.parent / f"{tmp_path.name}-builds.log")
    assert cache.verify() == [] and len(cache.entries()) == 4
    assert list((tmp_path / "tmp").iterdir()) == []
    # the per-key lock makes every other lookup wait for the one build and then hit
    assert sorted((tmp_path.parent / f"{tmp_path.name}-builds.log").read_text().split()) == ["0", "1", "2", "3"]


def test_report_section_shows_stage_results_and_totals() -> None:
    from ipfs_accelerate.cache.report import cache_section
    from ipfs_accelerate.results.schema import CacheUse, CaseResult, Metrics

    def case(model: str, *uses: CacheUse) -> CaseResult:
        return CaseResult(model=model, task="t", category="c", hardware="openvino", status="passed", metrics=Metrics(cache=list(uses)))

    lines = cache_section([
        case("bert", CacheUse(stage="openvino-ir", status="hit", cid="bafyhit", bytes=2**20, saved_s=1.5)),
        case("gpt2", CacheUse(stage="openvino-ir", status="replaced", cid="bafynew", detail="CID mismatch (content hashes to bafyx)")),
        case("t5"),
    ])
    text = "\n".join(lines)
    assert "Hits 1, misses 1 (of which replaced after a failed CID check: 1), 1.0 MiB read" in text
    assert "1.5 s of building saved" in text
    assert "| gpt2 | openvino | openvino-ir | **replaced**" in text and "CID mismatch" in text
    assert "| t5 |" not in text
    assert cache_section([case("t5")]) == []


def run_cli(*argv: str) -> int:
    import argparse

    from ipfs_accelerate.cache import cli

    parser = argparse.ArgumentParser()
    cli.configure(parser)
    return cli.main(parser.parse_args(list(argv)))


def test_cli_ls_verify_gc_export_import(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IPFS_ACCELERATE_IPFS_API", raising=False)
    root = tmp_path / "c"
    cache = make_cache(root)
    for i in range(2):
        with cache.artifact("openvino-ir", {"i": i}, writer({"model.bin": bytes([i]) * 10})[0]) as path:
            pass
    assert run_cli("--cache-dir", str(root), "ls") == 0
    out = capsys.readouterr().out
    assert out.count("openvino-ir") == 2 and "2 entries" in out
    assert run_cli("--cache-dir", str(root), "export", str(tmp_path / "x.car")) == 0
    assert run_cli("--cache-dir", str(tmp_path / "fresh"), "import", str(tmp_path / "x.car")) == 0
    assert "2 added" in capsys.readouterr().out
    assert run_cli("--cache-dir", str(tmp_path / "fresh"), "import", str(tmp_path / "missing.car")) == 2
    (tmp_path / "bad.car").write_bytes(b"\x05hello")
    assert run_cli("--cache-dir", str(tmp_path / "fresh"), "import", str(tmp_path / "bad.car")) == 1
    assert "CarError" in capsys.readouterr().err
    (path / "model.bin").write_bytes(b"tampered")
    assert run_cli("--cache-dir", str(root), "verify", "--keep") == 1
    assert run_cli("--cache-dir", str(root), "verify") == 1
    assert "evicted" in capsys.readouterr().out
    assert run_cli("--cache-dir", str(root), "verify") == 0
    assert run_cli("--cache-dir", str(root), "gc", "--max-gb", "0") == 0
    assert "evicted 1 entries" in capsys.readouterr().out
    assert run_cli("--cache-dir", str(root), "push") == 2
    assert "no IPFS node configured" in capsys.readouterr().err
