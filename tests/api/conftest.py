"""Shared pytest configuration for the API test tree (tests/api/**)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "peer: starts a real third-party server (llama-cpp-python, moto, kserve); slower tier, "
        "skipped with the reason when that peer is not installed (scripts/setup_api_peers.sh)",
    )
