"""Launch a real KServe v2 ``ModelServer`` (kserve package) for the ``ovms`` provider tests.

OpenVINO Model Server is not installable here; KServe's server speaks the same Open Inference
Protocol v2 REST API (ready, metadata, infer with typed tensors), written by another team, so it
judges our ``ovms`` client independently of our own fake server.

kserve runs from its own interpreter (see ``scripts/setup_api_peers.sh``), found via
``IPFS_ACCEL_KSERVE_PYTHON``, then ``$IPFS_ACCEL_KSERVE_VENV/bin/python`` (default
``~/.cache/ipfs-accelerate/kserve-venv``), then the current interpreter if it has kserve.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from ._proc import ChildPeer, PeerError

APP = Path(__file__).with_name("_kserve_app.py")
# Same constants as _kserve_app.py (that file cannot import us); a test pins them equal.
TINY_W = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32)
TINY_B = np.array([0.5, -0.5, 0.0], dtype=np.float32)


def kserve_python() -> str | None:
    """The interpreter that can import kserve, or None."""
    explicit = os.environ.get("IPFS_ACCEL_KSERVE_PYTHON")
    if explicit:
        return explicit
    venv = Path(
        os.environ.get(
            "IPFS_ACCEL_KSERVE_VENV", Path.home() / ".cache" / "ipfs-accelerate" / "kserve-venv"
        )
    )
    cand = venv / "bin" / "python"
    if cand.exists():
        return str(cand)
    if importlib.util.find_spec("kserve") is not None:
        return sys.executable
    return None


def kserve_skip_reason() -> str | None:
    py = kserve_python()
    if py is None:
        return "kserve peer not installed (no kserve venv); run scripts/setup_api_peers.sh"
    # find_spec, not ``import kserve``: the import costs ~2 s of CPU per check, and a kserve that
    # is present but broken fails the server start loudly (with its log tail) instead of skipping.
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('kserve') is None)"
    try:
        rc = subprocess.run([py, "-c", probe], capture_output=True, timeout=60).returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"kserve python {py} unusable: {exc}"
    return None if rc == 0 else f"kserve not importable by {py}; run scripts/setup_api_peers.sh"


class KServeServer(ChildPeer):
    """Context manager: ``with KServeServer() as ks: ks.base_url`` (models ``tiny``, ``echo``)."""

    name = "kserve"

    def __init__(self, *, startup_timeout: float = 60.0, python: str | None = None) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.python = python

    @property
    def base_url(self) -> str:
        return self.root_url

    def start(self) -> KServeServer:
        py = self.python or kserve_python()
        if py is None:
            raise PeerError(kserve_skip_reason() or "kserve not found")
        return self._launch(
            lambda port: [py, str(APP), "--port", str(port)],
            lambda port: f"http://127.0.0.1:{port}/v2/models/tiny/ready",
        )
