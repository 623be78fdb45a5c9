"""Markdown report from a RunResult: summary, model x hardware matrix with reasons, per-category
tables, API table, metrics with the OpenVINO-vs-PyTorch speed-up, benchmark tables, slowest tests,
failure details, environment. A pure function of the run, so a partial run renders too."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from .plain import FAILING
from .run import RunResult, TestRecord
from .schema import CaseResult
from .status import DISPLAY, ICON, rank

HW_ORDER = ("cpu", "cuda", "openvino")


def worst(records: Iterable[TestRecord]) -> TestRecord | None:
    """The record that decides a cell: worst status first (crashed ... passed, skipped last)."""
    recs = list(records)
    return min(recs, key=lambda r: rank(r.status)) if recs else None


def _cell_status(records: list[TestRecord]) -> tuple[str, str]:
    """(status, reason) of one (model, hardware) case: any failure fails it; passed beats skipped."""
    w = worst(records)
    if w is None:
        return "not-run", ""
    if w.status == "skipped" and all(r.status == "skipped" for r in records):
        return "skipped", w.reason
    if w.status == "skipped":  # some ran, some skipped (e.g. no expected-results file): the ran ones decide
        ran = [r for r in records if r.status != "skipped"]
        w = worst(ran) or w
    return w.status, w.reason if w.status != "passed" else ""


def _esc(text: str, limit: int = 160) -> str:
    one = " ".join((text or "").split())
    if len(one) > limit:
        one = one[: limit - 1] + "…"
    return one.replace("|", "\\|")


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "–"
    return f"{x:.{digits}f}"


def _cases(run: RunResult, impl: str = "mock") -> dict[tuple[str, str], CaseResult]:
    out: dict[tuple[str, str], CaseResult] = {}
    for t in run.tests:
        if t.case is not None and t.model and t.hardware and t.impl == impl:
            out[(t.model, t.hardware)] = t.case
    return out


def _hardware(run: RunResult) -> list[str]:
    seen = {t.hardware for t in run.tests if t.hardware}
    order = [h for h in run.selection.hardware if h in seen or h in HW_ORDER] or list(HW_ORDER)
    return [h for h in order if h in seen] or order


def _matrix(run: RunResult, impl: str) -> tuple[list[str], dict[str, dict[str, tuple[str, str]]], dict[str, str]]:
    """rows: model -> hardware -> (status, reason); categories by model."""
    hws = _hardware(run)
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
    rows: dict[str, dict[str, tuple[str, str]]] = {}
    for m in models:
        rows[m] = {}
        for h in hws:
            recs = by.get((m, h), []) + fileless.get(m, [])
            rows[m][h] = _cell_status(recs)
    return hws, rows, cats


def _matrix_section(lines: list[str], run: RunResult, impl: str, title: str, note: str) -> None:
    hws, rows, cats = _matrix(run, impl)
    if not rows:
        return
    if impl == "real":  # most models have no checkpoint offline: one line for those, rows for the rest
        idle = {m: r for m, r in rows.items() if all(st in ("skipped", "not-run") for st, _ in r.values())}
        why: dict[str, list[str]] = defaultdict(list)
        for m, r in idle.items():
            first = next((rs for st, rs in r.values() if st == "skipped" and rs), "")
            why[_esc(first.splitlines()[0].replace(f"'{m}'", "'<model>'") if first else "", 200)].append(m)
        rows = {m: r for m, r in rows.items() if m not in idle}
        lines += [f"## {title}", ""]
        for reason, models in sorted(why.items(), key=lambda kv: -len(kv[1])):
            who = ", ".join(models) if len(models) <= 8 else f"{len(models)} models ({', '.join(models[:5])}, …)"
            lines.append(f"- ⏭ skipped on every hardware — {who}: {reason or '(no reason recorded)'}")
        lines.append("")
        if not rows:
            return
        title = ""
    lines += ([f"## {title}", ""] if title else []) + [note, "", "| model | category | " + " | ".join(hws) + " |",
                                                         "|---|---|" + "---|" * len(hws)]
    for m, cells in rows.items():
        lines.append(f"| {m} | {cats.get(m, '')} | " + " | ".join(ICON[cells[h][0]] for h in hws) + " |")
    if impl == "mock" or not any(t.impl == "mock" and t.kind == "model" for t in run.tests):
        lines += ["", "Legend: ✅ passed · ❌ failed/error/crashed/timeout/unexpected pass · ⏭ skipped · 🔶 expected failure (known incompatibility) · – no test recorded"]
    lines.append("")
    # one line per (status, reason, set of hardware): "⏭ cuda skipped — 70 models: CUDA unavailable"
    per_model: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for m, cells in rows.items():
        for h in hws:
            st, reason = cells[h]
            if st not in ("passed", "not-run"):
                first = (reason.splitlines()[0] if reason else "").replace(f"'{m}'", "'<model>'")  # merge per-model wording
                per_model[(st, _esc(first, 220))][m].append(h)
    groups: dict[tuple[str, str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (st, reason), models in per_model.items():
        for m, hw in models.items():
            groups[(st, reason, tuple(hw))].append(m)
    if groups:
        lines += ["### Reasons", ""]
        for (st, reason, hw), models in sorted(groups.items(), key=lambda kv: (rank(kv[0][0]), kv[0][2], kv[0][1])):
            who = ", ".join(models) if len(models) <= 8 else f"{len(models)} models ({', '.join(models[:5])}, …)"
            lines.append(f"- {ICON[st]} **{', '.join(hw)}** {st} — {who}: {reason or '(no reason recorded)'}")
        lines.append("")


def _speedup(cpu: CaseResult | None, ov: CaseResult | None) -> float | None:
    if not cpu or not ov or not cpu.metrics.latency or not ov.metrics.latency:
        return None
    if ov.metrics.latency.p50_ms <= 0:
        return None
    return cpu.metrics.latency.p50_ms / ov.metrics.latency.p50_ms


def _geomean(values: list[float]) -> float | None:
    vals = [v for v in values if v and v > 0]
    if not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def render(run: RunResult) -> str:
    lines: list[str] = []
    sel = run.selection
    lines += [f"# Test report — run {run.run_id}", ""]
    state = {"complete": "complete", "interrupted": "**interrupted** (partial; continue with `--resume`)",
             "running": "**running** (partial snapshot)"}[run.state]
    lines += [
        f"- State: {state}",
        f"- Started: {run.started_at} · finished: {run.finished_at or '–'} · wall time: {run.wall_s:.1f} s",
        f"- Selection: type `{sel.type}`, category `{sel.category}`, hardware `{' '.join(sel.hardware)}`, impl `{sel.impl_type}`"
        + (f", models `{' '.join(sel.models)}`" if sel.models else "") + (f", apis `{' '.join(sel.apis)}`" if sel.apis else "")
        + (f", limit {sel.limit}" if sel.limit else "") + (f", shard {sel.shard}" if sel.shard else "")
        + (", **benchmark**" if sel.benchmark else "") + f" — {len(sel.files)} test files",
        f"- Workers: {run.options.workers} × {run.options.threads_per_worker} thread, per-test timeout {run.options.timeout_s:g} s, "
        f"memory cap {run.options.max_memory_mb:.0f} MB per worker",
        "",
    ]
    if run.options.argv:
        lines += [f"Command: `{' '.join(run.options.argv)}`", ""]

    # ---- summary
    counts = run.counts()
    total = len(run.tests)
    lines += ["## Summary", "", "| status | tests |", "|---|---|"]
    for st in DISPLAY:
        if counts.get(st):
            lines.append(f"| {ICON[st]} {st} | {counts[st]} |")
    lines.append(f"| **total recorded** | **{total}** |")
    if run.not_run:
        lines.append(f"| · not run | {run.not_run} |")
    lines.append("")
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for t in run.tests:
        kinds[t.kind][t.status] += 1
    if len(kinds) > 1:
        for k, c in sorted(kinds.items()):
            lines.append(f"- {k} tests: " + ", ".join(f"{n} {s}" for s, n in sorted(c.items())))
        lines.append("")

    # ---- matrices
    _matrix_section(lines, run, "mock", "Compatibility matrix (model × hardware)",
                    "Tiny random-weight models (`--impl-type mock`); a cell is the worst status of that case's tests.")
    _matrix_section(lines, run, "real", "Pretrained weights (`--impl-type real`)",
                    "Real checkpoints that resolve offline; others are skipped with the reason.")

    # ---- APIs
    apis: dict[str, dict[str, list[TestRecord]]] = defaultdict(lambda: defaultdict(list))
    for t in run.tests:
        if t.kind == "api" and t.api:
            apis[t.api][t.impl].append(t)
    api_files = [t for t in run.tests if t.kind == "api" and not t.api]
    if apis or api_files:
        lines += ["## API backends", "", "| api | mock | real | tests | reason |", "|---|---|---|---|---|"]
        for name in sorted(apis):
            cells, reasons = [], []
            for impl in ("mock", "real"):
                recs = apis[name].get(impl, [])
                st, why = _cell_status(recs) if recs else ("not-run", "")
                cells.append(ICON[st])
                if why:
                    reasons.append(f"{impl}: {_esc(why, 120)}")
            n = sum(len(v) for v in apis[name].values())
            lines.append(f"| {name} | {cells[0]} | {cells[1]} | {n} | {'; '.join(reasons)} |")
        for t in api_files:
            lines.append(f"| {t.file} | {ICON[t.status]} | | 1 | {_esc(t.reason, 120)} |")
        lines.append("")

    # ---- per category
    hws, rows, cats = _matrix(run, "mock")
    mock_cases = _cases(run, "mock")
    if rows:
        lines += ["## Per category", ""]
        by_cat: dict[str, list[str]] = defaultdict(list)
        for m in rows:
            by_cat[cats.get(m) or "other"].append(m)
        for cat in sorted(by_cat):
            models = by_cat[cat]
            ok = sum(1 for m in models for h in hws if rows[m][h][0] == "passed")
            ran = sum(1 for m in models for h in hws if rows[m][h][0] not in ("skipped", "not-run"))
            lines += [f"### {cat} — {len(models)} models, {ok}/{ran} cases passed", "",
                      "| model | task | " + " | ".join(f"{h}" for h in hws) + " | params | " + " | ".join(f"{h} p50 ms" for h in hws) + " |",
                      "|---|---|" + "---|" * (2 * len(hws) + 1)]
            for m in models:
                case_any = next((mock_cases[(m, h)] for h in hws if (m, h) in mock_cases), None)
                task = case_any.task if case_any else next((t.task for t in run.tests if t.model == m and t.task), "") or ""
                params = f"{case_any.metrics.params:,}" if case_any and case_any.metrics.params else "–"
                lat = []
                for h in hws:
                    c = mock_cases.get((m, h))
                    lat.append(_fmt(c.metrics.latency.p50_ms) if c and c.metrics.latency else "–")
                lines.append(f"| {m} | {task} | " + " | ".join(ICON[rows[m][h][0]] for h in hws) + f" | {params} | " + " | ".join(lat) + " |")
            lines.append("")

    # ---- metrics
    all_cases = [(t, t.case) for t in run.tests if t.case is not None]
    if all_cases:
        lines += ["## Metrics", "", "Per (model, hardware) case, from its metrics test. Latency of a single input, one thread per runtime.", "",
                  "| model | impl | hardware | conversion | build s | convert s | first ms | p50 ms | p90 ms | p99 ms | peak RSS MB | status |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for t, c in sorted(all_cases, key=lambda tc: (tc[0].model or "", tc[0].impl, tc[0].hardware or "")):
            m = c.metrics
            lat = m.latency
            lines.append(
                f"| {c.model} | {t.impl} | {c.hardware} | {c.conversion or '–'} | {_fmt(m.build_s)} | {_fmt(m.prepare_s)} | "
                f"{_fmt(m.first_inference_ms)} | {_fmt(lat.p50_ms if lat else None)} | {_fmt(lat.p90_ms if lat else None)} | "
                f"{_fmt(lat.p99_ms if lat else None)} | {_fmt(m.peak_rss_mb, 0)} | {ICON.get(c.status, '')} {c.status} |"
            )
        lines.append("")
        speed = []
        for (m, h), c in sorted(mock_cases.items()):
            if h == "openvino":
                s = _speedup(mock_cases.get((m, "cpu")), c)
                if s is not None:
                    speed.append((m, mock_cases[(m, "cpu")], c, s))
        if speed:
            lines += ["### OpenVINO vs PyTorch (CPU eager) speed-up", "",
                      "p50 latency, batch 1, fp32 (OpenVINO compiled with INFERENCE_PRECISION_HINT=f32). >1 means OpenVINO is faster.", "",
                      "| model | PyTorch p50 ms | OpenVINO p50 ms | speed-up |", "|---|---|---|---|"]
            for m, cpu, ov, s in speed:
                lines.append(f"| {m} | {_fmt(cpu.metrics.latency.p50_ms)} | {_fmt(ov.metrics.latency.p50_ms)} | {s:.2f}× |")
            g = _geomean([s for *_, s in speed])
            lines += [f"| **geometric mean ({len(speed)} models)** | | | **{g:.2f}×** |" if g else "", ""]

    # ---- benchmark
    bench = [(t, c) for t, c in all_cases if c.metrics.batch_latency]
    if bench:
        lines += ["## Benchmark", "", "More warm-up and repetitions; batch sizes as listed. Throughput = batch / p50.", "",
                  "| model | impl | hardware | batch | p50 ms | p90 ms | p99 ms | throughput /s | peak RSS MB |", "|---|---|---|---|---|---|---|---|---|"]
        for t, c in sorted(bench, key=lambda tc: (tc[1].model, tc[0].impl, tc[1].hardware)):
            for bs, lat in sorted(c.metrics.batch_latency.items(), key=lambda kv: int(kv[0])):
                thr = c.metrics.throughput_per_s.get(bs)
                lines.append(f"| {c.model} | {t.impl} | {c.hardware} | {bs} | {_fmt(lat.p50_ms)} | {_fmt(lat.p90_ms)} | {_fmt(lat.p99_ms)} | "
                             f"{_fmt(thr, 1)} | {_fmt(c.metrics.peak_rss_mb, 0)} |")
        lines.append("")
        per_batch: list[str] = []
        for (m, h), ov in sorted(mock_cases.items()):
            cpu = mock_cases.get((m, "cpu"))
            if h != "openvino" or cpu is None:
                continue
            cells = []
            for bs, lat in sorted(ov.metrics.batch_latency.items(), key=lambda kv: int(kv[0])):
                ref = cpu.metrics.batch_latency.get(bs)
                cells.append(f"{ref.p50_ms / lat.p50_ms:.2f}×" if ref and lat.p50_ms > 0 else "–")
            if cells:
                per_batch.append(f"| {m} | " + " | ".join(cells) + " |")
        if per_batch:
            sizes = sorted({bs for _, c in bench for bs in c.metrics.batch_latency}, key=int)
            lines += ["### OpenVINO vs PyTorch speed-up per batch size", "", "| model | " + " | ".join(f"batch {b}" for b in sizes) + " |",
                      "|---|" + "---|" * len(sizes), *per_batch, ""]

    # ---- artifact cache (seam(cache): per-case stage hits and run totals, issue 12)
    from ..cache.report import cache_section

    lines += cache_section([t.case for t in run.tests if t.case is not None])

    # ---- slowest
    slow = sorted(run.tests, key=lambda t: -t.duration_s)[:15]
    if slow:
        lines += ["## Slowest tests", "", "| seconds | status | test |", "|---|---|---|"]
        for t in slow:
            lines.append(f"| {t.duration_s:.2f} | {ICON.get(t.status, '')} {t.status} | `{t.nodeid}` |")
        lines.append("")

    # ---- failures
    bad = [t for t in run.tests if t.status in FAILING]
    if bad:
        lines += [f"## Failures ({len(bad)})", ""]
        for t in bad[:100]:
            lines += [f"### {ICON[t.status]} `{t.nodeid}` — {t.status}", "", _esc(t.reason, 600), ""]
            if t.output:
                out = "\n".join(t.output.rstrip().splitlines()[-40:]).replace("```", "ˋˋˋ")
                lines += ["<details><summary>output (tail)</summary>", "", "```", out, "```", "", "</details>", ""]
        if len(bad) > 100:
            lines += [f"… and {len(bad) - 100} more (see results.json)", ""]

    # ---- environment
    env = run.environment
    lines += ["## Environment", "", f"- Python {env.python} on {env.platform} ({env.machine}), {env.usable_cpus}/{env.cpu_count} CPUs usable, {env.memory_gb} GB RAM"]
    cpu = (run.hardware or {}).get("cpu") or {}
    if cpu:
        lines.append(f"- CPU: {cpu.get('model', '?')}; bf16: {cpu.get('bf16')}, AMX: {cpu.get('amx')}")
    for acc in ("cuda", "rocm", "mps", "openvino"):
        info = (run.hardware or {}).get(acc)
        if isinstance(info, dict):
            lines.append(f"- {acc}: {'available' if info.get('available') else 'not available'}"
                         + (f" ({_esc(info.get('reason', ''), 120)})" if info.get("reason") else "")
                         + (f", version {info['version']}" if info.get("version") else ""))
    lines.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(run.versions.items())))
    if run.workers:
        imp = [w.import_s for w in run.workers if w.import_s is not None]
        start = [w.startup_s for w in run.workers if w.startup_s is not None]
        ends: dict[str, int] = defaultdict(int)
        for w in run.workers:
            ends[w.end or "?"] += 1
        lines.append(f"- Worker processes: {len(run.workers)} started"
                     + (f", start-up {sum(start) / len(start):.1f} s mean (imports {sum(imp) / len(imp):.1f} s)" if start and imp else "")
                     + "; ended: " + ", ".join(f"{n} {k}" for k, n in sorted(ends.items())))
    lines.append("")
    return "\n".join(lines)
