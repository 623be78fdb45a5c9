"""`ipfs-accelerate history` (list runs, `show RUN`, a metric's trend) and `ipfs-accelerate
compare [BASE] [HEAD]` (what changed between two runs; exit 1 per `--fail-on`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import history as hist


def _db(args: argparse.Namespace) -> Path:
    return args.history or hist.default_path(args.output_dir)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", type=Path, default=None, metavar="PATH",
                        help=f"history database (default: <output-dir>/{hist.DB_NAME})")
    parser.add_argument("--output-dir", type=Path, default=Path("test_results"), help="results root (default: ./test_results)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", default="list", choices=("list", "show"), help="list runs (default) or show one")
    parser.add_argument("run", nargs="?", default=None, metavar="RUN", help="run id, prefix, latest, previous or ~N (with show)")
    _common(parser)
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="runs to list / trend over (default 20)")
    parser.add_argument("--model", default=None, help="trend: this model only")
    parser.add_argument("--hardware", default=None, help="trend: this hardware only")
    parser.add_argument("--metric", default=None, choices=hist.METRICS, help="print this metric over the last --limit runs")


def main(args: argparse.Namespace) -> int:
    try:
        if args.metric or args.model:
            return _trend(args)
        if args.action == "show":
            return _show(args)
        return _list(args)
    except hist.HistoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _list(args: argparse.Namespace) -> int:
    rows = hist.runs(_db(args), limit=args.limit)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=1))
        return 0
    print(f"{'run':28} {'state':11} {'machine':12} {'wall s':>7}  summary")
    for r in rows:
        summary = ", ".join(f"{n} {s}" for s, n in r.summary.items() if n) or "no tests"
        print(f"{r.run_id:28} {r.state:11} {r.machine_key:12} {r.wall_s:7.1f}  {summary}")
    return 0


def _show(args: argparse.Namespace) -> int:
    db = _db(args)
    r = hist.resolve(db, args.run)
    tests = hist.tests(db, r.run_id)
    if args.json:
        print(json.dumps({"run": r.__dict__, "tests": [t.__dict__ for t in tests.values()]}, indent=1))
        return 0
    print(f"run {r.run_id}: {r.state}, started {r.started_at}, wall {r.wall_s:.1f} s, machine {r.machine_key}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in sorted(r.versions.items())))
    if r.cache:
        print("cache: " + ", ".join(f"{k} {v}" for k, v in sorted(r.cache.items())))
    print("summary: " + (", ".join(f"{n} {s}" for s, n in r.summary.items() if n) or "no tests"))
    for t in sorted(tests.values(), key=lambda t: t.nodeid):
        if t.status != "passed":
            print(f"  {t.status:8} {t.nodeid}  {t.reason.splitlines()[0][:120] if t.reason else ''}")
    return 0


def _trend(args: argparse.Namespace) -> int:
    metric = args.metric or "latency_p50"
    rows = hist.trend(_db(args), metric, model=args.model, hardware=args.hardware, last=args.limit)
    if args.json:
        print(json.dumps([dict(zip(("run", "model", "hardware", "value"), r, strict=True)) for r in rows], indent=1))
        return 0
    if not rows:
        print(f"no {metric} recorded" + (f" for {args.model}" if args.model else ""))
        return 0
    series: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for run_id, model, hw, v in rows:
        series.setdefault((model, hw), []).append((run_id, v))
    bars = "▁▂▃▄▅▆▇█"
    for (model, hw), pts in series.items():
        vals = [v for _, v in pts]
        lo, hi = min(vals), max(vals)
        spark = "".join(bars[int((v - lo) / (hi - lo) * 7) if hi > lo else 3] for v in vals)
        print(f"{model} / {hw} — {metric} over {len(pts)} runs: {spark}  (min {lo:.3f}, max {hi:.3f}, last {vals[-1]:.3f})")
        for run_id, v in pts:
            print(f"  {run_id}  {v:.3f}")
    return 0


# ---- compare ------------------------------------------------------------------------------------
def configure_compare(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", nargs="?", default=None, metavar="BASE",
                        help="run id / prefix / ~N, or a results.json or run folder (default: the comparable run before HEAD)")
    parser.add_argument("head", nargs="?", default=None, metavar="HEAD", help="as BASE (default: the latest run)")
    _common(parser)
    parser.add_argument("--fail-on", default="", metavar="KINDS",
                        help=f"exit 1 if any of these (comma-separated) are found: {', '.join(compare_mod().FAIL_ON)}")
    parser.add_argument("--noise-floor", type=float, default=None, metavar="F",
                        help="latency changes smaller than this fraction are noise (default 0.20)")
    parser.add_argument("--markdown", action="store_true", help="print the Markdown report section")


def compare_mod():  # noqa: ANN201  (numpy loads only when comparing)
    from . import compare

    return compare


def fail_on_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in compare_mod().FAIL_ON]
    if bad:
        raise hist.HistoryError(f"--fail-on {','.join(bad)}: unknown; choose from {', '.join(compare_mod().FAIL_ON)}")
    return kinds


def load_side(db: Path, ref: str, *, before: str | None = None) -> tuple[str, dict[str, hist.TestRow]]:
    """A run from the history database, or from a results.json / run folder on disk."""
    p = Path(ref) if ref else None
    if p is not None and (p.is_file() or (p / "results.json").is_file()):
        from .store import ResultsError, load_results

        try:
            run = load_results(p)
        except (OSError, ValueError) as exc:
            raise hist.HistoryError(str(exc) if isinstance(exc, ResultsError) else f"{p}: {exc}") from exc
        return run.run_id, hist.rows_from_run(run)
    row = hist.resolve(db, ref, before=before)
    return row.run_id, hist.tests(db, row.run_id)


def render_markdown(cmp: object) -> str:
    from .render import render

    return render("compare.md.j2", cmp=cmp, titles=compare_mod().TITLES)


def main_compare(args: argparse.Namespace) -> int:
    cm = compare_mod()
    try:
        kinds = fail_on_kinds(args.fail_on)
        db = _db(args)
        head_id, head = load_side(db, args.head or "latest")
        if args.base:
            base_id, base = load_side(db, args.base)
        else:
            base_id, base = load_side(db, "", before=head_id)
    except hist.HistoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cmp = cm.compare(base_id, base, head_id, head, floor=cm.NOISE_FLOOR if args.noise_floor is None else args.noise_floor)
    failing = cmp.failing(kinds)
    if args.json:
        print(json.dumps({**cmp.to_json(), "fail_on": kinds, "failed_on": failing}, indent=1))
    elif args.markdown:
        print(render_markdown(cmp), end="")
    else:
        print(summary_lines(cmp))
    if failing:
        print(f"compare: failing on {', '.join(failing)} (--fail-on {','.join(kinds)})", file=sys.stderr)
        return 1
    return 0


def summary_lines(cmp: object) -> str:
    """Plain text: one header line, then one line per change."""
    cm = compare_mod()
    c = cmp  # type: ignore[assignment]
    counts = c.counts()
    head = (f"{c.base} → {c.head}: " + (", ".join(f"{n} {cm.TITLES[k].lower()}" for k, n in counts.items()) or "no changes")
            + f" ({c.judged} latencies judged against ±{c.floor:.0%}" + (f", {c.not_judged} too few samples" if c.not_judged else "") + ")")
    lines = [head]
    for ch in c.changes:
        lines.append(f"  {cm.TITLES[ch.kind]:24} {ch.nodeid}  {ch.base}→{ch.head}  {ch.detail}")
    return "\n".join(lines)
