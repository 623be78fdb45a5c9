"""`python -m ipfs_accelerate.diffusion ...` (the same as `ipfs-accelerate diffusion ...`)."""

import argparse
import sys

from .cli import configure, main

parser = argparse.ArgumentParser(prog="python -m ipfs_accelerate.diffusion", description=__doc__)
configure(parser)
sys.exit(main(parser.parse_args()))
