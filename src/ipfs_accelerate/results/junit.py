"""JUnit XML (the schema Jenkins, GitLab and GitHub reporters read): one <testsuite> per test file.

failed/xpassed -> <failure>; error/crashed/timeout -> <error type="crashed|timeout|error">;
skipped/xfailed -> <skipped>. The output tail goes to <system-out>.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict

from .run import RunResult, TestRecord
from .status import Status

_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _BAD_XML.sub("?", text or "")


def _names(t: TestRecord) -> tuple[str, str]:
    """(classname, name) as pytest's junitxml would: dotted path + class, then the test name."""
    parts = t.nodeid.split("::")
    module = parts[0].removesuffix(".py").replace("/", ".")
    classname = ".".join([module, *parts[1:-1]]) if len(parts) > 1 else module
    return classname, parts[-1] if len(parts) > 1 else parts[0]


def render(run: RunResult) -> str:
    root = ET.Element("testsuites", name=f"ipfs-accelerate {run.run_id}")
    by_file: dict[str, list[TestRecord]] = defaultdict(list)
    for t in run.tests:
        by_file[t.file].append(t)
    totals = defaultdict(int)
    for file in sorted(by_file):
        tests = by_file[file]
        counts = defaultdict(int)
        suite = ET.SubElement(root, "testsuite", name=file)
        for t in tests:
            classname, name = _names(t)
            case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{t.duration_s:.3f}")
            values = {k: getattr(t, k) for k in ("model", "api", "category", "hardware", "impl", "worker") if getattr(t, k)}
            if t.model or t.api:
                props = ET.SubElement(case, "properties")
                for key, value in values.items():
                    ET.SubElement(props, "property", name=key, value=str(value))
            msg = _clean(t.reason.splitlines()[0] if t.reason else t.status)[:500]
            kind = Status(t.status).junit
            if kind == "failure":
                el = ET.SubElement(case, "failure", message=msg, type=t.status)
                el.text = _clean(t.reason + ("\n\n" + t.output if t.output else ""))
                counts["failures"] += 1
            elif kind == "error":
                el = ET.SubElement(case, "error", message=msg, type=t.status)
                el.text = _clean(t.reason + ("\n\n" + t.output if t.output else ""))
                counts["errors"] += 1
            elif kind == "skipped":
                ET.SubElement(case, "skipped", message=msg, type=t.status)
                counts["skipped"] += 1
            if t.output and kind in ("", "skipped"):
                ET.SubElement(case, "system-out").text = _clean(t.output)
        suite.set("tests", str(len(tests)))
        suite.set("failures", str(counts["failures"]))
        suite.set("errors", str(counts["errors"]))
        suite.set("skipped", str(counts["skipped"]))
        suite.set("time", f"{sum(t.duration_s for t in tests):.3f}")
        for k in ("failures", "errors", "skipped"):
            totals[k] += counts[k]
    root.set("tests", str(len(run.tests)))
    for k in ("failures", "errors", "skipped"):
        root.set(k, str(totals[k]))
    root.set("time", f"{run.wall_s:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
