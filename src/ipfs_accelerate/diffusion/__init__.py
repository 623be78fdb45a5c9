"""Tiny diffusion pipelines (Stable Diffusion 1.x- and SDXL-style) plus their UNet and VAE as
standalone cases: built offline from a TOML table, run by one loop on every backend."""

from .spec import CATEGORY, DiffusionSpec, get, names

__all__ = ["CATEGORY", "DiffusionSpec", "get", "names"]
