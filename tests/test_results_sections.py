"""Report sections shared by report.md and report.html (one context, one template per section):
the precision axis of the heat-map, coverage against the registry's auto-mapped types, the
benchmark section of results/bench_report, and one-line collapse of sections with nothing to say."""

from __future__ import annotations

import re

import numpy as np
from test_history import make_run

from ipfs_accelerate.results import context, report_html, report_md
from ipfs_accelerate.results.schema import PrecisionVariant
from ipfs_accelerate.results.status import ICON

UNIVERSE = {"bert": {"category": "language", "tasks": ["fill-mask", "feature-extraction"]},
            "gpt2": {"category": "language", "tasks": ["text-generation"]},
            "llama": {"category": "language", "tasks": ["text-generation"]},
            "vit": {"category": "vision", "tasks": ["image-classification"]},
            "whisper": {"category": "audio", "tasks": ["automatic-speech-recognition"]}}


def _with_variants():  # noqa: ANN202
    run = make_run("20261203-130000-000-cafe", np.random.default_rng(3), statuses={("vit", "openvino"): "xfailed"})
    for t in run.tests:
        if t.hardware == "openvino" and t.model == "bert" and t.case is not None:
            t.case.variants = [
                PrecisionVariant(precision="default", max_abs=0.01, cosine=0.99991, min_cosine=0.99, ok=True, p50_ms=1.5),
                PrecisionVariant(precision="int8", max_abs=0.2, cosine=0.9931, min_cosine=0.995, ok=False, p50_ms=1.2),
                PrecisionVariant(precision="int4", max_abs=0.4, cosine=0.91, p50_ms=1.1),
            ]
    return run


def test_precision_cells_carry_verdicts_and_reasons() -> None:
    run = _with_variants()
    cells = context.precision_cells(run)
    base = [c for c in cells if c["base"]]
    assert len(base) == len({(t.model, t.hardware) for t in run.tests})  # one per recorded (model, hardware)
    extra = {c["p"]: c for c in cells if not c["base"]}
    assert {p: c["s"] for p, c in extra.items()} == {"default": "within", "int8": "beyond", "int4": "measured"}
    assert "cos 0.99310 (min 0.995)" in extra["int8"]["r"] and "p50 1.20 ms" in extra["int8"]["r"]
    cols = context.precision_columns(cells, context.hardware(run))
    assert cols == [("cpu", "fp32"), ("openvino", "fp32"), ("openvino", "default"), ("openvino", "int8"), ("openvino", "int4")]
    md = report_md.render(run)
    assert "| model | cpu fp32 | openvino fp32 | openvino default | openvino int8 | openvino int4 |" in md
    assert re.search(r"\| bert \| ✅ \| ✅ \| within \| beyond \| measured \|", md) is None  # icons, not words, in the grid
    assert f"| bert | {ICON['passed']} | {ICON['passed']} | ✅ | ⚠️ | ◦ |" in md
    assert "| bert | openvino | int8 | beyond | cos 0.99310 (min 0.995), max abs 0.2, p50 1.20 ms |" in md
    html = report_html.render_html(run)
    assert '"p":"int8","s":"beyond"' in html


def test_a_variant_that_could_not_compile_shows_its_error_not_numbers() -> None:
    """OpenVINO's default precision crashing compile_model (the probe's CompileCrashed) is a
    variant with an error: its cell says so, never a cosine it did not measure."""
    run = _with_variants()
    err = "CompileCrashed: OpenVINO compile_model crashed with SIGFPE (config {})"
    for t in run.tests:
        if t.hardware == "openvino" and t.model == "bert" and t.case is not None:
            t.case.variants = [PrecisionVariant(precision="default", ok=False, error=err)]
    extra = [c for c in context.precision_cells(run) if not c["base"]]
    assert [(c["p"], c["s"], c["i"], c["r"]) for c in extra] == [("default", "error", "💥", err)]
    md = report_md.render(run)
    assert f"| bert | openvino | default | error | {err} |" in md
    assert "cos" not in next(ln for ln in md.splitlines() if ln.startswith("| bert | openvino | default |"))


def test_coverage_counts_against_the_registry_by_category_and_task() -> None:
    run = make_run("r", np.random.default_rng(4), statuses={("clip", "cpu"): "failed", ("vit", "openvino"): "xfailed"})
    models = sorted({t.model for t in run.tests})
    for t in run.tests:
        if t.case is not None:
            t.case.task = {"bert": "fill-mask", "gpt2": "text-generation", "vit": "image-classification"}.get(t.model, "x")
    cov = context.coverage(run, UNIVERSE)
    assert cov["source"] == "auto-mapped"
    extra = [m for m in models if m not in UNIVERSE]  # tested but not auto-mapped: counted too, never dropped
    assert cov["total"]["total"] == len(UNIVERSE) + len(extra)
    lang = cov["categories"]["language"]
    tested_lang = [m for m in models if m in ("bert", "gpt2", "llama") or m in extra]
    assert lang["run"] == len(tested_lang) and lang["cpu"] == len([m for m in tested_lang if m != "clip"])
    assert cov["categories"]["vision"]["openvino"] == 0 and cov["categories"]["audio"]["run"] == 1  # the registry decides the category
    assert cov["tasks"]["text-generation"]["total"] == 2 and cov["tasks"]["text-generation"]["run"] == (1 if "gpt2" in models else 0)
    line = context.coverage_line(cov)
    assert line.startswith(f"{cov['total']['cpu']} of {cov['total']['total']} auto-mapped types pass on CPU, "
                           f"{cov['total']['openvino']} on OpenVINO within tolerance")
    # without a registry the run's own model types are the universe
    own = context.coverage(run, {})
    assert own["source"] == "recorded" and own["total"]["total"] == len(models)


def test_coverage_and_heatmap_reach_both_reports() -> None:
    run = _with_variants()
    md = report_md.render(run)
    cov_line = context.coverage_line(context.coverage(run))
    assert f"- Coverage: {cov_line}" in md and "## Coverage" in md and "| category | types | tested |" in md
    html = report_html.render_html(run)
    assert cov_line.replace("'", "&#39;") in html and '"categories":' in html


def test_bench_report_section_in_both_reports() -> None:
    run = _with_variants()
    md = report_md.render(run)
    section = md.split("## Benchmark by backend and precision")[1]
    assert "### bert (t;" in section and "| openvino | int8 | batch 1 |" in section and "NO (cos < 0.995)" in section
    html = report_html.render_html(run)
    assert "<h2>Benchmark by backend and precision</h2>" in html and "<td>int8</td>" in html and "NO (cos &lt; 0.995)" in html


def test_empty_sections_are_one_line() -> None:
    run = make_run("r", np.random.default_rng(5))  # models only: no APIs, no failures, no variants
    md = report_md.render(run)
    for line in ("## API backends — none in this run", "## Failures — none",
                 "## Precisions — each case at its own precision only (no OpenVINO default/int8/int4 variants measured)"):
        i = md.index(line)
        assert md[i + len(line):].startswith("\n\n## "), line  # next thing is the next section
    assert "Benchmark by backend and precision" not in md  # no variants, no sweep: not even a line
    assert "Pretrained weights" not in md  # no real tests recorded
