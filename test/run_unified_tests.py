#!/usr/bin/env python
"""Run the generated model and API tests in parallel and write JSON, Markdown and JUnit reports.

A thin wrapper over `ipfs-accelerate run` (same options; see --help) whose default test folder
is the one this file sits in, so `python run_unified_tests.py ...` works from `test/`.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

try:
    from ipfs_accelerate.runner.cli import run_from_argv
except ImportError:  # a source checkout without `pip install -e .`
    sys.path.insert(0, str(HERE.parent / "src"))
    from ipfs_accelerate.runner.cli import run_from_argv

if __name__ == "__main__":
    raise SystemExit(run_from_argv(sys.argv[1:], default_test_dir=HERE))
