"""Model patches for vision models (see patches/__init__.py)."""

from __future__ import annotations

PATCHES: dict = {}
