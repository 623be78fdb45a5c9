"""Which warm server a run may use: one server per *key* (interpreter, environment, working
directory, thread count, preload groups, and the files of this package and of its heavy
dependencies), so a fork never runs stale code. See `warm.py`."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parents[1]
THIRD_PARTY = ("torch", "transformers", "openvino", "pytest", "pluggy")


def _tree_fingerprint(root: Path) -> list[tuple[str, int, int]]:
    out = []
    for p in sorted(root.rglob("*.py")):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((str(p.relative_to(root)), st.st_mtime_ns, st.st_size))
    return out


def _third_party_fingerprint() -> list[tuple[str, str, int]]:
    """Top-level files of the heavy dependencies (found without importing them)."""
    out = []
    for name in THIRD_PARTY:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None)
        if origin:
            st = os.stat(origin)
            dist = Path(origin).parent
            out.append((name, origin, st.st_mtime_ns + dist.stat().st_mtime_ns))
        else:
            out.append((name, "", 0))
    return out


# Shell bookkeeping that differs between two invocations of the same command (`_` is the
# program bash ran: `flock ... python` vs `python`). Not part of the key; a forked worker gets
# the runner's exact environment anyway (applied after the fork).
VOLATILE_ENV = frozenset({"_", "OLDPWD", "PWD", "SHLVL", "COLUMNS", "LINES", "PS1", "PS2", "PROMPT_COMMAND",
                          "HISTFILE", "HISTSIZE", "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "TERM_SESSION_ID", "WINDOWID"})


def server_key(env: dict[str, str], cwd: Path, preload: list[str], threads: int) -> str:
    """Everything a forked worker inherits instead of computing it itself: the environment the
    imports saw (e.g. HF_HUB_OFFLINE is read at import), the code, the interpreter."""
    h = hashlib.sha256()
    stable = sorted((k, v) for k, v in env.items() if k not in VOLATILE_ENV)
    parts: list[Any] = [sys.executable, sys.version, str(cwd.resolve()), stable, sorted(preload), threads,
                        _tree_fingerprint(PACKAGE_DIR), _third_party_fingerprint()]
    h.update(json.dumps(parts, default=str).encode())
    return h.hexdigest()[:20]


def socket_dir() -> Path:
    """$IPFS_ACCELERATE_WARM_DIR, else a per-user folder in the temp dir (AF_UNIX paths are
    limited to ~107 bytes, so a long temp dir falls back to /tmp)."""
    base = os.environ.get("IPFS_ACCELERATE_WARM_DIR")
    d = Path(base) if base else Path(tempfile.gettempdir()) / f"ipfs-accelerate-warm-{os.getuid()}"
    if len(str(d)) > 80:
        d = Path("/tmp") / f"ipfs-accelerate-warm-{os.getuid()}"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d
