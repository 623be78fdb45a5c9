"""Collect the selected test files in a separate process and describe every item.

    python -m ipfs_accelerate.runner.collect --out items.json -- PYTEST_ARGS

A child process, because importing test modules can do anything (a bad import left in
`sys.modules` broke later tests in the earlier implementation; a module could even crash). The
runner needs node ids up front: for `--resume`, `--shard`, progress totals and the "nothing
selected" check. A module that fails to import or skips itself becomes a record, not silence.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the runner imports this module before spawning workers: keep pytest out of it
    import pytest


def unit_of(file: str, hardware: str | None, impl: str) -> str:
    """Tests sharing one (file, hardware, impl) share a memoised case in a worker."""
    return ":".join([file, *([hardware] if hardware else []), *([impl] if impl != "mock" else [])])


@dataclass
class Collected:
    items: list[dict[str, Any]] = field(default_factory=list)  # `results.run.TestFacets` fields
    problems: list[dict[str, Any]] = field(default_factory=list)  # {nodeid, status, reason, output}


def _marker_arg(item: pytest.Item, name: str) -> str | None:
    mark = item.get_closest_marker(name)
    if mark is not None and mark.args:
        return str(mark.args[0])
    return None


def _class_str(item: pytest.Item, name: str) -> str | None:
    value = getattr(item.cls, name, None) if item.cls is not None else None
    return value if isinstance(value, str) else None


def _impl(params: dict[str, Any]) -> str:
    """'real' or 'mock': the plugin's `impl_type` parameter, else any parameter whose value is
    'mock'/'real' (the API kit's `target` fixture), else mock (a local fake or tiny weights)."""
    if "impl_type" in params:
        return str(params["impl_type"])
    return next((v for v in params.values() if isinstance(v, str) and v in ("mock", "real")), "mock")


def describe(item: pytest.Item) -> dict[str, Any]:
    """The item's `TestFacets` fields, as plain JSON (this runs before pydantic is imported)."""
    params = getattr(getattr(item, "callspec", None), "params", {}) or {}
    model = _marker_arg(item, "model") or _class_str(item, "model")
    api = _marker_arg(item, "api") or _class_str(item, "api")
    hardware = params.get("hw") or _marker_arg(item, "hardware")
    category = _marker_arg(item, "category")
    if model and not category:
        try:
            from ..registry import get

            category = get(model).category
        except Exception:
            category = None
    kind = "model" if model else ("api" if api else "other")
    if kind == "api" and not category:
        category = "api"
    file, hw, impl = item.nodeid.split("::", 1)[0], str(hardware) if hardware else None, _impl(params)
    return {"nodeid": item.nodeid, "file": file, "kind": kind, "unit": unit_of(file, hw, impl),
            "model": str(model) if model else None, "api": str(api) if api else None, "category": category,
            "task": _marker_arg(item, "task") or _class_str(item, "task"), "hardware": hw, "impl": impl}


class CollectPlugin:
    def __init__(self) -> None:
        self.result = Collected()

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            text = report.longreprtext
            last = text.strip().splitlines()[-1] if text.strip() else "collection failed"
            self.result.problems.append({"nodeid": report.nodeid, "status": "error",
                                         "reason": f"collection error: {last}", "output": text[-6000:]})
        elif report.skipped and report.nodeid:
            lr = report.longrepr
            reason = str(lr[2]) if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
            reason = reason.removeprefix("Skipped: ")
            self.result.problems.append({"nodeid": report.nodeid, "status": "skipped", "reason": reason, "output": ""})

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.result.items = [describe(i) for i in session.items]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(prog="ipfs_accelerate.runner.collect")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv[:split])
    import pytest

    plugin = CollectPlugin()
    rc = pytest.main(["--collect-only", "-q", *argv[split + 1 :]], plugins=[plugin])
    data = {"rc": int(rc), "items": plugin.result.items, "problems": plugin.result.problems}
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
