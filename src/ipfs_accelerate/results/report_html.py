"""`report.html`: one self-contained file (no CDN, works offline) rendered from a RunResult.

Plotting approach: hand-rolled SVG drawn by ~150 lines of vanilla JS from the run's data, which
is embedded once as JSON. Chosen over plotly-with-inlined-JS because plotly.min.js alone is
~3.5 MB per report and takes ~1 s to parse before anything shows, while every chart here is a
bar chart or a grid; over matplotlib SVG because charts drawn in Python would repeat the data in
the file and could not follow the table filters. Tables render lazily (200 rows, then more on
demand), so a 10k-test run opens quickly; the JSON is compact (short keys, outputs dropped).
"""

from __future__ import annotations

import html as _html
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from . import context
from ._io import write_atomic
from .render import render
from .report_md import bench_markdown
from .run import RunResult
from .status import DISPLAY, ICON, SEVERITY

REPORT_HTML = "report.html"
_first_line = context.first_line


def data_of(run: RunResult, comparison: Any | None = None, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the page draws, as plain JSON (one copy of the data, read by every chart); the
    numbers come from the same context the Markdown report renders."""
    ctx = ctx or context.build(run, comparison)
    cases = context.cases(run, "mock")
    metrics = []
    for (m, h), c in sorted(cases.items()):
        lat = c.metrics.latency
        metrics.append({"m": m, "h": h, "p50": lat.p50_ms if lat else None, "rss": c.metrics.peak_rss_mb,
                        "first": c.metrics.first_inference_ms})
    prec = ctx["precision"]
    tests = [{"n": t.nodeid, "s": str(t.status), "m": t.model or t.api or "", "h": t.hardware or "", "i": t.impl,
              "c": t.category or "", "d": round(t.duration_s, 3), "r": _first_line(t.reason, 200)} for t in run.tests]
    return {
        "hws": context.hardware(run), "cols": prec["columns"], "cells": prec["cells"], "metrics": metrics,
        "speed": [{"m": s["m"], "x": s["x"]} for s in ctx["speed"]], "coverage": ctx["coverage"], "tests": tests,
        "icons": ICON, "order": list(SEVERITY),
        "changes": [{"k": c.kind, "n": c.nodeid, "m": c.model or "", "h": c.hardware or "", "b": c.base, "a": c.head,
                     "d": c.detail} for c in (comparison.changes if comparison is not None else [])],
    }


def md_to_html(text: str) -> str:
    """The few Markdown shapes a section module emits (### headings, tables, bullets, paragraphs) as
    HTML, so another owner's Markdown section (results/bench_report) shows here without a second
    implementation of its table."""
    out: list[str] = []
    table: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                tag = "th" if not table else "td"
                cells = [_html.escape(c.strip().replace("\\|", "|")) for c in line.strip().strip("|").split(" | ")]
                table.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        if table:
            out.append("<table>" + "".join(table) + "</table>")
            table = []
        if line.startswith("### "):
            out.append(f"<h3>{_html.escape(line[4:])}</h3>")
        elif line.startswith("- "):
            out.append(f'<div class="one">{_html.escape(line[2:])}</div>')
        elif line.strip():
            out.append(f'<p class="muted">{_html.escape(line)}</p>')
    return "\n".join(out)


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


def _extra_sections(ctx: dict[str, Any]) -> list[str]:
    """Sections other owners' modules contribute: the benchmark report of results/bench_report."""
    bench = bench_markdown(ctx["bench_doc"])
    return ["<h2>Benchmark by backend and precision</h2>\n" + md_to_html(bench)] if bench else []


def render_html(run: RunResult, comparison: Any | None = None, coverage_note: str | None = None) -> str:
    ctx = context.build(run, comparison)
    data = data_of(run, comparison, ctx)
    blob = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    counts = run.counts()
    sel = run.selection
    selected = (f"type {sel.type}, category {sel.category}, hardware {' '.join(sel.hardware)}, impl {sel.impl_type}"
                + (f", models {' '.join(sel.models[:10])}" + (" …" if len(sel.models) > 10 else "") if sel.models else "")
                + (f", limit {sel.limit}" if sel.limit else "") + (f", shard {sel.shard}" if sel.shard else ""))
    worst_rec = context.worst(run.tests)
    return render("report.html.j2", run=run, data=blob, counts=[(s, counts.get(s, 0), ICON[s]) for s in DISPLAY if counts.get(s)],
                  selected=selected, skips=_skip_summary(run), total=len(run.tests), extra=_extra_sections(ctx),
                  worst=worst_rec.status if worst_rec else "none", coverage_note=coverage_note or ctx["coverage_line"],
                  has_changes=comparison is not None, base=getattr(comparison, "base", ""))


def write_html(run: RunResult, run_dir: Path, comparison: Any | None = None) -> Path:
    path = Path(run_dir) / REPORT_HTML
    write_atomic(path, render_html(run, comparison))
    return path
