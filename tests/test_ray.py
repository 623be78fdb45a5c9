"""`run --executor ray` against a REAL local Ray cluster: a head and a second node started with
`ray start` on loopback, each with its own resources (the head declares `openvino`, the second
node a GPU it does not have — Ray only counts what a node declares, so its cuda cases route there
and skip in the test as on any machine without CUDA).

Tier: these start a cluster (~25 s) and run suites on it (~2-3 min in all on the 2-core box), so
they run only with RAY_TESTS=1 (`make test-ray`); the pure planning tests at the top always run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_runner_kit import latest, make_suite, run, write

from ipfs_accelerate.results.store import RECORDS, run_dirs
from ipfs_accelerate.runner.pool import Batch
from ipfs_accelerate.runner.ray_executor import pack, parity_problems, split_by_hardware

REPO = Path(__file__).resolve().parents[1]

# ---- planning (no cluster) ---------------------------------------------------------------------


def test_parity_names_each_node_and_version_that_differs() -> None:
    driver = {"torch": "2.13.0", "transformers": "5.24.0", "openvino": "2026.4.1"}
    nodes = {"a (h1)": dict(driver), "b (h2)": {**driver, "torch": "2.1.0", "openvino": "absent"}}
    assert parity_problems(driver, nodes) == ["node b (h2): torch 2.1.0 (driver 2.13.0), openvino absent (driver 2026.4.1)"]
    assert parity_problems(driver, {"a": dict(driver)}) == []


def test_batches_split_by_hardware_and_pack_into_tasks_without_losing_a_test() -> None:
    hw = {"f.py::a[cpu]": "cpu", "f.py::a[cuda]": "cuda", "f.py::b[openvino]": "openvino", "g.py::x": None}
    batches = [Batch("f.py", ["f.py::a[cpu]", "f.py::a[cuda]", "f.py::b[openvino]"], 3.0), Batch("g.py", ["g.py::x"], 1.0)]
    by_hw = split_by_hardware(batches, hw.get)
    assert {k: [b.ids for b in v] for k, v in by_hw.items()} == {
        "cpu": [["f.py::a[cpu]"], ["g.py::x"]], "cuda": [["f.py::a[cuda]"]], "openvino": [["f.py::b[openvino]"]]}
    assert sum(b.est_s for v in by_hw.values() for b in v) == pytest.approx(4.0)
    many = [Batch(f"f{i}.py", [f"f{i}.py::t"], float(i + 1)) for i in range(10)]
    tasks = pack(many, slots=2)
    assert sorted(b.file for t in tasks for b in t) == sorted(b.file for b in many)  # each file exactly once
    assert 2 <= len(tasks) <= 10 and tasks[0][0].file == "f9.py"  # longest first


def test_an_address_without_a_cluster_is_a_usage_error_not_a_hang(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray")
    suite = make_suite(tmp_path / "suite", models={}, apis=("ollama",))
    port = _free_port()  # nothing listens there
    assert run(suite, "--executor", "ray", "--address", f"127.0.0.1:{port}", out=tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert f"no Ray cluster at '127.0.0.1:{port}'" in err and "ray start --head" in err
    assert not (tmp_path / "out").exists() or not run_dirs(tmp_path / "out")


# ---- a real cluster ----------------------------------------------------------------------------

pytestmark_cluster = pytest.mark.skipif(not os.environ.get("RAY_TESTS"), reason="Ray cluster tier: set RAY_TESTS=1 (make test-ray)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(marker: str, port: int) -> None:
    """Kill this cluster's processes (found by its temp dir or GCS port) and their children —
    never `ray stop`, which would stop every Ray on the machine."""
    import psutil

    roots = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if marker in cmd or f":{port} " in cmd + " " and "ray" in cmd:
            roots.append(proc)
    procs = set(roots)
    for proc in roots:
        try:
            procs.update(proc.children(recursive=True))
        except psutil.Error:
            pass
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(list(procs), timeout=10)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    pytest.importorskip("ray")
    if not os.environ.get("RAY_TESTS"):
        pytest.skip("Ray cluster tier: set RAY_TESTS=1 (make test-ray)")
    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp = f"/tmp/rt-{uuid.uuid4().hex[:6]}"  # AF_UNIX paths under it must stay short
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--node-ip-address", "127.0.0.1", "--object-store-memory", str(80 * 2**20), "--disable-usage-stats"]
    try:
        subprocess.run([ray_bin, "start", "--head", "--port", str(port), "--num-cpus", "1", "--resources", '{"openvino": 1}',
                        "--include-dashboard", "false", "--ray-client-server-port", str(_free_port()),
                        "--temp-dir", temp, *common], env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([ray_bin, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", "--num-gpus", "1", *common],
                       env=env, check=True, capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(temp, port)
        shutil.rmtree(temp, ignore_errors=True)


def _node_of(worker: str) -> str:
    assert worker.startswith("ray:"), worker
    return worker.split(":")[1]


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dirs(out)[-1] / RECORDS).read_text().splitlines() if line.strip()]


@pytestmark_cluster
def test_custom_resources_route_cases_to_the_nodes_that_declare_them(cluster: str, tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "suite", models={"bert": "language", "vit": "vision"}, apis=("ollama",))
    out = tmp_path / "out"
    assert run(suite, "--executor", "ray", "--address", cluster, out=out) == 0
    res = latest(out)
    nodes = res.hardware["ray_nodes"]
    assert len(nodes) == 2 and all(n["versions"]["torch"] for n in nodes.values())  # parity: both reported
    gpu = {nid for nid, n in nodes.items() if n["resources"].get("GPU")}
    ov = {nid for nid, n in nodes.items() if n["resources"].get("openvino")}
    assert len(gpu) == 1 and len(ov) == 1 and gpu != ov
    by_hw: dict[str | None, set[str]] = {}
    for t in res.tests:
        by_hw.setdefault(t.hardware, set()).add(_node_of(t.worker))
    assert by_hw["cuda"] == gpu and by_hw["openvino"] == ov
    assert len(res.tests) == res.selected == 2 * 2 * 3 * 2 + 2  # models × tests × hardware × impl, + API


@pytestmark_cluster
def test_fault_drill_on_ray_reports_each_fault_and_loses_or_duplicates_nothing(cluster: str, tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    write(suite / "test_faults.py", """
        import ctypes, os, signal, time

        def test_a_ok():
            pass

        def test_b_segfault():
            ctypes.string_at(0)

        def test_c_hang():
            time.sleep(120)

        def test_d_memory():
            hog = bytearray(900 * 2**20)
            hog[::4096] = b"x" * len(hog[::4096])
            time.sleep(5)

        def test_e_kill_the_ray_worker():
            time.sleep(1.5)  # its Start has reached the driver: this is a test held mid-run
            os.kill(os.getppid(), signal.SIGKILL)  # the pytest worker's parent is the Ray task's process
            time.sleep(30)

        def test_f_ok():
            pass

        def test_g_ok():
            pass
    """)
    out = tmp_path / "out"
    rc = run(suite, str(suite / "test_faults.py"), "--executor", "ray", "--address", cluster, "--timeout", "6",
             "--max-memory", "500", out=out)
    assert rc == 1
    res = latest(out)
    st = {t.nodeid.split("::")[1]: (t.status, t.reason) for t in res.tests}
    assert st["test_a_ok"][0] == st["test_f_ok"][0] == st["test_g_ok"][0] == "passed"
    assert st["test_b_segfault"][0] == "crashed" and "SIGSEGV" in st["test_b_segfault"][1]
    assert st["test_c_hang"][0] == "timeout"
    assert st["test_d_memory"][0] == "crashed" and "memory cap exceeded" in st["test_d_memory"][1]
    assert st["test_e_kill_the_ray_worker"][0] == "crashed" and "Ray worker died" in st["test_e_kill_the_ray_worker"][1]
    recorded = Counter(r["nodeid"] for r in _records(out))
    assert len(recorded) == 7 and set(recorded.values()) == {1}, recorded  # none lost, none duplicated
    assert res.not_run == 0


@pytestmark_cluster
def test_ray_matches_local_on_a_registry_selection_and_resumes_a_local_run(cluster: str, tmp_path: Path) -> None:
    """Real tiny models: the same statuses and output fingerprints from both executors; then a
    local run cut short is finished with --resume --executor ray, each test recorded once."""
    test_dir = REPO / "test"
    if not (test_dir / "skills" / "test_hf_bert.py").exists():
        pytest.skip("generated test/skills/test_hf_bert.py missing")
    args = ("--test-dir", str(test_dir), "--models", "bert", "--hardware", "cpu", "--impl-type", "tiny")

    def fingerprints(out: Path) -> dict[str, tuple[str, str | None]]:
        return {t.nodeid: (t.status, t.case.fingerprint if t.case else None) for t in latest(out).tests}

    from ipfs_accelerate.runner.cli import run_from_argv

    local, ray_out = tmp_path / "local", tmp_path / "ray"
    assert run_from_argv([*args, "--output-dir", str(local), "--plain", "--workers", "1"]) == 0
    assert run_from_argv([*args, "--output-dir", str(ray_out), "--plain", "--executor", "ray", "--address", cluster]) == 0
    a, b = fingerprints(local), fingerprints(ray_out)
    assert a == b and any(fp for _, fp in a.values()), (a, b)

    # resume across executors: keep the first half of the local run's records, mark it interrupted
    run_dir = run_dirs(local)[-1]
    lines = (run_dir / RECORDS).read_text().splitlines()
    (run_dir / RECORDS).write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    header = json.loads((run_dir / "run.json").read_text())
    header["state"] = "interrupted"
    (run_dir / "run.json").write_text(json.dumps(header))
    assert run_from_argv(["--resume", "--output-dir", str(local), "--plain", "--executor", "ray", "--address", cluster]) == 0
    recorded = Counter(r["nodeid"] for r in _records(local))
    assert set(recorded) == set(a) and set(recorded.values()) == {1}
    assert fingerprints(local) == a


@pytestmark_cluster
def test_a_node_with_other_versions_refuses_the_run_naming_it(cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Last in this module: it adds a third node whose Python sees transformers 0.0.1 (a shadow
    dist-info first on its PYTHONPATH), as a box with another install would."""
    shadow = tmp_path / "shadow"
    write(shadow / "transformers-0.0.1.dist-info" / "METADATA", "Metadata-Version: 2.1\nName: transformers\nVersion: 0.0.1\n")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join(p for p in (str(shadow), os.environ.get("PYTHONPATH", "")) if p)}
    subprocess.run([str(Path(sys.executable).with_name("ray")), "start", "--address", cluster, "--num-cpus", "1",
                    "--node-ip-address", "127.0.0.1", "--object-store-memory", str(80 * 2**20), "--disable-usage-stats"],
                   env=env, check=True, capture_output=True, timeout=120)
    suite = make_suite(tmp_path / "suite", models={}, apis=("ollama",))
    assert run(suite, "--executor", "ray", "--address", cluster, out=tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "Ray nodes with other versions than the driver are refused" in err
    assert "transformers 0.0.1 (driver " in err and err.count("\n  node ") == 1, err  # only the new node
    assert not (tmp_path / "out").exists() or not run_dirs(tmp_path / "out")
