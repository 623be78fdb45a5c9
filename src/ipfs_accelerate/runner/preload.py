"""What a worker process does before pytest starts, shared by cold workers (`worker.py`) and the
warm server that forks them (`warm_server.py`): import the heavy runtimes, describe the hardware,
measure its own memory."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any


def preload(groups: list[str], threads: int, fork_safe: bool = False) -> float:
    """Import what every model test needs before the first test, with one thread per runtime.

    `fork_safe` (the warm server, which forks workers): imports only — no thread settings, no
    OpenVINO (its library starts a thread on load) — so the process stays single-threaded; each
    forked worker preloads again, which costs only what was left out.
    """
    start = time.perf_counter()
    if "torch" in groups:
        import torch

        if not fork_safe:
            torch.set_num_threads(threads)
            try:
                torch.set_num_interop_threads(threads)
            except RuntimeError:  # already set (a parallel region ran)
                pass
    if "transformers" in groups:
        import transformers  # noqa: F401
        import transformers.modeling_utils  # noqa: F401
        from transformers import AutoConfig, AutoModel  # noqa: F401
    if "openvino" in groups and not fork_safe:
        try:
            from ..hardware.backends.openvino import core

            core()
        except Exception:  # the test itself reports OpenVINO's absence as a skip
            pass
    if "harness" in groups:
        from ..harness import build, case  # noqa: F401
        from ..testing import model_tests  # noqa: F401
    return time.perf_counter() - start


def hardware_info(groups: list[str]) -> dict[str, Any]:
    """What the run's report shows as its hardware; asked of one worker per run."""
    try:  # the full probe imports torch: only where the preload paid for it already
        from ..hardware.detect import detect, probe_cpu

        return detect().to_dict() if "torch" in groups else {"cpu": asdict(probe_cpu())}
    except Exception as exc:  # detection must never stop a run
        return {"error": f"{type(exc).__name__}: {exc}"}


def own_rss_mb() -> float | None:
    """This process's RSS, or None without psutil (the runner then records the cap as off; any
    other failure propagates — a silent 0 would disable the memory cap)."""
    try:
        import psutil
    except ImportError:
        return None
    return float(psutil.Process().memory_info().rss / 2**20)
