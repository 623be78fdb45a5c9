"""`ipfs-accelerate compare`: the entry point lives with `history` (one module for both CLIs)."""

from .history_cli import configure_compare as configure
from .history_cli import main_compare as main

__all__ = ["configure", "main"]
