"""Mutation testing of the modules that decide verdicts (issue 18.3); writes docs/mutation.md.

Why a scratch copy: mutmut 3 copies the source into ``mutants/`` of its working directory and
reads ``[mutmut]`` from setup.cfg there. Running it in /work/main would collide with other
engineers' edits and write into the tree, so each module runs in a fresh temp dir holding
``git archive HEAD`` (or, with --worktree, the current files) of src/ and tests/, with a generated
setup.cfg. Each module is mutated against a small set of FAST pure unit tests (no model builds,
no servers): mutmut runs the selected tests once per mutant.

A surviving mutant is either killed by a new test (tests/mutation/) or listed as equivalent in
tests/mutation/equivalent.toml with why. Equivalents are matched by module, function and the
mutated source line, so they survive renumbering when the file changes elsewhere.

Usage: scripts/mutation.py [--modules NAME ...] [--worktree] [--jobs N] [--keep]
Exit status: 0 when every module run reaches the target score, 1 otherwise, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "mutation.md"
EQUIVALENT = ROOT / "tests" / "mutation" / "equivalent.toml"
TARGET = 0.90
PKG = "src/ipfs_accelerate"


@dataclass(frozen=True)
class Module:
    """One row of the table: the source files mutated and the fast tests that must kill them."""

    name: str
    sources: tuple[str, ...]
    tests: tuple[str, ...]


# Data, not code: add a row to mutate another module.
MODULES: tuple[Module, ...] = (
    Module("harness.compare", (f"{PKG}/harness/compare.py",), ("tests/mutation/test_harness_compare.py",)),
    Module("harness.fingerprint", (f"{PKG}/harness/fingerprint.py",), ("tests/mutation/test_harness_fingerprint.py",)),
    Module("runner.shard", (f"{PKG}/runner/shard.py",), ("tests/mutation/test_runner_shard.py",)),
    Module("runner.selection", (f"{PKG}/runner/selection.py",), ("tests/mutation/test_runner_selection.py",)),
    Module("registry.schema", (f"{PKG}/registry/schema.py",), ("tests/mutation/test_registry_schema.py",)),
    Module("results.status", (f"{PKG}/results/status.py",), ("tests/mutation/test_results_status.py",)),
    Module("results._io", (f"{PKG}/results/_io.py",), ("tests/mutation/test_results_io.py",)),
    Module("results.compare", (f"{PKG}/results/compare.py",), ("tests/mutation/test_results_compare.py",)),
    Module("results.store", (f"{PKG}/results/store.py",), ("tests/mutation/test_results_store.py",)),
    Module("results.schema", (f"{PKG}/results/schema.py", f"{PKG}/results/run.py"), ("tests/mutation/test_results_schema.py",)),
    Module("registry.loader", (f"{PKG}/registry/__init__.py", f"{PKG}/registry/errors.py"),
           ("tests/mutation/test_registry_loader.py",)),
    Module("api.core._retry", (f"{PKG}/api/core/_retry.py",), ("tests/api/core/test_retry.py", "tests/mutation/test_api_retry.py")),
    Module("api.core._errors", (f"{PKG}/api/core/_errors.py",), ("tests/api/core/test_errors_registry.py", "tests/mutation/test_api_errors.py")),
    Module("api.core._queue", (f"{PKG}/api/core/_queue.py",), ("tests/api/core/test_queue.py", "tests/mutation/test_api_queue.py")),
    Module("api.core._breaker", (f"{PKG}/api/core/_breaker.py",), ("tests/api/core/test_breaker.py", "tests/mutation/test_api_breaker.py")),
    Module("api.core._streaming", (f"{PKG}/api/core/_streaming.py",),
           ("tests/api/core/test_streaming.py", "tests/api/core/test_stream_limits.py")),
    Module("api.core._loop", (f"{PKG}/api/core/_loop.py",),
           ("tests/api/core/test_loop.py", "tests/api/core/test_loop_decisions.py", "tests/api/core/test_retry.py")),
)

STATUS_BY_EXIT = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
                  36: "timeout", 37: "killed", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"}
DETECTED = {"killed", "timeout"}  # a mutant that hangs the tests is caught (mutmut's own convention)


class ModuleFailed(Exception):
    """mutmut could not run a module (its tests fail or do not import): reported, the rest still run."""


@dataclass
class Row:
    """Counts for one module at one commit."""

    module: str
    mutants: int = 0
    killed: int = 0
    survived: int = 0
    equivalent: int = 0
    date: str = ""
    commit: str = ""
    survivors: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        judged = self.mutants - self.equivalent
        return self.killed / judged if judged else 1.0

    def line(self) -> str:
        return (f"| {self.module} | {self.mutants} | {self.killed} | {self.survived} | {self.equivalent} "
                f"| {self.score:.1%} | {self.date} | {self.commit} |")


def load_equivalents(path: Path = EQUIVALENT) -> list[dict[str, str]]:
    """Entries {module, function, mutated, reason}; a bad entry is a clear error, not a skip."""
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text("utf-8"))
    entries = data.get("equivalent", [])
    for i, e in enumerate(entries):
        missing = [k for k in ("module", "function", "mutated", "reason") if not str(e.get(k, "")).strip()]
        if missing:
            raise SystemExit(f"{path.name}: equivalent[{i}] lacks {', '.join(missing)}")
    return entries


def function_of(key: str) -> str:
    """`pkg.mod.x_func__mutmut_3` -> `func`; `pkg.mod.xǁClsǁmeth__mutmut_1` -> `Cls.meth`."""
    last = key.rsplit(".", 1)[-1]
    last = re.sub(r"__mutmut_\d+$", "", last)
    if last.startswith("xǁ"):
        return last[2:].replace("ǁ", ".")
    return last[2:] if last.startswith("x_") else last


def matches(mutated: str, diff: str) -> bool:
    """`mutated` (one or more lines) appears, consecutively, in the mutant's code and covers a changed line.

    Several lines (context first) tell apart identical mutations of twin statements.
    """
    want = [ln.strip() for ln in mutated.strip().splitlines()]
    post = [(ln[1:].strip(), ln.startswith("+")) for ln in diff.splitlines()
            if ln[:1] in (" ", "+") and not ln.startswith("+++")]
    for i in range(len(post) - len(want) + 1):
        window = post[i : i + len(want)]
        if [text for text, _ in window] == want and any(added for _, added in window):
            return True
    return False


def is_equivalent(module: str, key: str, diff: str, entries: list[dict[str, str]]) -> bool:
    fn = function_of(key)
    return any(e["module"] == module and e["function"] == fn and matches(e["mutated"], diff) for e in entries)


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True, capture_output=True,
                          check=True).stdout.strip()


def prepare(scratch: Path, module: Module, worktree: bool, commit: str) -> None:
    """Copy src/ and tests/ (`commit`, or the working files) into `scratch` and write its setup.cfg."""
    if worktree:
        shutil.copytree(ROOT / "src", scratch / "src", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "tests", scratch / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(["git", "archive", commit, "src", "tests"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive.stdout, check=True)
    for t in module.tests:
        if not (scratch / t).exists():
            raise ModuleFailed(f"{module.name}: test file {t} is not in {'the tree' if worktree else 'HEAD'}")
    # an empty pyproject.toml keeps mutmut from reading a [tool.mutmut] that is not ours
    (scratch / "pyproject.toml").write_text("# generated by scripts/mutation.py\n")
    (scratch / "setup.cfg").write_text(
        "# generated by scripts/mutation.py\n[mutmut]\nsource_paths = src\n"
        + "only_mutate =\n" + "".join(f"    {s}\n" for s in module.sources)
        + "pytest_add_cli_args_test_selection =\n" + "".join(f"    {t}\n" for t in module.tests)
        + "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -q\n"
        + "also_copy =\n    tests\n"
    )


def run_module(module: Module, *, worktree: bool, jobs: int, keep: bool, entries: list[dict[str, str]]) -> Row:
    scratch = Path(tempfile.mkdtemp(prefix=f"mut-{module.name}-"))
    commit = head_commit()  # read once: others commit while a module runs, and the row must name what ran
    try:
        prepare(scratch, module, worktree, commit)
        mutmut = Path(sys.executable).with_name("mutmut")
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run(["nice", "-n", "19", str(mutmut), "run", "--max-children", str(jobs)], cwd=scratch,
                              env=env, text=True, capture_output=True)
        codes: dict[str, int | None] = {}
        for src in module.sources:
            meta = scratch / "mutants" / (src + ".meta")
            if not meta.exists():
                tail = (proc.stdout + proc.stderr)[-3000:]
                raise ModuleFailed(f"{module.name}: mutmut wrote no results for {src} (exit {proc.returncode}); "
                                   f"do its tests pass at this commit?\n{tail}")
            codes.update(json.loads(meta.read_text())["exit_code_by_key"])
        if codes and all(STATUS_BY_EXIT.get(c, "suspicious") == "suspicious" for c in codes.values()):
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise ModuleFailed(f"{module.name}: no mutant got a verdict (exit {proc.returncode}); do its tests pass "
                               f"at this commit?\n{tail}")
        row = Row(module.name, mutants=len(codes), date=dt.date.today().isoformat(),
                  commit=commit + ("+wt" if worktree else ""))
        undetected = [k for k, c in codes.items() if STATUS_BY_EXIT.get(c, "suspicious") not in DETECTED]
        row.killed = len(codes) - len(undetected)
        diffs = diffs_for(scratch, undetected) if undetected else {}
        for k in sorted(undetected):
            if is_equivalent(module.name, k, diffs.get(k, ""), entries):
                row.equivalent += 1
            else:
                row.survived += 1
                status = STATUS_BY_EXIT.get(codes[k], "suspicious")
                row.survivors.append(f"{k} ({status})\n{diffs.get(k, '')}")
        return row
    finally:
        if keep:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def diffs_for(scratch: Path, keys: list[str]) -> dict[str, str]:
    """Unified diff of each mutant, computed by mutmut itself in the scratch dir."""
    code = ("import json,sys\nfrom mutmut.mutation.diff_apply import get_diff_for_mutant\n"
            "print(json.dumps({k: get_diff_for_mutant(k) for k in json.load(sys.stdin)}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=scratch, input=json.dumps(keys), text=True,
                         capture_output=True)
    if out.returncode:
        return {k: f"(no diff: {out.stderr.strip().splitlines()[-1:]})" for k in keys}
    return json.loads(out.stdout)


HEADER = """<!-- generated by scripts/mutation.py (make mutation); edit tests/mutation/equivalent.toml, not this file -->
# Mutation testing

mutmut mutates each module below and runs only the fast unit tests named in `scripts/mutation.py`
(`MODULES`) against every mutant. *killed* counts mutants a test failed on (or that hung, a timeout);
*equivalent* mutants behave exactly like the original and are listed with why in
`tests/mutation/equivalent.toml`; score = killed / (mutants - equivalent). Target: {target:.0%} per module.
Each row records the date and the commit it was measured at (`+wt`: uncommitted working files).
Reproduce: `make mutation` (every module), or `.venv/bin/python scripts/mutation.py --modules NAME ...
[--worktree]`; each module runs mutmut in a scratch copy, never in the tree.

Scope: mutmut mutates function and method bodies, not class-level field declarations (pydantic
models are pinned by their round-trip tests) and not decorated functions (so `registry.load` is a
cached wrapper around the mutated `_load_package`). No line is excluded with `# pragma: no mutate`.
Expected-results verdicts are `harness.fingerprint`'s `check`, which `harness/case.py` calls for
model and diffusion cases alike; the rest of `case.py` orchestrates model builds (seconds per
run), so it is covered by the model tests, not here.

| module | mutants | killed | survived | equivalent | score | date | commit |
|---|---|---|---|---|---|---|---|
"""


def read_rows(path: Path = TABLE) -> dict[str, str]:
    """Existing table rows by module, so a partial run keeps the other modules' (dated) rows."""
    if not path.exists():
        return {}
    rows = {}
    for ln in path.read_text("utf-8").splitlines():
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        if ln.startswith("| ") and len(cells) == 8 and cells[0] not in ("module", "---"):
            rows[cells[0]] = ln
    return rows


def write_table(rows: dict[str, str], new: list[Row], entries: list[dict[str, str]], path: Path = TABLE) -> None:
    order = [m.name for m in MODULES] + sorted(set(rows) - {m.name for m in MODULES})
    body = HEADER.format(target=TARGET) + "".join(rows[m] + "\n" for m in order if m in rows)
    body += "\n## Equivalent mutants\n\n"
    body += "".join(f"- `{e['module']}` `{e['function']}`: `{' / '.join(e['mutated'].strip().splitlines())}` — {e['reason']}\n"
                    for e in entries) or "None.\n"
    survivors = [(r.module, s) for r in new for s in r.survivors]
    if survivors:
        body += "\n## Surviving mutants (last run)\n\n"
        body += "".join(f"{m}: {s.splitlines()[0]}\n\n```diff\n{chr(10).join(s.splitlines()[1:])}\n```\n\n" for m, s in survivors)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(body, "utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modules", nargs="+", metavar="NAME", help=f"default: all of {', '.join(m.name for m in MODULES)}")
    p.add_argument("--worktree", action="store_true", help="mutate the working files instead of HEAD")
    p.add_argument("--jobs", type=int, default=1, help="mutmut --max-children (default 1: shared CPUs)")
    p.add_argument("--keep", action="store_true", help="keep the scratch dirs for `mutmut show`")
    args = p.parse_args(argv)
    known = {m.name: m for m in MODULES}
    unknown = [n for n in args.modules or [] if n not in known]
    if unknown:
        p.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if args.jobs < 1:
        p.error("--jobs must be >= 1")
    entries = load_equivalents()
    rows = read_rows()
    new: list[Row] = []
    failed: list[str] = []
    for name in args.modules or list(known):
        started = time.monotonic()
        try:
            row = run_module(known[name], worktree=args.worktree, jobs=args.jobs, keep=args.keep, entries=entries)
        except ModuleFailed as exc:
            print(f"FAILED {exc}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        print(row.line(), f"({time.monotonic() - started:.0f} s)", flush=True)
        for s in row.survivors:
            print("  survived:", s.replace("\n", "\n    "), flush=True)
        rows[name] = row.line()
        new.append(row)
        write_table(rows, new, entries)  # after each module: a long run that is stopped keeps what it measured
    return 0 if not failed and all(r.score >= TARGET for r in new) else 1


if __name__ == "__main__":
    sys.exit(main())
