"""The artifact store: key -> verified, content-addressed folder.

Layout under the cache root (`IPFS_ACCELERATE_CACHE`, else `$XDG_CACHE_HOME/ipfs-accelerate/artifacts`):

    objects/<cid>/...   one artifact folder, named by its UnixFS CIDv1 (unixfs.py)
    index/<key-id>.json what the key was, its CID, size, build seconds, last use, hits
    locks/<key-id>.lock flock: exclusive while building/evicting, shared while a reader uses it
    tmp/                builds and imports in progress (renamed into objects/ when complete)

Why per-entry index files and not one index: several workers and runs update them at once; one
small file per key is written atomically (temp + rename) under that key's lock, and a garbage
entry costs one key, not the cache. Every read recomputes the CID of the folder it is about to
hand out; a mismatch (truncated, altered, missing file) evicts the entry and rebuilds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..results._io import write_atomic as _write_atomic  # seam(history-2): the one atomic write
from . import ledger, unixfs

DEFAULT_MAX_GB = 5.0
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)


class CacheError(RuntimeError):
    """A cache operation could not complete; the message says what and where (relative to the root)."""


def default_root() -> Path:
    env = os.environ.get("IPFS_ACCELERATE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "ipfs-accelerate" / "artifacts"


@dataclass
class CacheConfig:
    root: Path = field(default_factory=default_root)
    max_bytes: int = int(DEFAULT_MAX_GB * 2**30)
    enabled: bool = True

    @classmethod
    def from_env(cls) -> CacheConfig:
        """`--no-cache` / `--cache-max-gb` reach workers as IPFS_ACCELERATE_NO_CACHE / _CACHE_MAX_GB."""
        gb = float(os.environ.get("IPFS_ACCELERATE_CACHE_MAX_GB") or DEFAULT_MAX_GB)
        if gb < 0:
            raise ValueError(f"IPFS_ACCELERATE_CACHE_MAX_GB must be >= 0, got {gb}")
        off = os.environ.get("IPFS_ACCELERATE_NO_CACHE", "").lower() in {"1", "true", "yes"}
        return cls(root=default_root(), max_bytes=int(gb * 2**30), enabled=not off)


@dataclass
class Entry:
    """One index record. `key` is the full key material (no secrets, no absolute paths)."""

    key_id: str
    kind: str
    key: dict[str, Any]
    cid: str
    size: int
    build_s: float
    created: float
    last_used: float
    hits: int = 0

    @classmethod
    def parse(cls, text: str, key_id: str) -> Entry:
        data = json.loads(text)
        entry = cls(**{k: data[k] for k in cls.__dataclass_fields__})
        types = {"kind": str, "key": dict, "cid": str, "size": int, "build_s": (int, float),
                 "created": (int, float), "last_used": (int, float), "hits": int}
        if any(not isinstance(getattr(entry, k), t) for k, t in types.items()):
            raise ValueError("index entry has a field of the wrong type")
        if entry.key_id != key_id or not entry.cid.startswith("b") or "/" in entry.cid:
            raise ValueError("index entry does not describe its own key")
        return entry


def canonical(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)


def key_id(kind: str, key: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({"kind": kind, **key}).encode()).hexdigest()[:32]


def check_clean(key: dict[str, Any]) -> None:
    """Refuse key material that holds an absolute path or the value of a secret-looking env var:
    the cache is shared between machines (export / push), so it must not leak either."""
    text = canonical(key)
    home = str(Path.home())
    if len(home) > 1 and home in text:
        raise ValueError("cache key contains the home directory; use a path relative to the artifact")
    if re.search(r'"(/[^"/]+){2,}"|"[A-Za-z]:\\\\', text):
        raise ValueError("cache key contains an absolute path")
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) and len(value) >= 8 and value in text:
            raise ValueError(f"cache key contains the value of ${name}")


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


class Cache:
    def __init__(self, config: CacheConfig | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config = config or CacheConfig.from_env()
        self.root = self.config.root
        self.clock = clock
        for sub in ("objects", "index", "locks", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # ---- locking --------------------------------------------------------------------------
    @contextmanager
    def _lock(self, kid: str, shared: bool = False, blocking: bool = True) -> Iterator[bool]:
        with open(self.root / "locks" / f"{kid}.lock", "a+") as fh:
            mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
            try:
                fcntl.flock(fh, mode | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ---- index ----------------------------------------------------------------------------
    def _index_path(self, kid: str) -> Path:
        return self.root / "index" / f"{kid}.json"

    def object_path(self, cid: str) -> Path:
        return self.root / "objects" / cid

    def read_entry(self, kid: str) -> tuple[Entry | None, str]:
        """(entry, problem): problem is '' when the entry is absent or sound."""
        path = self._index_path(kid)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None, ""
        except OSError as exc:
            return None, f"index unreadable: {exc}"
        try:
            return Entry.parse(text, kid), ""
        except (ValueError, TypeError, KeyError) as exc:
            return None, f"index entry is garbage ({type(exc).__name__})"

    def _write_entry(self, entry: Entry) -> None:
        _write_atomic(self._index_path(entry.key_id), json.dumps(asdict(entry), indent=1, sort_keys=True))

    def entries(self) -> list[Entry]:
        out = []
        for path in sorted((self.root / "index").glob("*.json")):
            entry, _ = self.read_entry(path.stem)
            if entry is not None:
                out.append(entry)
        return out

    def problem(self, entry: Entry) -> str:
        """'' when the object's recomputed CID equals the indexed one, else what is wrong."""
        path = self.object_path(entry.cid)
        if not path.exists():
            return "object missing"
        try:
            actual = unixfs.cid_of(path)
        except (OSError, ValueError) as exc:
            return f"object unreadable: {exc}"
        return "" if actual == entry.cid else f"CID mismatch (content hashes to {actual})"

    def _drop(self, kid: str, cid: str | None) -> None:
        """Remove an entry (caller holds its exclusive lock); its object too unless another key uses it."""
        self._index_path(kid).unlink(missing_ok=True)
        if cid and not any(e.cid == cid for e in self.entries()):
            obj = self.object_path(cid)
            if obj.is_dir():
                shutil.rmtree(obj, ignore_errors=True)
            else:
                obj.unlink(missing_ok=True)

    # ---- the one read/build path ----------------------------------------------------------
    @contextmanager
    def artifact(self, kind: str, key: dict[str, Any], build: Callable[[Path], None]) -> Iterator[Path]:
        """Yield a verified folder for (kind, key), building it with `build(folder)` on a miss.

        The folder stays valid (no eviction can remove it) until the `with` block ends. A corrupt
        entry is reported in the ledger as 'replaced', evicted and rebuilt. With the cache
        disabled, `build` runs into a temporary folder that is removed afterwards.
        """
        if not self.config.enabled:
            with tempfile.TemporaryDirectory(prefix="ipfs-accel-nocache-") as tmp:
                start = time.perf_counter()
                build(Path(tmp))
                ledger.record(kind, "off", build_s=time.perf_counter() - start)
                yield Path(tmp)
            return
        check_clean(key)
        kid = key_id(kind, key)
        outcome, detail = "hit", ""
        for _ in range(3):
            with self._lock(kid, shared=True):
                start = time.perf_counter()
                entry, problem = self.read_entry(kid)
                if entry is not None and not problem:
                    problem = self.problem(entry)
                if entry is not None and not problem:
                    if outcome == "hit":
                        self._touch(kid)
                        saved = max(0.0, entry.build_s - (time.perf_counter() - start))
                        ledger.record(kind, "hit", cid=entry.cid, size=entry.size, saved_s=saved)
                    else:
                        ledger.record(kind, outcome, cid=entry.cid, size=entry.size, build_s=entry.build_s, detail=detail)
                    yield self.object_path(entry.cid)
                    return
            with self._lock(kid):
                entry, problem = self.read_entry(kid)
                if entry is not None and not problem:
                    problem = self.problem(entry)
                if entry is not None and not problem:
                    continue  # another worker built it while we waited: a hit
                if problem:
                    self._drop(kid, entry.cid if entry else None)
                    outcome, detail = "replaced", problem
                elif outcome == "hit":
                    outcome = "miss"
                self._build(kind, key, kid, build)
        raise CacheError(f"artifact {kind} {kid}: the built entry failed verification three times")

    def _build(self, kind: str, key: dict[str, Any], kid: str, build: Callable[[Path], None]) -> None:
        tmp = Path(tempfile.mkdtemp(dir=self.root / "tmp", prefix=f"{kid}."))
        try:
            out = tmp / "artifact"
            out.mkdir()
            start = time.perf_counter()
            build(out)
            build_s = time.perf_counter() - start
            cid = unixfs.cid_of(out)
            dest = self.object_path(cid)
            if dest.exists() and unixfs.cid_of(dest) != cid:
                shutil.rmtree(dest, ignore_errors=True)
            if not dest.exists():
                os.replace(out, dest)
            now = self.clock()
            size = dir_size(dest)
            self._write_entry(Entry(kid, kind, key, cid, size, build_s, now, now, 0))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.gc(keep=kid)

    def _touch(self, kid: str) -> None:
        """Record a use (LRU time, hit count); a lost race only loses one count, never the entry."""
        entry, _ = self.read_entry(kid)
        if entry is None:
            return
        entry.last_used = self.clock()
        entry.hits += 1
        try:
            self._write_entry(entry)
        except OSError:
            pass

    # ---- maintenance ----------------------------------------------------------------------
    def verify(self, evict: bool = True) -> list[tuple[str, str]]:
        """Recompute every entry's CID; returns (key-id, problem) and evicts the bad ones."""
        bad: list[tuple[str, str]] = []
        for path in sorted((self.root / "index").glob("*.json")):
            kid = path.stem
            with self._lock(kid):
                entry, problem = self.read_entry(kid)
                if entry is not None:
                    problem = self.problem(entry)
                if problem:
                    bad.append((kid, problem))
                    if evict:
                        self._drop(kid, entry.cid if entry else None)
        if evict:
            referenced = {e.cid for e in self.entries()}
            for obj in (self.root / "objects").iterdir():
                if obj.name not in referenced:
                    shutil.rmtree(obj, ignore_errors=True) if obj.is_dir() else obj.unlink(missing_ok=True)
        return bad

    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries())

    def gc(self, max_bytes: int | None = None, keep: str = "") -> list[Entry]:
        """Evict least-recently-used entries until the total is within the bound; entries in use
        (a reader's shared lock) and `keep` are skipped."""
        limit = self.config.max_bytes if max_bytes is None else max_bytes
        entries = sorted(self.entries(), key=lambda e: e.last_used)
        total = sum(e.size for e in entries)
        evicted = []
        for entry in entries:
            if total <= limit:
                break
            if entry.key_id == keep:
                continue
            with self._lock(entry.key_id, blocking=False) as got:
                if not got:
                    continue
                self._drop(entry.key_id, entry.cid)
            total -= entry.size
            evicted.append(entry)
        for stale in (self.root / "tmp").iterdir():  # builds that died (no lock holder)
            kid = stale.name.split(".")[0]
            with self._lock(kid, blocking=False) as got:
                if got and self.clock() - stale.stat().st_mtime > 3600:
                    shutil.rmtree(stale, ignore_errors=True)
        return evicted
