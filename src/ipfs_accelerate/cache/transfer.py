"""Move a cache between machines: CAR export/import, and push/pull through an IPFS node.

An export is one UnixFS folder — `index/<key-id>.json` + `objects/<cid>/...` — packed as a CAR, so
`ipfs-car unpack` or any IPFS node reads it. Import trusts nothing in it: every block is checked
against its CID while reading, every object's folder CID is recomputed, every index entry must
hash to its own key id, name an object that is present and hold no secrets or absolute paths.
push/pull speak Kubo's HTTP RPC (`/api/v0/dag/import`) and the trustless gateway
(`/ipfs/<cid>?format=car`), so a real kubo node or scripts/ipfs/peer.mjs both work.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from multiformats import CID

from . import car, unixfs
from .store import Cache, Entry, check_clean, key_id


@dataclass
class ImportReport:
    root: str
    added: int = 0  # index entries written
    present: int = 0  # entries this cache already had (kept)
    rejected: list[str] | None = None  # why each refused object / entry was refused


def _stage(cache: Cache, dest: Path, kinds: set[str] | None = None) -> int:
    (dest / "index").mkdir(parents=True)
    (dest / "objects").mkdir()
    n = 0
    for entry in cache.entries():
        if kinds and entry.kind not in kinds:
            continue
        if cache.problem(entry):
            continue  # never export what fails verification
        src = cache.object_path(entry.cid)
        target = dest / "objects" / entry.cid
        if not target.exists():
            shutil.copytree(src, target, copy_function=os.link) if src.is_dir() else os.link(src, target)
        exported = Entry(**{**asdict(entry), "hits": 0})
        (dest / "index" / f"{entry.key_id}.json").write_text(json.dumps(asdict(exported), indent=1, sort_keys=True))
        n += 1
    return n


def export_car(cache: Cache, out: Path, kinds: set[str] | None = None) -> tuple[str, int]:
    """Write the verified entries (optionally only `kinds`) as a CAR; returns (root CID, entries)."""
    with tempfile.TemporaryDirectory(dir=cache.root / "tmp") as tmp:
        folder = Path(tmp) / "export"
        n = _stage(cache, folder, kinds)
        part = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with part.open("wb") as fh:
                root, _ = car.write_car(folder, fh)
            os.replace(part, out)
        finally:
            part.unlink(missing_ok=True)
    return str(root), n


def import_car_bytes(cache: Cache, data: bytes, expect_root: str | None = None) -> ImportReport:
    roots, blocks = car.read_car(data)
    if len(roots) != 1:
        raise car.CarError(f"expected one root in the CAR, found {len(roots)}")
    root = roots[0]
    if expect_root and str(root) != str(CID.decode(expect_root).set(base="base32")):
        raise car.CarError(f"CAR root {root} is not the requested {expect_root}")
    report = ImportReport(root=str(root), rejected=[])
    with tempfile.TemporaryDirectory(dir=cache.root / "tmp") as tmp:
        folder = Path(tmp) / "import"
        car.unpack(root, blocks, folder)
        for obj in sorted((folder / "objects").iterdir()) if (folder / "objects").is_dir() else []:
            actual = unixfs.cid_of(obj)
            if actual != obj.name:
                report.rejected.append(f"object {obj.name}: content hashes to {actual}")
                shutil.rmtree(obj) if obj.is_dir() else obj.unlink()
                continue
            dest = cache.object_path(obj.name)
            if not dest.exists():
                os.replace(obj, dest)
        for path in sorted((folder / "index").glob("*.json")) if (folder / "index").is_dir() else []:
            kid = path.stem
            try:
                entry = Entry.parse(path.read_text(), kid)
                if key_id(entry.kind, entry.key) != kid:
                    raise ValueError("key id does not match its key")
                check_clean(entry.key)
            except (ValueError, TypeError, KeyError) as exc:
                report.rejected.append(f"index {kid}: {exc}")
                continue
            if not cache.object_path(entry.cid).exists():
                report.rejected.append(f"index {kid}: object {entry.cid} missing")
                continue
            with cache._lock(kid):
                current, problem = cache.read_entry(kid)
                if current is not None and not problem and not cache.problem(current):
                    report.present += 1
                    continue
                now = cache.clock()
                cache._write_entry(Entry(**{**asdict(entry), "hits": 0, "last_used": now, "created": now}))
                report.added += 1
    cache.gc()
    return report


def import_car(cache: Cache, path: Path) -> ImportReport:
    return import_car_bytes(cache, path.read_bytes())


def push(cache: Cache, api: str, kinds: set[str] | None = None, timeout: float = 60.0) -> tuple[str, int]:
    """Export and POST the CAR to a node's `/api/v0/dag/import`; returns (root CID, entries)."""
    with tempfile.TemporaryDirectory(dir=cache.root / "tmp") as tmp:
        path = Path(tmp) / "cache.car"
        root, n = export_car(cache, path, kinds)
        boundary = uuid.uuid4().hex
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cache.car\"\r\n"
            "Content-Type: application/vnd.ipld.car\r\n\r\n"
        ).encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(
        api.rstrip("/") + "/api/v0/dag/import?pin-roots=true",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        lines = [json.loads(x) for x in resp.read().decode().splitlines() if x.strip()]
    got = {line.get("Root", {}).get("Cid", {}).get("/") for line in lines}
    if root not in got:
        raise RuntimeError(f"node did not confirm root {root} (answered {sorted(map(str, got))})")
    return root, n


def pull(cache: Cache, gateway: str, cid: str, timeout: float = 60.0) -> ImportReport:
    """Fetch `cid` as a CAR from a trustless gateway and import it (every block verified)."""
    req = urllib.request.Request(
        f"{gateway.rstrip('/')}/ipfs/{cid}?format=car", headers={"Accept": "application/vnd.ipld.car"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        data = resp.read()
    return import_car_bytes(cache, data, expect_root=cid)
