#!/usr/bin/env python3
"""Generate basic CPU smoke tests (init + one inference) for registry models (thin wrapper).

    python generate_basic_tests.py bert t5 llama --task text-generation
    python generate_basic_tests.py clip whisper --task automatic-speech-recognition

All logic is in `ipfs_accelerate.generate`; `ipfs-accelerate generate --profile basic` is the same.
Existing tests are never overwritten without --force.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

try:
    from ipfs_accelerate.generate.cli import basic_main
except ImportError:  # not installed: use the source tree this script lives in
    sys.path.insert(0, str(HERE.parent / "src"))
    from ipfs_accelerate.generate.cli import basic_main

if __name__ == "__main__":
    sys.exit(basic_main(default_output_dir=HERE))
