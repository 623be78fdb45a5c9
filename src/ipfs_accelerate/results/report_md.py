"""Markdown report from a RunResult: one Jinja template per section (`templates/md_*.md.j2`), filled from
the context `results/context.py` builds once and `report_html` shares. A pure function of the
run, so a partial run renders too; sections with nothing to say are one line."""

from __future__ import annotations

import re

from . import context
from .render import render as _render
from .run import RunResult


def bench_markdown(doc: dict | None) -> str:
    """results/bench_report's Markdown, nested under this report's headings (its own title dropped)."""
    if not doc:
        return ""
    from . import bench_report

    text = bench_report.markdown(doc)
    body = [ln for ln in text.splitlines() if not ln.startswith("<!--") and ln != "# Benchmark report"]
    return re.sub(r"^## ", "### ", "\n".join(body).strip("\n"), flags=re.M) + "\n"


def render(run: RunResult) -> str:
    ctx = context.build(run)
    return _render("report.md.j2", bench_md=bench_markdown(ctx["bench_doc"]), **ctx)
