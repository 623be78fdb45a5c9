"""`run --executor ray [--address ADDR]`: the run's batches as Ray tasks on an existing cluster.

Ray schedules and places; this module keeps the runner's guarantees. Each Ray task gets a few
test files of one hardware (sized from recorded durations) and the resources that hardware needs
(`HARDWARE_RESOURCES`: `num_gpus` for CUDA, the custom resource `openvino` for OpenVINO). Inside
the task runs the *same* local `Pool` with one worker — the same pytest worker process, per-test
timeout, memory cap, crash isolation and recycling as `--executor local` — and the task streams
the pool's messages back as a Ray generator (`protocol.encode`d lines), so results reach the
store, progress bar and reports as they happen.

If the Ray task itself dies (its process killed, its node lost), the test it held is recorded
`crashed` with Ray's error and the rest of its tests go into a new task, which Ray may place on
another node; a test is recorded at most once (a late duplicate is dropped and counted), so
nothing is lost or duplicated. Ray's own task retries are off: the retry is ours, smaller.

Environment parity: before any test, one probe per alive node reports its versions; a node
whose torch / transformers / openvino differs from the driver's *refuses the run* with a message
naming the node and the versions (mixed results would not be comparable). Every node's versions
and hardware go into the run header (`hardware["ray_nodes"]`); each record's `worker` is
`ray:<node id>:<pid>`.
"""

from __future__ import annotations

import os
import queue
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .pool import Batch, Pool, PoolConfig, memory_probe_missing
from .protocol import NodeInfo, Ready, Start, TaskEnd, TestDone, decode, encode

if TYPE_CHECKING:
    from ..results.run import BatchStat, WorkerStat

PARITY_PACKAGES = ("torch", "transformers", "openvino")
HARDWARE_RESOURCES: dict[str, dict[str, Any]] = {
    "cpu": {"num_cpus": 1},
    "cuda": {"num_cpus": 1, "num_gpus": 1},
    "openvino": {"num_cpus": 1, "resources": {"openvino": 1}},
}
MAX_TASK_DEATHS = 3  # a batch whose Ray task died this often is recorded not run


def package_versions() -> dict[str, str]:
    out = {}
    for pkg in PARITY_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def parity_problems(driver: dict[str, str], nodes: dict[str, dict[str, str]]) -> list[str]:
    """One line per node whose versions differ from the driver's (empty: every node matches)."""
    out = []
    for node, versions in sorted(nodes.items()):
        diff = [f"{pkg} {versions.get(pkg, 'absent')} (driver {driver.get(pkg, 'absent')})"
                for pkg in PARITY_PACKAGES if versions.get(pkg, "absent") != driver.get(pkg, "absent")]
        if diff:
            out.append(f"node {node}: {', '.join(diff)}")
    return out


def split_by_hardware(batches: list[Batch], hardware_of: Callable[[str], str | None]) -> dict[str, list[Batch]]:
    """A file's tests per hardware (API tests count as cpu), est_s shared out by test count."""
    out: dict[str, list[Batch]] = {}
    for b in batches:
        groups: dict[str, list[str]] = {}
        for nid in b.ids:
            groups.setdefault(hardware_of(nid) or "cpu", []).append(nid)
        for hw, ids in groups.items():
            out.setdefault(hw, []).append(Batch(b.file, ids, b.est_s * len(ids) / max(len(b.ids), 1)))
    return out


def pack(batches: list[Batch], slots: int, per_slot: int = 3) -> list[list[Batch]]:
    """Files into tasks of about total / (slots × per_slot) seconds, longest first: enough tasks to
    keep every slot busy and rebalance at the end, few enough that start-up stays amortised."""
    if not batches:
        return []
    ordered = sorted(batches, key=lambda b: (-b.est_s, b.file))
    target = sum(b.est_s for b in ordered) / max(slots * per_slot, 1)
    tasks: list[list[Batch]] = [[]]
    for b in ordered:
        if tasks[-1] and sum(x.est_s for x in tasks[-1]) + b.est_s > target:
            tasks.append([])
        tasks[-1].append(b)
    return tasks


# ---- inside the Ray task ------------------------------------------------------------------------


def run_task(config: dict[str, Any], batches: list[dict[str, Any]]) -> Iterator[bytes]:
    """The body of one Ray task: a one-worker Pool over `batches`, its messages yielded as lines."""
    import ray

    node = NodeInfo(node_id=ray.get_runtime_context().get_node_id(), hostname=socket.gethostname(), pid=os.getpid(),
                    versions=package_versions())
    yield encode(node)
    events: queue.Queue[Any] = queue.Queue()
    log_dir = Path(tempfile.mkdtemp(prefix="ipfs-ray-task-"))
    units = config["units"]
    pool = Pool(
        task_pool_config(config, log_dir),
        on_test=lambda msg, _w: events.put(msg), unit_of=lambda nid: units.get(nid, nid.split("::")[0]),
        on_start=lambda nid: events.put(Start(nodeid=nid)),
    )

    def drive() -> None:
        fatal = ""
        try:
            pool.start(1)
            ready = pool.wait_ready()
            if ready is None:
                fatal = pool.fatal or "the worker failed to start"
            else:
                events.put(NodeInfo(node_id=node.node_id, hostname=node.hostname, pid=node.pid, versions=node.versions,
                                    hardware=pool.hardware))
                pool.run([Batch(b["file"], b["ids"], b["est_s"]) for b in batches])
                fatal = pool.fatal
        except Exception as exc:  # reported to the driver, which records the tests not run
            fatal = f"{type(exc).__name__}: {exc}"
        finally:
            pool.close()
            events.put(TaskEnd(fatal=fatal, workers=[w.model_dump() for w in pool.stats],
                               batches=[b.model_dump() for b in pool.batch_stats]))

    threading.Thread(target=drive, name="ray-task-pool", daemon=True).start()
    while True:
        msg = events.get()
        yield encode(msg)
        if isinstance(msg, TaskEnd):
            return


def _probe() -> dict[str, Any]:
    import ray

    return {"node_id": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname(), "versions": package_versions()}


def _unreachable(address: str, timeout_s: float = 5.0) -> str:
    """Why HOST:PORT accepts no TCP connection ("" if it does, or if the address is not HOST:PORT)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return ""
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return ""


# ---- the driver ---------------------------------------------------------------------------------


# The driver's PoolConfig fields each task's one-worker Pool gets as they are (cwd goes as a
# string; log_dir is the task's own; workers is 1: Ray decides the parallelism from the CPUs).
SHIPPED = ("timeout_s", "max_memory_mb", "pytest_args", "env", "preload", "threads", "recycle_after", "recycle_rss_mb")


def ship_pool_config(cfg: PoolConfig) -> dict[str, Any]:
    """The run's pool settings as plain data for a Ray task (see `task_pool_config`)."""
    return {**{k: getattr(cfg, k) for k in SHIPPED}, "cwd": str(cfg.cwd)}


def task_pool_config(config: dict[str, Any], log_dir: Path) -> PoolConfig:
    """Inside the task: the driver's settings back, for a one-worker Pool logging to `log_dir`."""
    return PoolConfig(workers=1, cwd=Path(config["cwd"]), log_dir=log_dir, **{k: config[k] for k in SHIPPED})


@dataclass
class _Task:
    hardware: str
    batches: list[Batch]
    deaths: int = 0
    done: set[str] = field(default_factory=set)
    held: str | None = None
    node: str = ""

    @property
    def ids(self) -> list[str]:
        return [nid for b in self.batches for nid in b.ids]


class RayExecutor:
    """What the Runner needs of an executor (as `Pool`): start, wait_ready, run, close, interrupt,
    and the stats it puts in the run header."""

    def __init__(self, config: PoolConfig, address: str | None, on_test: Callable[[TestDone, str], None], unit_of: Callable[[str], str],
                 hardware_of: Callable[[str], str | None], collect: Callable[[], tuple[list[dict[str, Any]], list[dict[str, Any]]]],
                 log: Callable[[str], None] = lambda _m: None, on_batch: Callable[[Batch], None] = lambda _b: None) -> None:
        self.cfg = config
        self.address = address
        self.on_test = on_test
        self.unit_of = unit_of
        self.hardware_of = hardware_of
        self.collect = collect
        self.log = log
        self.on_batch = on_batch
        self.hardware: dict[str, Any] = {}
        self.stats: list[WorkerStat] = []
        self.batch_stats: list[BatchStat] = []
        self.pending: list[Batch] = []  # batches never dispatched when the run stopped
        self.fatal = ""
        self.memory_cap_off = memory_probe_missing()
        self.recorded: set[str] = set()
        self.duplicates = 0
        self.nodes: dict[str, dict[str, Any]] = {}
        self._interrupted = False
        self._started = False
        self._remote: Any = None

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def interrupt(self) -> None:
        self._interrupted = True

    def start(self, _n: int) -> None:
        """Connect to the cluster and check every node's versions against the driver's."""
        from .selection import UsageError

        try:
            import ray
        except ImportError:
            raise UsageError("--executor ray needs Ray: pip install 'ipfs-accelerate[ray]'") from None
        address = self.address or os.environ.get("RAY_ADDRESS") or "auto"
        unreachable = _unreachable(address)
        if unreachable:  # ray.init would retry a dead GCS address for minutes
            raise UsageError(f"--executor ray: no Ray cluster at {address!r} ({unreachable}); start one with `ray start --head` "
                             "and pass --address HOST:PORT (see docs/cluster.md), or --address local")
        try:
            ray.init(address=None if address == "local" else address, log_to_driver=False, configure_logging=False,
                     include_dashboard=False if address == "local" else None)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UsageError(f"--executor ray: no Ray cluster at {address!r} ({exc}); start one with `ray start --head` "
                             "and pass --address HOST:PORT (see docs/cluster.md), or --address local") from None
        self._started = True
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = ray.remote(num_cpus=0, max_retries=0)(_probe)
        declared = {n["NodeID"]: {k: float(v) for k, v in n["Resources"].items() if not k.startswith("node:")}
                    for n in ray.nodes() if n["Alive"]}
        alive = list(declared)
        infos = ray.get([probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote() for n in alive])
        driver = package_versions()
        problems = parity_problems(driver, {f"{i['node_id'][:12]} ({i['hostname']})": i["versions"] for i in infos})
        if problems:
            self.fatal = ("Ray nodes with other versions than the driver are refused (results would not be comparable):\n  "
                          + "\n  ".join(problems))
            raise UsageError(self.fatal)
        for i in infos:
            self.nodes[i["node_id"]] = {"hostname": i["hostname"], "versions": i["versions"], "resources": declared[i["node_id"]]}
        self.hardware = {"ray_nodes": self.nodes, "ray_resources": {k: float(v) for k, v in ray.cluster_resources().items()
                                                                      if not k.startswith("node:")}}
        self._remote = ray.remote(max_retries=0)(run_task)
        self.log(f"ray: {len(alive)} nodes, resources {self.hardware['ray_resources']}")

    def wait_ready(self) -> Ready | None:
        """The test list, collected on the driver (the same collector process as `--collect-only`)."""
        items, problems = self.collect()
        return Ready(pid=os.getpid(), items=items, problems=problems, n_items=len(items))

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    # ---- running --------------------------------------------------------------------------------
    def _config(self, task: _Task) -> dict[str, Any]:
        return {**ship_pool_config(self.cfg), "units": {nid: self.unit_of(nid) for nid in task.ids}}

    def _submit(self, task: _Task) -> Any:
        payload = [{"file": b.file, "ids": b.ids, "est_s": b.est_s} for b in task.batches]
        return self._remote.options(**HARDWARE_RESOURCES.get(task.hardware, HARDWARE_RESOURCES["cpu"])).remote(
            self._config(task), payload)

    def _record(self, msg: TestDone, task: _Task) -> None:
        task.done.add(msg.nodeid)
        task.held = None
        if msg.nodeid in self.recorded:  # a retried task re-reporting: never a second record
            self.duplicates += 1
            return
        self.recorded.add(msg.nodeid)
        self.on_test(msg, f"ray:{task.node}")

    def run(self, batches: list[Batch]) -> None:
        import ray

        by_hw = split_by_hardware(batches, self.hardware_of)
        resources = self.hardware.get("ray_resources", {})
        slots = max(1, int(resources.get("CPU", 1)))
        running: dict[Any, _Task] = {}
        for hw, group in by_hw.items():
            need = HARDWARE_RESOURCES.get(hw, HARDWARE_RESOURCES["cpu"])
            missing = ([("GPU", "num_gpus")] if "num_gpus" in need and not resources.get("GPU") else []) + \
                      [(r, "resource") for r in need.get("resources", {}) if not resources.get(r)]
            if missing:
                reason = f"{hw}: no node of the Ray cluster declares {', '.join(m[0] for m in missing)} (ray start --resources / --num-gpus)"
                for b in group:
                    for nid in b.ids:
                        self._record(TestDone(nodeid=nid, status="skipped", reason=reason), _Task(hw, []))
                continue
            for chunk in pack(group, slots):
                task = _Task(hw, chunk)
                running[self._submit(task)] = task
        while running and not self._interrupted:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
            for gen in ready:
                task = running[gen]
                try:
                    msg = decode(ray.get(next(gen)))
                except StopIteration:
                    del running[gen]
                    self._finished(task, "the Ray task ended without reporting its end")
                    continue
                except Exception as exc:  # the Ray task's process or node died
                    del running[gen]
                    retry = self._died(task, exc)
                    if retry is not None:
                        running[self._submit(retry)] = retry
                    continue
                match msg:
                    case NodeInfo():
                        task.node = msg.node_id
                        entry = self.nodes.setdefault(msg.node_id, {"hostname": msg.hostname, "versions": msg.versions})
                        if msg.hardware:
                            entry["hardware"] = msg.hardware
                    case Start():
                        task.held = msg.nodeid
                    case TestDone():
                        self._record(msg, task)
                    case TaskEnd():
                        del running[gen]
                        self._collect_stats(msg, task)
                        self._finished(task, msg.fatal)
        if self._interrupted:
            for gen in running:
                ray.cancel(gen, force=True)
            self.pending = [b for t in running.values() for b in t.batches]

    def _collect_stats(self, msg: TaskEnd, task: _Task) -> None:
        from ..results.run import BatchStat, WorkerStat

        node = task.node[:12]
        for w in msg.workers:
            self.stats.append(WorkerStat.model_validate({**w, "name": f"ray:{node}:{w['name']}"}))
        for b in msg.batches:
            self.batch_stats.append(BatchStat.model_validate({**b, "worker": f"ray:{node}:{b['worker']}"}))
        for b in task.batches:
            self.on_batch(b)

    def _finished(self, task: _Task, fatal: str) -> None:
        """A task that ended: tests it never reported are errors, with why (never silently lost)."""
        for nid in task.ids:
            if nid not in task.done and nid not in self.recorded:
                self._record(TestDone(nodeid=nid, status="error", reason=f"not run: {fatal or 'its Ray task ended early'}"), task)
        if fatal:
            self.log(f"ray task on {task.node[:12]} ended: {fatal.splitlines()[0]}")

    def _died(self, task: _Task, exc: Exception) -> _Task | None:
        """The held test is `crashed`; the rest go to a new task (another node, if Ray likes)."""
        reason = f"Ray worker died on node {task.node[:12] or '?'}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        self.log(reason)
        if task.held is not None and task.held not in task.done:
            self._record(TestDone(nodeid=task.held, status="crashed", reason=reason), task)
        left = [Batch(b.file, [i for i in b.ids if i not in task.done], b.est_s) for b in task.batches]
        left = [b for b in left if b.ids]
        if not left:
            return None
        retry = _Task(task.hardware, left, deaths=task.deaths + 1)
        if retry.deaths >= MAX_TASK_DEATHS:
            for nid in retry.ids:
                self._record(TestDone(nodeid=nid, status="error", reason=f"not run: its Ray task died {retry.deaths} times (last: {reason})"), task)
            return None
        return retry
