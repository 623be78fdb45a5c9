"""``test_implementation_status.json``: which registry models and API providers have a generated
test, with which profile, whether it is current, and the last verified status per hardware.

The file is a pure function of the registry, the provider list, the files under the output
folder and the committed run results (``results/*.json`` and ``results/<run>/results.json``), so
it is deterministic: sorted keys, two-space indent, no timestamps. Its layout is versioned by
``schema_version``; consumers may rely on every key documented in `build_status`.

Run files are the runner's ``RunResult`` (a JSON object whose ``tests`` list holds one record
per pytest test), read tolerantly: a ``cases`` / ``results`` list or a bare list of records works
too. Model records carry ``model``, ``hardware``, ``status`` (and ``task``); API records carry
``api``, ``status`` (and ``impl``: real service or local fake). Runs are ordered by
``started_at`` (then ``finished_at`` / ``created_at``), then by run id; for each (model,
hardware) and each API the latest run that has records for it wins, and its status is the worst
of those records (crashed, timeout, error, failed, xpassed, xfailed, passed, skipped).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..registry.spec import CATEGORIES, HARDWARE
from ..results.status import SEVERITY  # seam(history-2)
from . import engine
from .names import ident, is_valid

SCHEMA_VERSION = 1
NOT_RUN = "not-run"
_PROFILE_RE = re.compile(r'^    profile = "([a-z]+)"$', re.M)
_REASON_MAX = 300


def _load_runs(results_dir: Path | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Return runs (oldest first) as {id, file, records} and any per-file read errors."""
    runs: list[tuple[tuple[str, str], dict[str, Any]]] = []
    errors: list[str] = []
    if results_dir is None or not results_dir.is_dir():
        return [], errors
    files = sorted([*results_dir.glob("*.json"), *results_dir.glob("*/results.json")])
    for path in files:
        rel = path.relative_to(results_dir).as_posix()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            errors.append(f"{rel}: {exc.__class__.__name__}: {exc}")
            continue
        meta = data if isinstance(data, dict) else {}
        records = data if isinstance(data, list) else meta.get("tests", meta.get("cases", meta.get("results", [])))
        if not isinstance(records, list):
            errors.append(f"{rel}: no list of case records")
            continue
        run_id = str(meta.get("run_id") or (path.parent.name if path.name == "results.json" else path.stem))
        when = str(meta.get("started_at") or meta.get("finished_at") or meta.get("created_at") or "")
        runs.append(((when, run_id), {"id": run_id, "file": rel, "records": [r for r in records if isinstance(r, dict)]}))
    runs.sort(key=lambda item: item[0])
    return [r for _, r in runs], errors


# worst first: the status of a (model, hardware) in a run is the worst of its tests' statuses
_SEVERITY = SEVERITY  # seam(history-2): the order lives in results.status.Status


def _aggregate(records: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    statuses = [str(r.get("status", "unknown")) for r in records]
    rank = {s: i for i, s in enumerate(_SEVERITY)}
    worst = min(statuses, key=lambda s: rank.get(s, -1))  # unknown statuses count as worst
    counts: dict[str, int] = {}
    for st in statuses:
        counts[st] = counts.get(st, 0) + 1
    out: dict[str, Any] = {"status": worst, "run": run_id, "tests": counts}
    tasks = sorted({str(r["task"]) for r in records if r.get("task")})
    if tasks:
        out["tasks"] = tasks
    impls = sorted({str(r["impl"]) for r in records if r.get("impl")})
    if impls:
        out["impl"] = impls
    reasons = [str(r.get("reason") or "") for r in records if str(r.get("status")) == worst and r.get("reason")]
    if reasons and worst != "passed":
        out["reason"] = reasons[0][:_REASON_MAX]
    return out


def _verified(runs: list[dict[str, Any]]) -> tuple[dict[tuple[str, str], dict], dict[str, dict]]:
    """Per (model, hardware) and per API: the aggregate of its records in the latest run that has any."""
    models: dict[tuple[str, str], dict] = {}
    apis: dict[str, dict] = {}
    for run in runs:
        by_model: dict[tuple[str, str], list[dict]] = {}
        by_api: dict[str, list[dict]] = {}
        for rec in run["records"]:
            if rec.get("api"):
                by_api.setdefault(str(rec["api"]), []).append(rec)
            elif rec.get("model") and rec.get("hardware"):
                by_model.setdefault((str(rec["model"]), str(rec["hardware"])), []).append(rec)
        for key, recs in by_model.items():
            models[key] = _aggregate(recs, run["id"])
        for name, recs in by_api.items():
            apis[name] = _aggregate(recs, run["id"])
    return models, apis


def _file_info(out_dir: Path, expected: engine.Target | None, relpath: str, render: Any) -> dict[str, Any]:
    """{file, profile, state} for one test file; the state compares against the file's own profile."""
    path = out_dir / relpath
    state = engine.inspect(path, None)
    info: dict[str, Any] = {"file": relpath, "profile": None, "state": state}
    if state == "missing":
        return info
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    m = _PROFILE_RE.search(text)
    profile = m.group(1) if m else ("api" if expected is not None and expected.kind == "api" else None)
    info["profile"] = profile
    target = render(profile) if profile in (*engine.PROFILES, "api") else None
    if target is not None:
        info["state"] = engine.inspect(path, target.content)
    return info


def build_status(
    out_dir: Path,
    specs: Sequence[Any],
    providers: Sequence[Any],
    results_dir: Path | None = None,
    *,
    kit_available: bool = False,
    hardware: Sequence[str] = HARDWARE,
    categories: Sequence[str] = CATEGORIES,
) -> dict[str, Any]:
    """The status document.

    Keys: ``schema_version``; ``summary`` (counts); ``results`` ({``runs``: files read, oldest
    first, ``errors``}); ``models`` → name → {``category``, ``default_task``, ``test_present``,
    ``profile``, ``tests`` [{``file``, ``task``, ``profile``, ``state``}], ``known_incompatible``,
    ``hardware`` → hw → {``status``, ``run``?, ``task``?, ``precision``?, ``reason``?}};
    ``apis`` → name → {``test_present``, ``profile``, ``state``, ``file``, ``kit_available`` (false:
    the generated test skips, so it covers nothing yet),
    ``last_run`` {``status``, ``run``?}}; ``orphans`` (generated-looking files for names that are
    no longer in the registry). ``state`` is one of missing/current/outdated/edited/foreign.
    """
    runs, errors = _load_runs(results_dir)
    verified, api_verified = _verified(runs)

    by_ident = {ident(s.name): s for s in specs if is_valid(s.name)}
    skill_files: dict[str, list[tuple[str, str]]] = {}
    orphans: list[str] = []
    skills = out_dir / engine.MODEL_DIR
    for path in sorted(skills.glob("test_hf_*.py")) if skills.is_dir() else []:
        stem = path.stem[len("test_hf_"):]
        model_id, _, task_id = stem.partition("__")
        spec = by_ident.get(model_id)
        tasks = {ident(t): t for t in spec.tasks if is_valid(t)} if spec else {}
        task = spec.task if spec and not task_id else tasks.get(task_id)
        if spec is None or task is None:
            orphans.append(f"{engine.MODEL_DIR}/{path.name}")
            continue
        skill_files.setdefault(spec.name, []).append((f"{engine.MODEL_DIR}/{path.name}", task))

    models: dict[str, Any] = {}
    hw_summary: dict[str, dict[str, int]] = {hw: {} for hw in hardware}
    for spec in specs:
        if not is_valid(spec.name):
            continue
        tests = []
        for relpath, task in skill_files.get(spec.name, []):
            def render(profile: str | None, spec: Any = spec, task: str = task) -> engine.Target | None:
                return engine.model_target(spec, task, profile) if profile in engine.PROFILES else None

            info = _file_info(out_dir, None, relpath, render)
            tests.append({"task": task, **info})
        default = next((t for t in tests if t["task"] == spec.task), None)
        hw_status = {}
        for hw in hardware:
            entry = verified.get((spec.name, hw), {"status": NOT_RUN})
            hw_status[hw] = entry
            counts = hw_summary[hw]
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
        models[spec.name] = {
            "category": spec.category,
            "default_task": spec.task,
            "test_present": default is not None,
            "profile": default["profile"] if default else None,
            "tests": tests,
            "known_incompatible": dict(sorted({**spec.known_incompatible, **spec.default.known_incompatible}.items())),
            "derived": spec.derived,
            "hardware": hw_status,
        }

    apis: dict[str, Any] = {}
    for info in providers:
        if not is_valid(info.name):
            continue
        expected = engine.api_target(info)
        finfo = _file_info(out_dir, expected, expected.relpath.as_posix(), lambda p, e=expected: e if p == "api" else None)
        apis[info.name] = {
            "test_present": finfo["state"] != "missing",
            **finfo,
            "kit_available": kit_available,
            "last_run": api_verified.get(info.name, {"status": NOT_RUN}),
        }
    for path in sorted((out_dir / engine.API_DIR).glob("test_*.py")) if (out_dir / engine.API_DIR).is_dir() else []:
        if path.stem[len("test_"):] not in {ident(n) for n in apis}:
            orphans.append(f"{engine.API_DIR}/{path.name}")

    by_state: dict[str, int] = {}
    for m in models.values():
        for t in m["tests"]:
            by_state[t["state"]] = by_state.get(t["state"], 0) + 1
    summary = {
        "models": {
            "total": len(models),
            "with_test": sum(m["test_present"] for m in models.values()),
            "missing": sum(not m["test_present"] for m in models.values()),
            "test_files_by_state": by_state,
            "by_category": _by_category(models, categories),
        },
        "apis": {
            "total": len(apis),
            "with_test": sum(a["test_present"] for a in apis.values()),
            "missing": sum(not a["test_present"] for a in apis.values()),
        },
        "hardware": hw_summary,
        "coverage": coverage(specs),
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_by": f"python {engine.UNIFIED_SCRIPT} --type all --force (run in test/)",
        "summary": summary,
        "results": {"runs": [r["file"] for r in runs], "errors": errors},
        "models": models,
        "apis": apis,
        "orphans": sorted(orphans),
    }


def coverage(specs: Sequence[Any]) -> dict[str, Any]:
    """Breadth as measured by the warm-process sweep (``registry/observed.json``): of the types
    transformers' Auto mappings know, how many have a head that passes on CPU (fingerprint
    committed) and how many of those also pass OpenVINO parity; by category and by task.
    ``statement`` is the one line reports quote."""
    from ..registry import OBSERVED
    from ..registry.derive import load_snapshot

    try:
        from importlib import resources

        observed = json.loads(resources.files("ipfs_accelerate.registry").joinpath(OBSERVED).read_text(encoding="utf-8"))["types"]
    except (FileNotFoundError, KeyError):
        observed = {}
    auto = load_snapshot()["types"]
    by_name = {s.name: s for s in specs}
    cats: dict[str, dict[str, int]] = {}
    tasks: dict[str, dict[str, int]] = {}
    passing = {"cpu": 0, "openvino": 0}
    swept = {"openvino": 0}
    not_passing: dict[str, str] = {}
    for name in sorted(auto):
        spec = by_name.get(name)
        category = spec.category if spec else auto[name]["category"]
        c = cats.setdefault(category, {"types": 0, "cpu": 0, "openvino": 0})
        c["types"] += 1
        seen = observed.get(name, {})
        for task in (spec.tasks if spec else auto[name]["heads"]):
            t = tasks.setdefault(task, {"heads": 0, "swept": 0, "cpu": 0, "openvino": 0})
            t["heads"] += 1
            t["swept"] += int("cpu" in seen.get(task, {}))
            for hw in ("cpu", "openvino"):
                t[hw] += int(seen.get(task, {}).get(hw) == "passed")
        cpu_ok = any(v.get("cpu") == "passed" for v in seen.values())
        ov_ok = any(v.get("cpu") == "passed" and v.get("openvino") == "passed" for v in seen.values())
        swept["openvino"] += any("openvino" in v for v in seen.values())
        passing["cpu"] += cpu_ok
        passing["openvino"] += ov_ok
        c["cpu"] += cpu_ok
        c["openvino"] += ov_ok
        if not cpu_ok:
            first = next((v["cpu"] for v in seen.values() if "cpu" in v), None)
            not_passing[name] = (first or "no head with an input recipe (task skill)")[:_REASON_MAX]
    m = len(auto)
    return {
        "source": "registry/observed.json, written by `python -m ipfs_accelerate.harness.sweep --write`",
        "auto_mapped_types": m,
        "cpu_passing_types": passing["cpu"],
        "openvino_passing_types": passing["openvino"],
        "openvino_swept_types": swept["openvino"],
        "statement": (
            f"{passing['cpu']} of {m} auto-mapped types pass on CPU, {passing['openvino']} on OpenVINO within tolerance"
            f" (of {swept['openvino']} CPU-passing types swept on OpenVINO)"
        ),
        "by_category": dict(sorted(cats.items())),
        "by_task": dict(sorted(tasks.items())),
        "not_passing_on_cpu": not_passing,
    }


def _by_category(models: dict[str, Any], categories: Sequence[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {c: {"total": 0, "with_test": 0} for c in categories}
    for m in models.values():
        c = out.setdefault(m["category"], {"total": 0, "with_test": 0})
        c["total"] += 1
        c["with_test"] += int(m["test_present"])
    return out


def dumps(status: dict[str, Any]) -> str:
    return json.dumps(status, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
