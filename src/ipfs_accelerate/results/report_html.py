"""`report.html`: one self-contained file (no CDN, works offline) rendered from a RunResult.

Plotting approach: hand-rolled SVG drawn by ~150 lines of vanilla JS from the run's data, which
is embedded once as JSON. Chosen over plotly-with-inlined-JS because plotly.min.js alone is
~3.5 MB per report and takes ~1 s to parse before anything shows, while every chart here is a
bar chart or a grid; over matplotlib SVG because charts drawn in Python would repeat the data in
the file and could not follow the table filters. Tables render lazily (200 rows, then more on
demand), so a 10k-test run opens quickly; the JSON is compact (short keys, outputs dropped).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ._io import write_atomic
from .render import render
from .report_md import _cases, _matrix, worst
from .run import RunResult
from .status import DISPLAY, ICON, SEVERITY

REPORT_HTML = "report.html"


def _first_line(text: str, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line[:limit]


def data_of(run: RunResult, comparison: Any | None = None) -> dict[str, Any]:
    """Everything the page draws, as plain JSON (one copy of the data, read by every chart)."""
    hws, rows, cats = _matrix(run, "mock")
    cells = []
    for m, per_hw in rows.items():
        for h in hws:
            st, reason = per_hw[h]
            if st == "not-run":
                continue
            cells.append({"m": m, "h": h, "s": st, "r": _first_line(reason)})
    cases = _cases(run, "mock")
    variants: dict[str, list[str]] = defaultdict(list)
    for (m, h), c in cases.items():
        for v in c.variants:
            variants[f"{m}|{h}"].append(f"{v.precision}: cos {v.cosine:.5f}" + (f", p50 {v.p50_ms:.2f} ms" if v.p50_ms else ""))
    metrics = []
    for (m, h), c in sorted(cases.items()):
        lat = c.metrics.latency
        metrics.append({"m": m, "h": h, "p50": lat.p50_ms if lat else None, "rss": c.metrics.peak_rss_mb,
                        "first": c.metrics.first_inference_ms})
    speed = []
    for (m, h), ov in sorted(cases.items()):
        cpu = cases.get((m, "cpu"))
        if h == "openvino" and cpu and cpu.metrics.latency and ov.metrics.latency and ov.metrics.latency.p50_ms > 0:
            speed.append({"m": m, "x": cpu.metrics.latency.p50_ms / ov.metrics.latency.p50_ms})
    coverage: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for m, per_hw in rows.items():
        for h in hws:
            st = per_hw[h][0]
            if st != "not-run":
                coverage[cats.get(m) or "other"][st] += 1
    tests = [{"n": t.nodeid, "s": str(t.status), "m": t.model or t.api or "", "h": t.hardware or "", "i": t.impl,
              "c": t.category or "", "d": round(t.duration_s, 3), "r": _first_line(t.reason, 200)} for t in run.tests]
    return {
        "hws": hws, "cells": cells, "variants": variants, "metrics": metrics, "speed": speed,
        "coverage": {k: dict(v) for k, v in sorted(coverage.items())}, "tests": tests,
        "icons": ICON, "order": list(SEVERITY),
        "changes": [{"k": c.kind, "n": c.nodeid, "m": c.model or "", "h": c.hardware or "", "b": c.base, "a": c.head,
                     "d": c.detail} for c in (comparison.changes if comparison is not None else [])],
    }


def _skip_summary(run: RunResult) -> list[tuple[int, str]]:
    """Why tests were skipped, once: (count, reason with the model name folded out), most first."""
    why: dict[str, int] = defaultdict(int)
    for t in run.tests:
        if t.status == "skipped":
            line = _first_line(t.reason, 200)
            if t.model:
                line = line.replace(f"'{t.model}'", "'<model>'").replace(t.model, "<model>")
            why[line or "(no reason recorded)"] += 1
    return sorted(((n, r) for r, n in why.items()), key=lambda x: -x[0])


def _extra_sections(run: RunResult) -> list[str]:
    """HTML from other owners' report modules, when present (the benchmark table of results/bench_report)."""
    out = []
    try:
        from . import bench_report  # type: ignore[attr-defined]
    except ImportError:
        return out
    fn = getattr(bench_report, "html_section", None)
    if callable(fn):
        section = fn(run)
        if section:
            out.append(str(section))
    return out


def render_html(run: RunResult, comparison: Any | None = None, coverage_note: str | None = None) -> str:
    data = data_of(run, comparison)
    blob = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    counts = run.counts()
    sel = run.selection
    selected = (f"type {sel.type}, category {sel.category}, hardware {' '.join(sel.hardware)}, impl {sel.impl_type}"
                + (f", models {' '.join(sel.models[:10])}" + (" …" if len(sel.models) > 10 else "") if sel.models else "")
                + (f", limit {sel.limit}" if sel.limit else "") + (f", shard {sel.shard}" if sel.shard else ""))
    worst_rec = worst(run.tests)
    return render("report.html.j2", run=run, data=blob, counts=[(s, counts.get(s, 0), ICON[s]) for s in DISPLAY if counts.get(s)],
                  selected=selected, skips=_skip_summary(run), total=len(run.tests), extra=_extra_sections(run),
                  worst=worst_rec.status if worst_rec else "none", coverage_note=coverage_note,
                  has_changes=comparison is not None, base=getattr(comparison, "base", ""))


def write_html(run: RunResult, run_dir: Path, comparison: Any | None = None) -> Path:
    path = Path(run_dir) / REPORT_HTML
    write_atomic(path, render_html(run, comparison))
    return path
