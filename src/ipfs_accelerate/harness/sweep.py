"""Sweep the registry in one warm process and record what each (type, head) does on this machine.

The per-file matrix pays imports per worker; a sweep pays them once (~0.02 s per tiny model to
build and run), so it is how breadth is measured and how failure *patterns* are found. Its output,
``registry/observed.json`` (generated, committed), is the observed reason each head that does not
run carries; the registry turns those into strict xfails, so a fix shows up as an xpass.

    python -m ipfs_accelerate.harness.sweep [--hardware cpu|openvino] [--only T ...] [--write]
    python -m ipfs_accelerate.harness.sweep --from-results RUN_DIR [--write]

``--from-results`` is the same record taken from a matrix run instead of a sweep (the matrix
reaches heads and backends the sweep did not): each (type, head, backend) case whose tests all
passed is ``passed``; one with a failed or error test gets that test's first reason line and the run id.
Native crashes and timeouts are *not* declared: a declared case runs the whole case inside its
first test (``declared_failure``), so the crash would only move there; they are listed instead.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

GENERATED = "by `python -m ipfs_accelerate.harness.sweep --write` (CPU and OpenVINO sweeps of every head); do not edit"


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def reason_of(exc: BaseException) -> str:
    """One line, stable across runs: the exception type and the first line of its message."""
    if isinstance(exc, _Timeout):
        return "timeout: build + forward took longer than the sweep's limit"
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [""]
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:  # "validation error for validator 'x':" + the why
        first += " " + lines[1]
    return f"{type(exc).__name__}: {first}"[:300]


def run_one(model: str, task: str, hardware: str, timeout_s: int, expected_dir: Path | None = None) -> str:
    """'passed', or the observed reason this head does not run on ``hardware``. With
    ``expected_dir``, a CPU pass also checks the committed fingerprint, writing it when missing."""
    from .case import Case, Settings

    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    case = None
    try:
        case = Case(model, hardware, task=task, settings=Settings(warmup=0, runs=1))
        import importlib.util

        for module in case.spec.requires:
            if importlib.util.find_spec(module) is None:
                return f"requires {module!r}, which is not installed"
        case.check_single()
        batch = case.check_batch()
        if not batch.ok:
            return f"batch rows differ from single runs (max abs {batch.max_abs:.3g})"
        if hardware != "cpu":
            par = case.check_parity()
            bad = [o for o in par.outputs if not o.ok]
            if par.tokens_match is False:
                return "parity vs cpu: greedy tokens differ"
            if bad:
                return f"parity vs cpu: {bad[0].name} max_abs={bad[0].max_abs:.3g}"
        elif expected_dir is not None:
            from . import fingerprint

            path = fingerprint.path_for(expected_dir, case.spec.name, case.task.task)
            known = fingerprint.load(path)
            if known is None:
                fingerprint.save(path, case.fingerprint())
            elif fingerprint.diff(known, case.fingerprint()):
                return "expected results mismatch: " + fingerprint.diff(known, case.fingerprint())[0]
        return "passed"
    except Exception as exc:  # noqa: BLE001 - recording the failure is the point
        return reason_of(exc)
    finally:
        signal.alarm(0)
        del case
        gc.collect()


def sweep(
    groups: list[list[tuple[str, str]]], hardware: str, timeout_s: int, *, first_passing: bool = False,
    log: Any = None, save: Any = None, expected_dir: Path | None = None,
) -> dict[tuple[str, str], str]:
    """Run each group's heads in order; with ``first_passing`` stop a group at its first pass
    (one passing head per type is what the main matrix needs). ``save`` gets partial results
    every 25 heads, so an interrupted sweep keeps what it measured."""
    out: dict[tuple[str, str], str] = {}
    total = sum(map(len, groups))
    for group in groups:
        for model, task in group:
            start = time.perf_counter()
            out[(model, task)] = verdict = run_one(model, task, hardware, timeout_s, expected_dir)
            if log is not None:
                print(f"[{len(out)}/{total}] {model} {task} {time.perf_counter() - start:.2f}s {verdict[:160]}", file=log, flush=True)
            if save is not None and len(out) % 25 == 0:
                save(out)
            if first_passing and verdict == "passed":
                break
    return out


def observed_path() -> Path:
    from .. import registry

    return Path(str(registry.__file__)).with_name(registry.OBSERVED)


def merge(results: dict[tuple[str, str], str], hardware: str, path: Path | None = None) -> dict[str, Any]:
    path = path or observed_path()
    doc = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"types": {}}
    doc["generated"] = GENERATED
    for (model, task), verdict in results.items():
        doc["types"].setdefault(model, {}).setdefault(task, {})[hardware] = verdict
    doc["types"] = {m: dict(sorted(t.items())) for m, t in sorted(doc["types"].items())}
    return {"generated": doc["generated"], "types": doc["types"]}


_NOT_CASE = ("not run:",)  # the runner's follow-on errors after a crash, not the case's own reason
_ORDER = ("test_init", "test_single_inference", "test_batch_inference", "test_parity", "test_expected_results", "test_metrics")


def _first_line(reason: str) -> str:
    """First non-empty line, qualified exception names shortened as ``reason_of`` writes them;
    the assertion wrapper test_metrics adds around the case's own reason is dropped."""
    line = next((x.strip() for x in reason.splitlines() if x.strip()), "")
    line = re.sub(r"^AssertionError: (?=\w+(Error|Exception|Model|Failure)\b)", "", line)
    return re.sub(r"^(?:\w+\.)+(\w+): ", r"\1: ", line)


def from_results(run_dir: Path) -> tuple[dict[str, dict[tuple[str, str], str]], list[str]]:
    """Verdicts per backend from a matrix run's ``results.jsonl`` (read via RunStore), and the
    crashed / timed-out cases that cannot be declared (see module docstring). Cases with an
    xfailed test keep their declaration; an xpassed one becomes ``passed`` (the fix shows)."""
    from ..results.store import RunStore

    store = RunStore(run_dir)
    run_id = store.load_header().run_id  # starts with the run's date; no ISO date: the status file must stay date-free
    cases: dict[tuple[str, str, str], list[Any]] = {}
    for rec in store.load_records():
        if rec.kind == "model" and rec.model and rec.task and rec.hardware:
            cases.setdefault((rec.model, rec.task, rec.hardware), []).append(rec)
    out: dict[str, dict[tuple[str, str], str]] = {}
    undeclared: list[str] = []
    for (model, task, hw), recs in sorted(cases.items()):
        recs.sort(key=lambda r: next((i for i, t in enumerate(_ORDER) if f"::{t}[" in r.nodeid), len(_ORDER)))
        states = {r.status for r in recs}
        if states & {"crashed", "timeout"}:
            first = next(r for r in recs if r.status in ("crashed", "timeout"))
            undeclared.append(f"{model} {task} {hw}: {first.nodeid.split('::')[-1]} {first.status}: {_first_line(first.reason)}")
            continue
        bad = [r for r in recs if r.status in ("failed", "error") and not r.reason.startswith(_NOT_CASE)]
        if bad:
            why = _first_line(bad[0].reason)
            verdict = f"{why[:240]} (observed in the full matrix run {run_id})"
        elif states <= {"passed", "skipped", "xpassed"} and any("::test_metrics[" in r.nodeid for r in recs):  # last stage: case complete
            verdict = "passed"
        else:
            continue  # xfailed (already declared) or nothing ran
        out.setdefault(hw, {})[(model, task)] = verdict
    return out, undeclared


def main(argv: list[str] | None = None) -> int:
    from .. import registry
    from ..registry import UNSUPPORTED_SKILL

    parser = argparse.ArgumentParser(prog="python -m ipfs_accelerate.harness.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--hardware", default="cpu", choices=("cpu", "openvino"))
    parser.add_argument("--only", nargs="*", default=None, help="model types (default: every registry entry)")
    parser.add_argument("--default-only", action="store_true", help="only each type's default head")
    parser.add_argument("--derived-only", action="store_true", help="skip hand-written entries")
    parser.add_argument("--timeout", type=int, default=30)
    parser.add_argument("--first-passing", action="store_true", help="per type, stop at the first head that passes")
    parser.add_argument("--expected-dir", type=Path, default=None, help="check CPU passes against fingerprints here, writing missing ones")
    parser.add_argument("--out", type=Path, default=None, help="write verdicts here instead of registry/observed.json (a second sweep running alongside)")
    parser.add_argument("--cpu-verdicts", type=Path, default=None, help="non-CPU sweeps: which heads passed on CPU (default registry/observed.json)")
    parser.add_argument("--max-heads", type=int, default=None, help="try at most N heads per type")
    parser.add_argument("--from-results", type=Path, default=None, metavar="RUN_DIR", help="take the verdicts from a matrix run's folder instead of sweeping")
    parser.add_argument("--write", action="store_true", help="merge the verdicts into registry/observed.json")
    args = parser.parse_args(argv)
    if args.from_results is not None:
        return _import(args.from_results, args.out, args.write)
    specs = [registry.get(n) for n in args.only] if args.only else list(registry.load().values())
    if args.derived_only:
        specs = [s for s in specs if s.derived]
    groups = [
        [(s.name, t) for t, ts in s.tasks.items() if ts.skill != UNSUPPORTED_SKILL and (not args.default_only or t == s.task)]
        for s in specs
    ]
    if args.hardware != "cpu":  # parity only where the CPU run passed
        cpu_doc = json.loads((args.cpu_verdicts or observed_path()).read_text(encoding="utf-8"))["types"]
        groups = [[(m, t) for m, t in g if cpu_doc.get(m, {}).get(t, {}).get("cpu") == "passed"] for g in groups]
    groups = [g[: args.max_heads] for g in groups if g]
    pairs = [p for g in groups for p in g]

    def save(results: dict[tuple[str, str], str]) -> None:
        if args.write:
            from ..generate.engine import write_atomic

            out = args.out or observed_path()
            write_atomic(out, json.dumps(merge(results, args.hardware, out), indent=1) + "\n")

    # import the heavy modules before any per-head alarm: a timeout that fires inside the first
    # `import torch` leaves it half-initialised and every later head fails with that instead
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from . import case  # noqa: F401

    start = time.perf_counter()
    results = sweep(
        groups, args.hardware, args.timeout, first_passing=args.first_passing, log=sys.stderr, save=save,
        expected_dir=args.expected_dir,
    )
    wall = time.perf_counter() - start
    verdicts = Counter("passed" if v == "passed" else v.split(":")[0] for v in results.values())
    print(f"sweep {args.hardware}: {len(pairs)} heads in {wall:.1f}s; " + ", ".join(f"{k} {n}" for k, n in verdicts.most_common(12)))
    save(results)
    return 0


def _import(run_dir: Path, out: Path | None, write: bool) -> int:
    """--from-results: merge each backend's verdicts (derived types only: hand-written entries
    declare theirs in models/*.toml) and list what could not be declared."""
    from .. import registry
    from ..generate.engine import write_atomic

    verdicts, undeclared = from_results(run_dir)
    specs = registry.load()
    path = out or observed_path()
    for hw, results in sorted(verdicts.items()):
        hand = sorted({m for m, _ in results if m in specs and not specs[m].derived and results[(m, _)] != "passed"})
        results = {k: v for k, v in results.items() if k[0] in specs and specs[k[0]].derived}
        failing = sum(v != "passed" for v in results.values())
        print(f"{hw}: {len(results)} cases, {failing} newly declared failing" + (f"; hand-written, not declared here: {', '.join(hand)}" if hand else ""))
        if write:
            write_atomic(path, json.dumps(merge(results, hw, path), indent=1) + "\n")
    for line in undeclared:
        print(f"not declared (native crash / timeout): {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
