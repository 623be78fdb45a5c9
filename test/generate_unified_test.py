#!/usr/bin/env python3
"""Generate model and API tests from the ipfs-accelerate registry (thin wrapper).

    python generate_unified_test.py --type model --category language --limit 5
    python generate_unified_test.py --type api --apis ollama groq
    python generate_unified_test.py --type model --list-missing

All logic is in `ipfs_accelerate.generate`; `ipfs-accelerate generate` takes the same options.
Output goes next to this script (skills/, apis/, test_implementation_status.json) unless
--output-dir is given.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

try:
    from ipfs_accelerate.generate.cli import unified_main
except ImportError:  # not installed: use the source tree this script lives in
    sys.path.insert(0, str(HERE.parent / "src"))
    from ipfs_accelerate.generate.cli import unified_main

if __name__ == "__main__":
    sys.exit(unified_main(default_output_dir=HERE))
