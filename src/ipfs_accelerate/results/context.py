"""The data both reports draw, built once from a RunResult: matrices, per-category tallies,
precision cells, coverage against the registry, metrics, speed-ups, failures, environment.

`report_md` renders it through one Jinja template per section and `report_html` embeds the same
numbers as JSON, so a cell's status, a coverage count or a speed-up is computed in one place and
the two reports cannot disagree. Pure functions of the run, so a partial run renders too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from .run import RunResult, TestRecord
from .schema import CaseResult
from .status import DISPLAY, FAILING, ICON, NOT_RUN, rank

HW_ORDER = ("cpu", "cuda", "openvino")
FOLD = 8  # name at most this many models in one line, then "N models (a, b, …)"


def worst(records: Iterable[TestRecord]) -> TestRecord | None:
    """The record that decides a cell: worst status first (crashed ... passed, skipped last)."""
    recs = list(records)
    return min(recs, key=lambda r: rank(r.status)) if recs else None


def cell_status(records: list[TestRecord]) -> tuple[str, str]:
    """(status, reason) of one (model, hardware) case: any failure fails it; passed beats skipped."""
    w = worst(records)
    if w is None:
        return NOT_RUN, ""
    if w.status == "skipped" and all(r.status == "skipped" for r in records):
        return "skipped", w.reason
    if w.status == "skipped":  # some ran, some skipped (e.g. no expected-results file): the ran ones decide
        w = worst(r for r in records if r.status != "skipped") or w
    return str(w.status), w.reason if w.status != "passed" else ""


def first_line(text: str, limit: int = 300) -> str:
    stripped = (text or "").strip()
    return stripped.splitlines()[0][:limit] if stripped else ""


def fold(models: list[str]) -> str:
    """'a, b, c' or, past FOLD names, '12 models (a, b, c, d, e, …)'."""
    return ", ".join(models) if len(models) <= FOLD else f"{len(models)} models ({', '.join(models[:5])}, …)"


def cases(run: RunResult, impl: str = "mock") -> dict[tuple[str, str], CaseResult]:
    """(model, hardware) -> the case result of that pair (its metrics test)."""
    out: dict[tuple[str, str], CaseResult] = {}
    for t in run.tests:
        if t.case is not None and t.model and t.hardware and t.impl == impl:
            out[(t.model, t.hardware)] = t.case
    return out


def hardware(run: RunResult) -> list[str]:
    seen = {t.hardware for t in run.tests if t.hardware}
    order = [h for h in run.selection.hardware if h in seen or h in HW_ORDER] or list(HW_ORDER)
    return [h for h in order if h in seen] or order


def matrix(run: RunResult, impl: str) -> tuple[list[str], dict[str, dict[str, tuple[str, str]]], dict[str, str]]:
    """(hardware, rows: model -> hardware -> (status, reason), category by model)."""
    hws = hardware(run)
    by: dict[tuple[str, str], list[TestRecord]] = defaultdict(list)
    fileless: dict[str, list[TestRecord]] = defaultdict(list)
    cats: dict[str, str] = {}
    for t in run.tests:
        if t.kind != "model" or not t.model:
            continue
        if t.hardware is None:
            if impl == "mock":
                fileless[t.model].append(t)
                cats.setdefault(t.model, t.category or "")
            continue
        if t.impl != impl:
            continue
        by[(t.model, t.hardware)].append(t)
        cats.setdefault(t.model, t.category or "")
    models = sorted({m for m, _ in by} | set(fileless), key=lambda m: (cats.get(m, ""), m))
    rows = {m: {h: cell_status(by.get((m, h), []) + fileless.get(m, [])) for h in hws} for m in models}
    return hws, rows, cats


def _fold_reason(reason: str, model: str, limit: int = 220) -> str:
    """First line with the model's own name folded out, so one reason groups many models."""
    return first_line(reason, limit * 4).replace(f"'{model}'", "'<model>'")


def matrix_section(run: RunResult, impl: str) -> dict[str, Any]:
    """Rows of a matrix, plus (for pretrained runs) the models skipped everywhere in one line per reason,
    plus the reasons grouped by (status, reason, hardware set) with model names folded."""
    hws, rows, cats = matrix(run, impl)
    idle: list[tuple[str, str]] = []
    if impl == "real":  # most models have no checkpoint offline: one line for those, rows for the rest
        why: dict[str, list[str]] = defaultdict(list)
        for m, r in list(rows.items()):
            if all(st in ("skipped", NOT_RUN) for st, _ in r.values()):
                first = next((rs for st, rs in r.values() if st == "skipped" and rs), "")
                why[_fold_reason(first, m, 200)].append(m)
                del rows[m]
        idle = [(fold(ms), reason) for reason, ms in sorted(why.items(), key=lambda kv: -len(kv[1]))]
    per_model: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for m, cells in rows.items():
        for h in hws:
            st, reason = cells[h]
            if st not in ("passed", NOT_RUN):
                per_model[(st, _fold_reason(reason, m))][m].append(h)
    groups: dict[tuple[str, str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (st, reason), models in per_model.items():
        for m, hw in models.items():
            groups[(st, reason, tuple(hw))].append(m)
    reasons = [{"status": st, "icon": ICON[st], "hardware": ", ".join(hw), "who": fold(ms), "reason": reason}
               for (st, reason, hw), ms in sorted(groups.items(), key=lambda kv: (rank(kv[0][0]), kv[0][2], kv[0][1]))]
    return {"hws": hws, "rows": [{"model": m, "category": cats.get(m, ""), "icons": [ICON[cells[h][0]] for h in hws]}
                                 for m, cells in rows.items()],
            "idle": idle, "reasons": reasons, "empty": not rows and not idle}


def apis(run: RunResult) -> list[dict[str, Any]]:
    by: dict[str, dict[str, list[TestRecord]]] = defaultdict(lambda: defaultdict(list))
    for t in run.tests:
        if t.kind == "api" and t.api:
            by[t.api][t.impl].append(t)
    out = []
    for name in sorted(by):
        icons, reasons = [], []
        for impl in ("mock", "real"):
            recs = by[name].get(impl, [])
            st, why = cell_status(recs) if recs else (NOT_RUN, "")
            icons.append(ICON[st])
            if why:
                reasons.append(f"{impl}: {why}")
        out.append({"name": name, "icons": icons, "n": sum(len(v) for v in by[name].values()), "reason": "; ".join(reasons)})
    for t in run.tests:
        if t.kind == "api" and not t.api:
            out.append({"name": t.file, "icons": [ICON[t.status], ""], "n": 1, "reason": t.reason})
    return out


def _task_of(run: RunResult, model: str, case: CaseResult | None) -> str:
    return case.task if case else next((t.task for t in run.tests if t.model == model and t.task), "") or ""


def categories(run: RunResult) -> list[dict[str, Any]]:
    """Per category: models with their cells, params and p50 per hardware, and the pass tally."""
    hws, rows, cats = matrix(run, "mock")
    mock = cases(run, "mock")
    by_cat: dict[str, list[str]] = defaultdict(list)
    for m in rows:
        by_cat[cats.get(m) or "other"].append(m)
    out = []
    for cat in sorted(by_cat):
        models = by_cat[cat]
        entries = []
        for m in models:
            any_case = next((mock[(m, h)] for h in hws if (m, h) in mock), None)
            p50 = [mock[(m, h)].metrics.latency.p50_ms if (m, h) in mock and mock[(m, h)].metrics.latency else None for h in hws]
            entries.append({"model": m, "task": _task_of(run, m, any_case), "icons": [ICON[rows[m][h][0]] for h in hws],
                            "params": any_case.metrics.params if any_case else None, "p50": p50})
        out.append({"name": cat, "models": entries, "hws": hws,
                    "passed": sum(1 for m in models for h in hws if rows[m][h][0] == "passed"),
                    "ran": sum(1 for m in models for h in hws if rows[m][h][0] not in ("skipped", NOT_RUN))})
    return out


# ---- precision axis: (model, hardware, precision) cells

VARIANT_ICON = {"within": "✅", "beyond": "⚠️", "measured": "◦", "error": "💥"}
"""A precision variant is not a test: its verdict against its own tolerance has its own three marks."""


def _variant_state(v: Any) -> str:
    """A precision variant's verdict: within / beyond its tolerance, or measured with no tolerance set."""
    if getattr(v, "error", ""):
        return "error"
    return "measured" if v.ok is None else ("within" if v.ok else "beyond")


def precision_cells(run: RunResult) -> list[dict[str, Any]]:
    """One cell per (model, hardware, precision): the case's own precision carries the test status;
    each extra precision it measured (OpenVINO default/bf16, int8, int4 ...) carries its verdict
    against its tolerance and the numbers behind it (the hover text)."""
    hws, rows, _ = matrix(run, "mock")
    mock = cases(run, "mock")
    out = []
    for m, per_hw in rows.items():
        for h in hws:
            st, reason = per_hw[h]
            if st == NOT_RUN:
                continue
            c = mock.get((m, h))
            out.append({"m": m, "h": h, "p": (c.precision if c else "fp32"), "s": st, "i": ICON[st], "r": first_line(reason),
                        "base": True})
            for v in c.variants if c else []:
                if v.error:
                    out.append({"m": m, "h": h, "p": v.precision, "s": "error", "i": VARIANT_ICON["error"],
                                "r": first_line(v.error), "base": False})
                    continue
                detail = f"cos {v.cosine:.5f}" + (f" (min {v.min_cosine})" if v.min_cosine is not None else "")
                detail += f", max abs {v.max_abs:.3g}"
                if v.p50_ms:
                    detail += f", p50 {v.p50_ms:.2f} ms"
                if v.speedup_vs_torch:
                    detail += f", {v.speedup_vs_torch:.2f}× vs torch f32"
                if v.token_agreement is not None:
                    detail += f", tokens agree {v.token_agreement:.0%}"
                state = _variant_state(v)
                out.append({"m": m, "h": h, "p": v.precision, "s": state, "i": VARIANT_ICON[state], "r": detail, "base": False})
    return out


def precision_columns(cells: list[dict[str, Any]], hws: list[str]) -> list[tuple[str, str]]:
    """(hardware, precision) columns in hardware order, the case precision first, then as measured."""
    cols: list[tuple[str, str]] = []
    for h in hws:
        for c in sorted((c for c in cells if c["h"] == h), key=lambda c: not c["base"]):
            if (h, c["p"]) not in cols:
                cols.append((h, c["p"]))
    return cols


# ---- coverage: how much of what transformers maps is exercised, and how much passes

def registry_types() -> dict[str, dict[str, Any]]:
    """Every auto-mapped model type with its category and tasks (the registry's derived snapshot);
    empty when the registry does not expose one, so coverage falls back to the run's own types."""
    try:
        from ..registry.derive import load_snapshot

        types = load_snapshot().get("types") or {}
    except (ImportError, OSError, ValueError):
        return {}
    return {t: {"category": e.get("category") or "other", "tasks": list(e.get("heads") or {})} for t, e in types.items()}


def coverage(run: RunResult, universe: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Per category and per task: M types (auto-mapped, or in the run), N passing on CPU, K on
    OpenVINO within tolerance (its parity test passed), plus the status tally of every cell."""
    hws, rows, cats = matrix(run, "mock")
    mock = cases(run, "mock")
    universe = registry_types() if universe is None else universe
    source = "auto-mapped" if universe else "recorded"
    if not universe:
        universe = {m: {"category": cats.get(m) or "other", "tasks": [_task_of(run, m, next(
            (mock[(m, h)] for h in hws if (m, h) in mock), None))]} for m in rows}
    tested_task = {m: _task_of(run, m, next((mock[(m, h)] for h in hws if (m, h) in mock), None)) for m in rows}

    def tally(members: list[str], task: str | None = None) -> dict[str, Any]:
        ran = [m for m in members if m in rows and (task is None or tested_task.get(m) == task)]
        states: dict[str, int] = defaultdict(int)
        for m in ran:
            for h in hws:
                if rows[m][h][0] != NOT_RUN:
                    states[rows[m][h][0]] += 1
        return {"total": len(members), "run": len(ran),
                "cpu": sum(1 for m in ran if rows[m].get("cpu", ("",))[0] == "passed"),
                "openvino": sum(1 for m in ran if rows[m].get("openvino", ("",))[0] == "passed"),
                "states": dict(states)}

    by_cat: dict[str, list[str]] = defaultdict(list)
    by_task: dict[str, list[str]] = defaultdict(list)
    for t, e in universe.items():
        by_cat[e["category"]].append(t)
        for task in e["tasks"]:
            by_task[task].append(t)
    extra = [m for m in rows if m not in universe]  # tested but not auto-mapped (e.g. diffusion pipelines)
    for m in extra:
        by_cat[cats.get(m) or "other"].append(m)
    total = tally(list(universe) + extra)
    tasks = {task: tally(ms, task) for task, ms in sorted(by_task.items())}
    return {"source": source, "total": total,
            "categories": {c: tally(ms) for c, ms in sorted(by_cat.items())},
            "tasks": {k: v for k, v in tasks.items() if v["run"]},
            "untested_tasks": sum(1 for v in tasks.values() if not v["run"])}


def coverage_line(cov: dict[str, Any]) -> str:
    t = cov["total"]
    return (f"{t['cpu']} of {t['total']} {cov['source']} types pass on CPU, {t['openvino']} on OpenVINO within tolerance "
            f"({t['run']} tested in this run).")


# ---- metrics

def speedup(cpu: CaseResult | None, ov: CaseResult | None) -> float | None:
    if not cpu or not ov or not cpu.metrics.latency or not ov.metrics.latency or ov.metrics.latency.p50_ms <= 0:
        return None
    return cpu.metrics.latency.p50_ms / ov.metrics.latency.p50_ms


def geomean(values: list[float]) -> float | None:
    vals = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def speedups(run: RunResult) -> list[dict[str, Any]]:
    mock = cases(run, "mock")
    out = []
    for (m, h), ov in sorted(mock.items()):
        cpu = mock.get((m, "cpu"))
        s = speedup(cpu, ov) if h == "openvino" else None
        if s is not None and cpu is not None:
            out.append({"m": m, "cpu": cpu.metrics.latency.p50_ms, "ov": ov.metrics.latency.p50_ms, "x": s})  # type: ignore[union-attr]
    return out


def batch_speedups(run: RunResult) -> tuple[list[str], list[tuple[str, list[str]]]]:
    mock = cases(run, "mock")
    sizes = sorted({bs for c in mock.values() for bs in c.metrics.batch_latency}, key=int)
    rows = []
    for (m, h), ov in sorted(mock.items()):
        cpu = mock.get((m, "cpu"))
        if h != "openvino" or cpu is None:
            continue
        cells = []
        for bs, lat in sorted(ov.metrics.batch_latency.items(), key=lambda kv: int(kv[0])):
            ref = cpu.metrics.batch_latency.get(bs)
            cells.append(f"{ref.p50_ms / lat.p50_ms:.2f}×" if ref and lat.p50_ms > 0 else "–")
        if cells:
            rows.append((m, cells))
    return sizes, rows


def bench_report_doc(run: RunResult) -> dict[str, Any] | None:
    """The benchmark report of results/bench_report (backend × precision × batch, with spread and
    accuracy cost), for runs that measured extra precisions or a sequence sweep (the batch-only
    table is the Benchmark section already); None when that module is absent or has nothing."""
    wanted = [t.case for t in run.tests if t.case is not None and (t.case.variants or getattr(t.case.metrics, "seq_latency", None))]
    if not wanted:
        return None
    try:
        from . import bench_report
    except ImportError:
        return None
    return bench_report.build(wanted)


def build(run: RunResult, comparison: Any | None = None) -> dict[str, Any]:
    """Everything the templates read."""
    counts = run.counts()
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for t in run.tests:
        kinds[t.kind][t.status] += 1
    all_cases = sorted(((t, t.case) for t in run.tests if t.case is not None),
                       key=lambda tc: (tc[0].model or "", tc[0].impl, tc[0].hardware or ""))
    bench = sorted(((t, c) for t, c in all_cases if c.metrics.batch_latency), key=lambda tc: (tc[1].model, tc[0].impl, tc[1].hardware))
    speed = speedups(run)
    sizes, per_batch = batch_speedups(run) if bench else ([], [])
    from ..cache.report import (
        cache_section,  # seam(cache): per-case stage hits and run totals (issue 12)
    )

    cov = coverage(run)
    hws = hardware(run)
    cells = precision_cells(run)
    return {
        "run": run, "sel": run.selection, "options": run.options, "env": run.environment, "hw_info": run.hardware or {},
        "summary": [(st, ICON[st], counts[st]) for st in DISPLAY if counts.get(st)], "total": len(run.tests),
        "kinds": {k: sorted(c.items()) for k, c in sorted(kinds.items())} if len(kinds) > 1 else {},
        "mock": matrix_section(run, "mock"), "real": matrix_section(run, "real"),
        "has_mock": any(t.impl == "mock" and t.kind == "model" for t in run.tests),
        "apis": apis(run), "categories": categories(run), "coverage": cov, "coverage_line": coverage_line(cov),
        "precision": {"cells": cells, "columns": precision_columns(cells, hws),
                      "extra": sum(1 for c in cells if not c["base"])},
        "cases": all_cases, "speed": speed, "speed_geomean": geomean([s["x"] for s in speed]),
        "bench": bench, "batch_sizes": sizes, "per_batch": per_batch, "bench_doc": bench_report_doc(run),
        "cache_lines": cache_section([t.case for t in run.tests if t.case is not None]),
        "slowest": sorted(run.tests, key=lambda t: -t.duration_s)[:15],
        "failures": [t for t in run.tests if t.status in FAILING], "comparison": comparison,
        "workers": _workers(run),
    }


def _workers(run: RunResult) -> str:
    if not run.workers:
        return ""
    imp = [w.import_s for w in run.workers if w.import_s is not None]
    start = [w.startup_s for w in run.workers if w.startup_s is not None]
    ends: dict[str, int] = defaultdict(int)
    for w in run.workers:
        ends[w.end or "?"] += 1
    return (f"{len(run.workers)} started"
            + (f", start-up {sum(start) / len(start):.1f} s mean (imports {sum(imp) / len(imp):.1f} s)" if start and imp else "")
            + "; ended: " + ", ".join(f"{n} {k}" for k, n in sorted(ends.items())))
