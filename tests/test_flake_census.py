"""The flake census tells a flaky test (outcome differs between runs) from a broken one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SPEC = importlib.util.spec_from_file_location(
    "flake_census", Path(__file__).resolve().parents[1] / "bench" / "flake_census.py"
)
fc = importlib.util.module_from_spec(SPEC)
sys.modules["flake_census"] = fc  # dataclasses resolve their module by name
SPEC.loader.exec_module(fc)


def test_flaky_broken_and_stable_are_told_apart():
    c = fc.Census("framework", runs=3)
    for _ in range(3):
        c.add("t::stable", "passed")
        c.add("t::broken", "failed", "AssertionError: 1 != 2")
        c.add("t::skips", "skipped")
    c.add("t::flaky", "passed")
    c.add("t::flaky", "failed", "E   boom")
    c.add("t::flaky", "passed")
    c.add("t::vanishes", "passed")  # collected in one run only
    assert c.flaky() == ["t::flaky", "t::vanishes"]
    assert c.broken() == ["t::broken"]
    assert c.messages["t::flaky"] == "E   boom"


def test_junit_outcomes(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="tests.a" name="ok"/>'
        '<testcase classname="tests.a" name="bad"><failure message="assert 0"/></testcase>'
        '<testcase classname="tests.a" name="sk"><skipped type="pytest.skip" message="no gpu"/></testcase>'
        '<testcase classname="tests.a" name="xf"><skipped type="pytest.xfail" message="known"/></testcase>'
        '</testsuite></testsuites>'
    )
    assert fc.junit_outcomes(xml) == [
        ("tests.a::ok", "passed", ""),
        ("tests.a::bad", "failed", "assert 0"),
        ("tests.a::sk", "skipped", "no gpu"),
        ("tests.a::xf", "xfailed", "known"),
    ]
