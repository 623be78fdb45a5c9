#!/usr/bin/env python3
"""Flake census: rerun the suites N times and count, per test, how often it failed and with what.

    .venv/bin/python bench/flake_census.py --runs 20 --tier framework
    .venv/bin/python bench/flake_census.py --runs 3 --tier runner
    .venv/bin/python bench/flake_census.py --runs 3 --tier all [--workers 2] [--out DIR]

Tiers:
  framework  the framework's own tests (``pytest tests``), outcomes read from a JUnit XML per run;
  runner     the generated model + API tests through our runner, as `make test` runs them
             (``ipfs-accelerate run --type all --registry curated --hardware cpu openvino``),
             outcomes read from each run's results.json.

A test is *flaky* when its outcome differs between runs (passed in one, failed in another);
a test that fails in every run is *broken*, which is a different fact and is listed apart. Exit
codes: 0 no flaky and no broken test, 1 at least one flaky test, 2 broken tests only (or a run
that produced no results). Skips and xfails are outcomes like any other: a test that skips in one
run and passes in the next is flaky too (a skip that depends on timing hides a bug).

Why a script in bench/ and not a pytest plugin: it measures the suite from outside, the way CI
runs it (fresh interpreters, the real worker pool), and it is far too slow for `make test`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable

PASSING = {"passed", "skipped", "xfailed"}


@dataclass
class Census:
    """Outcomes per test id across runs of one tier."""

    tier: str
    runs: int = 0
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    messages: dict[str, str] = field(default_factory=dict)
    empty_runs: int = 0

    def add(self, test: str, outcome: str, message: str = "") -> None:
        self.outcomes[test][outcome] += 1
        if outcome not in PASSING and message and test not in self.messages:
            self.messages[test] = message.strip().splitlines()[-1][:160] if message.strip() else ""

    def flaky(self) -> list[str]:
        """Tests whose outcome was not the same in every run (a missing run counts as 'absent')."""
        out = []
        for test, counts in self.outcomes.items():
            seen = sum(counts.values())
            if len(counts) > 1 or seen != self.runs:
                out.append(test)
        return sorted(out)

    def broken(self) -> list[str]:
        return sorted(
            t for t, c in self.outcomes.items()
            if len(c) == 1 and sum(c.values()) == self.runs and next(iter(c)) not in PASSING
        )


def junit_outcomes(path: Path) -> list[tuple[str, str, str]]:
    """(test id, outcome, message) for every testcase of a pytest JUnit XML file."""
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        test = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = ("failed" if child.tag == "failure" else "error"), child.get("message", "")
            elif child.tag == "skipped":
                kind = child.get("type", "")
                outcome = "xfailed" if "xfail" in kind else "skipped"
                message = child.get("message", "")
        rows.append((test, outcome, message))
    return rows


def run_framework(census: Census, tmp: Path, index: int, workers: int) -> float:
    xml = tmp / f"framework-{index}.xml"
    cmd = [PY, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}"]
    if workers > 1:
        cmd += ["-n", str(workers)]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if not xml.exists():
        census.empty_runs += 1
        return elapsed
    for test, outcome, message in junit_outcomes(xml):
        census.add(test, outcome, message)
    return elapsed


def run_runner(census: Census, tmp: Path, index: int, workers: int) -> float:
    out = tmp / f"runner-{index}"
    # the runner tier of `make test`: the curated entries plus every API (the whole registry is
    # `make run`'s job and far too slow to repeat)
    cmd = [PY, "-m", "ipfs_accelerate.cli", "run", "--type", "all", "--registry", "curated",
           "--hardware", "cpu", "openvino", "--workers", str(workers), "--output-dir", str(out)]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    files = sorted(out.glob("*/results.json"))
    if not files:
        census.empty_runs += 1
        return elapsed
    for test in json.loads(files[-1].read_text())["tests"]:
        census.add(test["nodeid"], test["status"], test.get("reason", ""))
    return elapsed


TIERS = {"framework": run_framework, "runner": run_runner}


def report(census: Census) -> None:
    flaky, broken = census.flaky(), census.broken()
    print(f"\n## {census.tier}: {census.runs} runs, {len(census.outcomes)} tests, "
          f"{len(flaky)} flaky, {len(broken)} broken, {census.empty_runs} runs without results")
    for test in flaky:
        counts = census.outcomes[test]
        missing = census.runs - sum(counts.values())
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        if missing:
            parts += f", absent {missing}"
        print(f"  FLAKY  {test}: {parts}  {census.messages.get(test, '')}")
    for test in broken:
        print(f"  BROKEN {test}: {census.messages.get(test, '')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tier", choices=["framework", "runner", "all"], default="framework")
    parser.add_argument("--runner-runs", type=int, default=None,
                        help="runs of the runner tier with --tier all (default: --runs)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="keep per-run files here")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2 to tell a flake from a failure")
    tiers = ["framework", "runner"] if args.tier == "all" else [args.tier]
    censuses = []
    with tempfile.TemporaryDirectory(prefix="flake-census-") as scratch:
        tmp = args.out or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        for tier in tiers:
            runs = args.runner_runs if (tier == "runner" and args.runner_runs) else args.runs
            census = Census(tier, runs=runs)
            for i in range(runs):
                elapsed = TIERS[tier](census, tmp, i, args.workers)
                print(f"{tier} run {i + 1}/{runs}: {elapsed:.0f} s", flush=True)
            report(census)
            censuses.append(census)
    if any(c.flaky() for c in censuses):
        return 1
    if any(c.broken() or c.empty_runs for c in censuses):
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
