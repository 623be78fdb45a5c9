"""Command line of the generators: ``ipfs-accelerate generate``, ``test/generate_unified_test.py``
and ``test/generate_basic_tests.py`` all end in `main`.

Exit codes (the same for all three entry points):

* ``0`` — everything requested was generated, already up to date, or (without ``--force``) left
  alone because it exists; ``--list-missing`` listed what was asked for.
* ``1`` — some requested names were unknown (model, API, category, task) or some (model, task)
  pairs are not supported, or a hand-edited / hand-written file was left alone. Everything valid
  was still generated; each problem is printed with close-match suggestions or the supported
  tasks.
* ``2`` — usage error: a malformed or hostile name (nothing at all is generated), a bad option
  combination, or no output folder could be found.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from . import engine
from .names import InvalidNameError, check_name

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2
EPILOG = (
    "exit status: 0 done (existing files kept without --force count as done); 1 some names unknown "
    "or (model, task) pairs unsupported, or hand-edited files left alone (valid ones still "
    "generated); 2 usage error or malformed name (nothing generated)"
)


# ---- argument parsers ------------------------------------------------------------------------
def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", type=Path, default=None, help=(
        "root of the generated test tree: model tests go to OUTPUT_DIR/skills, API tests to "
        "OUTPUT_DIR/apis, the status file to OUTPUT_DIR/test_implementation_status.json "
        "(default: the repository's test/ folder)"))
    parser.add_argument("--force", action="store_true", help="overwrite generated files that exist and differ (hand-edited files are still left alone)")
    parser.add_argument("--overwrite-edited", action="store_true", help="also overwrite files whose checksum shows a hand edit, or that have no generated header")
    parser.add_argument("--results-dir", type=Path, default=None, help="committed run results read for the status file (default: results/ at the repository root)")
    parser.add_argument("--prune", action="store_true", help="delete generated tests whose model or API left the registry (only intact generated files; edited ones are reported)")
    parser.add_argument("--no-status", action="store_true", help="do not rewrite test_implementation_status.json")
    parser.add_argument("--verbose", "-v", action="store_true", help="also list unchanged files and what was selected")


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``ipfs-accelerate generate`` and ``generate_unified_test.py``."""
    parser.add_argument("names", nargs="*", metavar="MODEL", help="models to generate (same as --models)")
    parser.add_argument("--type", choices=("model", "api", "all"), default=None, help="model tests, API tests, or both (default: model, or api when only --apis is given)")
    parser.add_argument("--models", nargs="+", default=[], metavar="MODEL", help="registry models to generate tests for")
    parser.add_argument("--category", default=None, help="model category: language, vision, audio, multimodal, specialized, all")
    parser.add_argument("--task", default=None, help="task to test; with --models it must be one the models support, else it selects the models that support it")
    parser.add_argument("--apis", nargs="+", default=[], metavar="API", help="API backends to generate tests for")
    parser.add_argument("--limit", type=int, default=None, help="at most this many model tests and this many API tests")
    parser.add_argument("--list-missing", action="store_true", help="only list registry entries (or APIs) with no generated test; write nothing")
    parser.add_argument("--profile", choices=engine.PROFILES, default="unified", help="unified: all tests on every hardware; basic: CPU init + one inference")
    parser.add_argument("--status-only", action="store_true", help="only rewrite test_implementation_status.json")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any selected test or the status file differs from what would be generated, or a generated test is orphaned")
    _add_output_options(parser)
    parser.epilog = EPILOG
    parser.set_defaults(prog=parser.prog)


def configure_basic(parser: argparse.ArgumentParser) -> None:
    """Options of ``generate_basic_tests.py``: models, a task, the output options."""
    parser.add_argument("names", nargs="+", metavar="MODEL", help="registry models to generate basic smoke tests for")
    parser.add_argument("--task", default=None, help="task to test (default: each model's default task); a model that cannot do it is an error")
    _add_output_options(parser)
    parser.epilog = EPILOG
    parser.set_defaults(type="model", models=[], apis=[], category=None, limit=None, list_missing=False, profile="basic", status_only=False, check=False, prog=parser.prog)


# ---- selection -------------------------------------------------------------------------------
@dataclass
class Selection:
    models: list[tuple[Any, str]] = field(default_factory=list)  # (spec, task)
    apis: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _known_tasks() -> list[str]:
    from .. import registry

    return sorted(set(registry.TASK_SKILLS) | set(registry.all_tasks()))


def _select(args: argparse.Namespace, kind: str) -> Selection:
    from .. import registry
    from ..registry import UnknownNameError

    sel = Selection()
    if kind in ("model", "all"):
        names = [*args.names, *args.models]
        category = args.category
        task = args.task
        ok = True
        if category is not None and category != "all" and category not in registry.CATEGORIES:
            sel.errors.append(str(UnknownNameError("category", category, [*registry.CATEGORIES, "all"])))
            ok = False
        if task is not None and task not in _known_tasks():
            sel.errors.append(str(UnknownNameError("task", task, _known_tasks())))
            ok = False
        if ok and names:
            seen: set[str] = set()
            for name in names:
                try:
                    spec = registry.get(name)
                except UnknownNameError as exc:
                    sel.errors.append(str(exc))
                    continue
                if spec.name in seen:
                    continue
                seen.add(spec.name)
                if category not in (None, "all") and spec.category != category:
                    sel.errors.append(f"model {spec.name!r} is in category {spec.category!r}, not {category!r}")
                    continue
                if task is not None and task not in spec.tasks:
                    sel.errors.append(f"model {spec.name!r} cannot do task {task!r}; it supports: {', '.join(spec.tasks)}")
                    continue
                sel.models.append((spec, task or spec.task))
        elif ok:
            specs = registry.list_models(category=category)
            sel.models = [(s, task or s.task) for s in specs if task is None or task in s.tasks]
            if task is not None and not sel.models:
                where = f" in category {category!r}" if category not in (None, "all") else ""
                sel.errors.append(f"no registry model{where} supports task {task!r}")
        sel.models = [(s, t) for s, t in sel.models if _registry_name_ok(s, t, sel.errors)]
        if args.limit is not None:
            sel.models = sel.models[: args.limit]
    if kind in ("api", "all"):
        providers = _providers()
        if args.apis:
            seen_api: set[str] = set()
            for name in args.apis:
                if name not in providers:
                    sel.errors.append(str(UnknownNameError("API", name, list(providers))))
                elif name not in seen_api:
                    seen_api.add(name)
                    sel.apis.append(providers[name])
        else:
            sel.apis = list(providers.values())
        sel.apis = [p for p in sel.apis if _registry_name_ok(p, None, sel.errors)]
        if args.limit is not None:
            sel.apis = sel.apis[: args.limit]
    return sel


def _registry_name_ok(entry: Any, task: str | None, errors: list[str]) -> bool:
    """Registry data becomes file names too: a bad name there is reported, never written."""
    try:
        check_name("registry", entry.name)
        if task is not None:
            check_name("task", task)
    except InvalidNameError as exc:
        errors.append(f"{exc}; fix the registry entry")
        return False
    return True


def _providers() -> dict[str, Any]:
    from ..api.providers import PROVIDERS

    return dict(PROVIDERS)


def kit_available() -> bool:
    """Whether the API test kit module exists (looked up on disk: importing it is not needed)."""
    import importlib.util

    spec = importlib.util.find_spec("ipfs_accelerate")
    if spec is None or not spec.submodule_search_locations:
        return False
    rel = engine.KIT_MODULE.split(".")[1:]
    for root in spec.submodule_search_locations:
        base = Path(root).joinpath(*rel)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
    return False


# ---- paths -----------------------------------------------------------------------------------
def find_test_dir(start: Path) -> Path | None:
    """See ``layout.find_test_dir``: one rule for `generate` and `run`."""
    from .layout import find_test_dir as find

    return find(start)


def find_results_dir(out_dir: Path) -> Path | None:
    for d in [out_dir.resolve(), *out_dir.resolve().parents]:
        if (d / "pyproject.toml").is_file():
            return d / "results"
    return None


def _show(path: Path) -> str:
    """Relative to the working folder when inside it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# ---- main ------------------------------------------------------------------------------------
def _check_names(args: argparse.Namespace) -> None:
    for name in [*args.names, *args.models]:
        check_name("model", name)
    for name in args.apis:
        check_name("API", name)
    if args.task is not None:
        check_name("task", args.task)
    if args.category is not None:
        check_name("category", args.category)


def _usage(args: argparse.Namespace, kind: str) -> str | None:
    if kind == "model" and args.apis:
        return "--apis needs --type api or --type all"
    if kind == "api" and (args.names or args.models or args.category or args.task):
        return "--models, --category and --task select models; use --type model or --type all"
    if args.limit is not None and args.limit < 0:
        return "--limit must be 0 or more"
    if sum(map(bool, (args.list_missing, args.status_only, args.check))) > 1:
        return "--list-missing, --status-only and --check exclude each other"
    return None


def main(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    prog = getattr(args, "prog", "ipfs-accelerate generate")

    def fail(msg: str, code: int) -> int:
        print(f"{prog}: error: {msg}", file=err)
        return code

    try:
        _check_names(args)
    except InvalidNameError as exc:
        return fail(f"{exc}; nothing was generated", EXIT_USAGE)
    kind = args.type or ("api" if args.apis and not (args.names or args.models) else "all" if args.apis else "model")
    problem = _usage(args, kind)
    if problem:
        return fail(problem, EXIT_USAGE)
    out_dir = args.output_dir if args.output_dir is not None else find_test_dir(Path.cwd())
    if out_dir is None:
        return fail("no test/ folder found from here upwards; pass --output-dir", EXIT_USAGE)
    if out_dir.exists() and not out_dir.is_dir():
        return fail(f"--output-dir {out_dir} is not a folder", EXIT_USAGE)
    results_dir = args.results_dir if args.results_dir is not None else find_results_dir(out_dir)

    code = EXIT_OK
    if args.status_only:
        if not args.no_status:
            _write_status(out_dir, results_dir, args.verbose, out, err)
        return code
    sel = _select(args, kind)
    for msg in sel.errors:
        print(f"{prog}: error: {msg}", file=err)
    if sel.errors:
        code = EXIT_PARTIAL
    if args.verbose:
        print(f"output folder: {_show(out_dir)}", file=out)
        print(f"selected: {len(sel.models)} model test(s), {len(sel.apis)} API test(s)", file=out)
    if args.list_missing:
        _list_missing(sel, out_dir, kind, args.verbose, out, err)
        return code
    targets = [engine.model_target(spec, task, args.profile) for spec, task in sel.models]
    targets += [engine.api_target(info) for info in sel.apis]
    whole = not (getattr(args, "names", None) or args.models or args.limit or getattr(args, "task", None))
    whole = whole and args.category in (None, "all", "multimodal")
    if kind in ("model", "all") and whole and args.profile == "unified":
        from ..diffusion.generate import targets as diffusion_targets  # the pipelines' thin files

        targets += diffusion_targets()
    if args.check:
        stale = _check(targets, out_dir, results_dir, not args.no_status, out)
        return code or (EXIT_PARTIAL if stale else EXIT_OK)
    try:
        report = engine.write_targets(targets, out_dir, force=args.force, overwrite_edited=args.overwrite_edited)
    except (ValueError, OSError) as exc:
        return fail(str(exc), EXIT_USAGE)
    if _print_report(report, out_dir, args.verbose, out):
        code = code or EXIT_PARTIAL
    if args.prune and _prune(out_dir, out, err):
        code = code or EXIT_PARTIAL
    if not args.no_status:
        _write_status(out_dir, results_dir, args.verbose, out, err)
    return code


def _check(targets: list[engine.Target], out_dir: Path, results_dir: Path | None, with_status: bool, out: TextIO) -> int:
    """Print every selected file (and the status file) that is not exactly what would be
    generated, and every orphaned generated test; return how many there are. Writes nothing."""
    problems = 0
    for t in targets:
        state = engine.inspect(out_dir / t.relpath, t.content)
        if state != "current":
            problems += 1
            print(f"{state}: {_show(out_dir / t.relpath)}", file=out)
    doc = _status_doc(out_dir, results_dir)
    if with_status:
        from . import status

        state = engine.inspect(out_dir / engine.STATUS_FILE, status.dumps(doc))
        if state != "current":
            problems += 1
            print(f"{'missing' if state == 'missing' else 'outdated'}: {_show(out_dir / engine.STATUS_FILE)}", file=out)
    for rel in doc["orphans"]:
        problems += 1
        print(f"orphaned (its registry entry is gone): {_show(out_dir / rel)}", file=out)
    print(f"check: {problems} file(s) not in sync with the registry" if problems else "check: all in sync", file=out)
    return problems


def _list_missing(sel: Selection, out_dir: Path, kind: str, verbose: bool, out: TextIO, err: TextIO) -> None:
    missing_models = [
        (spec, task, rel) for spec, task in sel.models
        if not (out_dir / (rel := engine.model_relpath(spec.name, task, spec.task))).exists()
    ]
    missing_apis = [(info, rel) for info in sel.apis if not (out_dir / (rel := engine.api_relpath(info.name))).exists()]
    prefix = kind == "all"
    for spec, task, rel in missing_models:
        line = ("model " if prefix else "") + spec.name
        print(f"{line}\t{spec.category}\t{task}\t{rel}" if verbose else line, file=out)
    for info, rel in missing_apis:
        line = ("api " if prefix else "") + info.name
        print(f"{line}\t{rel}" if verbose else line, file=out)
    parts = []
    if kind in ("model", "all"):
        parts.append(f"{len(missing_models)} of {len(sel.models)} selected models have no test")
    if kind in ("api", "all"):
        parts.append(f"{len(missing_apis)} of {len(sel.apis)} selected APIs have no test")
    print(f"{'; '.join(parts)} in {_show(out_dir)}", file=err)


_SKIP_TEXT = {
    "skipped-exists": "exists and differs; use --force to overwrite",
    "skipped-edited": "hand-edited (checksum mismatch); left alone, use --overwrite-edited to discard the edits",
    "skipped-foreign": "not a generated file (no generated header); left alone, use --overwrite-edited to replace it",
}


def _print_report(report: engine.WriteReport, out_dir: Path, verbose: bool, out: TextIO) -> bool:
    """Print what happened; return True when hand-edited or foreign files were left alone."""
    for target, action in report.actions:
        path = _show(out_dir / target.relpath)
        if action == "written":
            print(f"wrote {path}", file=out)
        elif action == "overwritten":
            print(f"overwrote {path}", file=out)
        elif action == "unchanged":
            if verbose:
                print(f"unchanged {path}", file=out)
        else:
            print(f"skipped {path}: {_SKIP_TEXT[action]}", file=out)
    counts = {a: len(report.of(a)) for a in ("written", "overwritten", "unchanged", "skipped-exists", "skipped-edited", "skipped-foreign")}
    print(
        f"{counts['written']} written, {counts['overwritten']} overwritten, {counts['unchanged']} unchanged, "
        f"{counts['skipped-exists']} skipped (exist), {counts['skipped-edited'] + counts['skipped-foreign']} left alone (hand-edited or not generated)",
        file=out,
    )
    return bool(counts["skipped-edited"] or counts["skipped-foreign"])


def _prune(out_dir: Path, out: TextIO, err: TextIO) -> bool:
    """Delete orphaned generated tests; return True if an edited or foreign orphan was kept."""
    kept = False
    for rel in _status_doc(out_dir, None)["orphans"]:
        path = engine.resolve_inside(out_dir, rel)
        if engine.inspect(path) == "current":
            path.unlink()
            print(f"deleted {_show(path)} (no longer in the registry)", file=out)
        else:
            kept = True
            print(f"kept {_show(path)}: no longer in the registry, but hand-edited or not generated; delete it by hand", file=err)
    return kept


def _status_doc(out_dir: Path, results_dir: Path | None) -> dict[str, Any]:
    from .. import registry
    from . import status

    return status.build_status(out_dir, registry.list_models(), list(_providers().values()), results_dir, kit_available=kit_available())


def _write_status(out_dir: Path, results_dir: Path | None, verbose: bool, out: TextIO, err: TextIO) -> None:
    from . import status

    doc = _status_doc(out_dir, results_dir)
    for msg in doc["results"]["errors"]:
        print(f"warning: unreadable results file {msg}", file=err)
    for rel in doc["orphans"]:
        print(f"warning: {rel} tests a model or API that is no longer registered; delete it (--prune)", file=err)
    text = status.dumps(doc)
    path = engine.resolve_inside(out_dir, engine.STATUS_FILE)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        if verbose:
            print(f"unchanged {_show(path)}", file=out)
        return
    engine.write_atomic(path, text)
    print(f"wrote {_show(path)}", file=out)


# ---- entry points for the wrapper scripts -----------------------------------------------------
def unified_main(argv: Sequence[str] | None = None, *, default_output_dir: Path | None = None) -> int:
    parser = argparse.ArgumentParser(prog=engine.UNIFIED_SCRIPT, description="Generate model and API tests from the ipfs-accelerate registry.")
    configure(parser)
    args = parser.parse_args(argv)
    if args.output_dir is None:
        args.output_dir = default_output_dir
    return main(args)


def basic_main(argv: Sequence[str] | None = None, *, default_output_dir: Path | None = None) -> int:
    parser = argparse.ArgumentParser(prog=engine.BASIC_SCRIPT, description="Generate basic CPU smoke tests (init + one inference) for registry models.")
    configure_basic(parser)
    args = parser.parse_args(argv)
    if args.output_dir is None:
        args.output_dir = default_output_dir
    return main(args)
