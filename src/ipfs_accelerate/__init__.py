"""ipfs-accelerate: real model × hardware and inference-API compatibility testing."""

__version__ = "0.1.0"
