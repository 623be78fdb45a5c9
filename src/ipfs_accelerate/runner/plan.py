"""Plan a run before anything executes: the selection (from options or explicit paths), the test
files, the pytest arguments every worker and collector shares, the worker environment, and the
batches (one file's remaining tests each, longest first).

Kept apart from `core.py` (which orchestrates) and `record.py` (which keeps per-test results) so
an executor other than the local pool (e.g. Ray, `ray_executor.py`) can reuse the same plan.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..results.plain import Selection
from .pool import Batch
from .selection import UsageError, check_hardware, resolve

if TYPE_CHECKING:  # pydantic loads only once the workers are launched
    from ..results.run import TestFacets


def impl_tag(name: str) -> str:
    from .impl import impl_tag as tag

    try:
        return tag(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@dataclass
class RunOptions:
    """Everything `ipfs-accelerate run` accepts, after argparse."""

    test_dir: Path | None = None
    paths: list[str] = field(default_factory=list)
    type: str = "all"
    models: list[str] = field(default_factory=list)
    apis: list[str] = field(default_factory=list)
    category: str = "all"
    registry: str = "all"
    limit: int | None = None
    hardware: list[str] = field(default_factory=lambda: ["cpu", "cuda", "openvino"])
    impl_type: str = "all"
    keyword: str | None = None
    workers: int | None = None
    timeout: float = 300.0
    max_memory_mb: float | None = None
    recycle_after: int = 50
    threads: int = 1
    warm: float = 0.0
    verbose: bool = False
    report: Path | None = None
    output_dir: Path = Path("test_results")
    run_id: str | None = None
    benchmark: bool = False
    scale: str = "tiny"  # seam(scale)
    resume: str | None = None
    shard: str | None = None
    durations_from: Path | None = None
    preload: str = "auto"
    plain: bool | None = None
    collect_only: bool = False
    executor: str = "local"  # local: this machine's pool; ray: tasks on a Ray cluster (ray_executor.py)
    address: str | None = None  # the Ray cluster (default: $RAY_ADDRESS, else "auto")
    history: Path | None = None  # history database (default <output_dir>/history.sqlite)
    baseline: str | None = None  # compare the finished run with this run (id, ~N, previous, or a results.json)
    fail_on: str = ""  # comma-separated compare findings that make the run exit 1
    argv: list[str] = field(default_factory=list)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def total_memory_mb() -> float:
    """Physical memory (sysconf: no psutil needed to plan a run)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (AttributeError, ValueError, OSError):  # not POSIX
        import psutil

        return float(psutil.virtual_memory().total / 2**20)


def _plugin_registered() -> bool:
    return any(ep.value == "ipfs_accelerate.pytest_plugin" for ep in metadata.entry_points(group="pytest11"))


def _compact(files: list[str], test_dir: Path) -> list[str]:
    """A folder instead of its files when every Python file in it is selected: pytest lists the
    parent folder once per file argument (34 files: 1,122 collect_file calls; collection took
    0.26 s vs 0.18 s for the folder in a warm process), once per folder argument."""
    by_dir: dict[Path, list[str]] = {}
    for f in files:
        by_dir.setdefault((test_dir / f).parent, []).append(f)
    out: list[str] = []
    for d, chosen in by_dir.items():
        try:
            entries = list(d.iterdir())
        except OSError:
            entries = []
        subdirs = [e for e in entries if e.is_dir() and e.name != "__pycache__"]
        modules = {e.name for e in entries if e.suffix == ".py" and e.name not in ("conftest.py", "__init__.py")}
        if len(chosen) > 1 and not subdirs and modules == {Path(f).name for f in chosen}:
            out.append(str(d))
        else:
            out += [str(test_dir / f) for f in chosen]
    return out


def pytest_args(sel: Selection, test_dir: Path) -> list[str]:
    """Files first (`--hardware` takes several values), then options shared by collector and workers."""
    args = _compact(list(sel.files), test_dir)
    args += ["--rootdir", str(test_dir), "-o", "addopts=", "-p", "no:cacheprovider", "--continue-on-collection-errors",
             "--capture=tee-sys", "-q", "--no-header", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if not _plugin_registered():  # running from a source checkout without `pip install -e .`
        args += ["-p", "ipfs_accelerate.pytest_plugin"]
    if sel.hardware:
        args += ["--hardware", *sel.hardware]
    args += ["--impl-type", sel.impl_type]
    if sel.benchmark:
        args.append("--benchmark-cases")
    if sel.keyword:
        args += ["-k", sel.keyword]
    return args + list(sel.pytest_args)


def worker_env(threads: int) -> dict[str, str]:
    """One thread per runtime per worker (oversubscribing 2 cores made BERT 100x slower), no hub."""
    import ipfs_accelerate

    env = dict(os.environ)
    pkg_root = str(Path(ipfs_accelerate.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
    n = str(threads)
    env.update({
        "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "NUMEXPR_NUM_THREADS": n,
        "IPFS_ACCEL_THREADS": n, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
    })
    return env


def collect(sel: Selection, test_dir: Path, env: dict[str, str]) -> tuple[list[TestFacets], list[dict[str, Any]]]:
    """Collect in a child process; if it dies, collect file by file to name the culprit."""
    if not sel.files:
        return [], []
    items, problems, ok = _collect_files(sel, test_dir, env, sel.files)
    if ok:
        return items, problems
    items, problems = [], []
    for f in sel.files:
        one = dataclasses.replace(sel, files=[f])
        i, p, ok = _collect_files(one, test_dir, env, [f])
        if ok:
            items += i
            problems += p
        else:
            problems.append({"nodeid": f, "status": "crashed", "reason": "collection crashed the collector process", "output": p[0]["output"] if p else ""})
    return items, problems


def _collect_files(sel: Selection, test_dir: Path, env: dict[str, str], files: list[str]) -> tuple[list[TestFacets], list[dict[str, Any]], bool]:
    with tempfile.TemporaryDirectory(prefix="ipfs-collect-") as tmp:
        out = Path(tmp) / "items.json"
        cmd = [sys.executable, "-m", "ipfs_accelerate.runner.collect", "--out", str(out), "--", *pytest_args(sel, test_dir)]
        proc = subprocess.run(cmd, cwd=os.getcwd(), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", start_new_session=True)  # a terminal Ctrl-C is the runner's to handle
        if not out.exists():
            return [], [{"output": (proc.stdout + proc.stderr)[-4000:]}], False
        data = json.loads(out.read_text(encoding="utf-8"))
    if data["rc"] in (3, 4) and not data["items"]:  # pytest internal/usage error: not a test result
        raise UsageError(f"pytest could not collect the selection (exit {data['rc']}):\n{(proc.stdout + proc.stderr)[-2000:]}")
    from ..results.run import TestFacets

    return [TestFacets(**i) for i in data["items"]], data["problems"], True


def _unit_order(ids: list[str], items: dict[str, TestFacets]) -> list[str]:
    """Group a file's tests by (hardware, impl) unit, keeping pytest's order inside each unit."""
    first: dict[str, int] = {}
    for i, nid in enumerate(ids):
        first.setdefault(items[nid].unit, i)
    return sorted(ids, key=lambda nid: (first[items[nid].unit], ids.index(nid)))


def selection(o: RunOptions, test_dir: Path) -> Selection:
    """What to run, from the options (registry names) or explicit test paths."""
    hardware = check_hardware(o.hardware)
    impl = impl_tag(o.impl_type)
    if o.paths:
        if o.models or o.apis or o.category != "all" or o.limit is not None or o.registry != "all":
            raise UsageError("explicit test paths cannot be combined with --models/--apis/--category/--limit")
        files = []
        for p in o.paths:
            try:
                path = Path(p).resolve()
                exists = path.exists()
            except (OSError, ValueError) as exc:  # an embedded NUL, a name too long
                raise UsageError(f"bad test path {p!r}: {exc}") from None
            if not exists:
                raise UsageError(f"no such test file or folder: {p}")
            files.append(path.relative_to(test_dir).as_posix() if path.is_relative_to(test_dir) else str(path))
        return Selection(type=o.type, hardware=hardware, impl_type=impl, keyword=o.keyword, benchmark=o.benchmark,
                         shard=o.shard, test_dir=str(test_dir), files=files, paths=list(o.paths))
    res = resolve(test_dir, o.type, o.models, o.apis, o.category, o.limit, o.registry)
    explicit = set(o.models) | set(o.apis)
    missing_explicit = [m for m in res.missing if m in explicit]
    if missing_explicit:
        kind = "--type model --models" if set(missing_explicit) & set(o.models) else "--type api --apis"
        raise UsageError(
            f"no generated test file for {', '.join(missing_explicit)} under {test_dir}; "
            f"generate it first: python generate_unified_test.py {kind} {' '.join(missing_explicit)}"
        )
    return Selection(
        missing=res.missing,
        type=o.type, models=list(o.models), apis=list(o.apis), category=o.category, limit=o.limit,
        registry=o.registry, hardware=hardware, impl_type=impl, keyword=o.keyword, benchmark=o.benchmark, shard=o.shard,
        test_dir=str(test_dir), files=[p.relative_to(test_dir).as_posix() for p in res.files],
    )


def preload_groups(o: RunOptions, sel: Selection) -> list[str]:
    """Model test files get torch/transformers/OpenVINO imported before their first test."""
    if o.preload != "auto":
        return [g for g in o.preload.split(",") if g and g != "none"]
    if not any("skills" in Path(f).parts or Path(f).name.startswith("test_hf_") for f in sel.files):
        return []
    groups = ["torch", "transformers", "harness"]
    if "openvino" in sel.hardware:
        groups.append("openvino")
    return groups


def batches(todo: list[TestFacets], by_id: dict[str, TestFacets], output_dir: Path, run_dir: Path) -> list[Batch]:
    """One batch per file (its tests grouped by unit), weighted by recorded durations, longest first."""
    from . import shard as shard_mod

    per_file: dict[str, list[str]] = {}
    for it in todo:
        per_file.setdefault(it.file, []).append(it.nodeid)
    hist_run = shard_mod.latest_results(output_dir, exclude=run_dir)
    history = shard_mod.durations_by_file(hist_run)
    weights = shard_mod.weights({f: len(ids) for f, ids in per_file.items()}, history)
    out = [Batch(f, _unit_order(ids, by_id), weights[f]) for f, ids in per_file.items()]
    out.sort(key=lambda b: (-b.est_s, b.file))  # longest first: the tail of the run stays short
    return out
