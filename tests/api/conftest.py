"""Shared pytest configuration for the API test tree (tests/api/**)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "peer: starts a real third-party server (llama-cpp-python, moto, kserve); slower tier, "
        "skipped with the reason when that peer is not installed (scripts/setup_api_peers.sh)",
    )


def _api_cost_rank(item: pytest.Item) -> int:
    """0: the peer tier (server start-ups, long subprocess runs), 1: the kit's own tests (the
    1,000-request run), 2: everything else."""
    if item.get_closest_marker("peer") is not None:
        return 0
    return 1 if item.nodeid.startswith("tests/api/kit/") else 2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long API tests first, inside the slots the API tests already occupy (other tests keep
    their places). pytest-xdist hands out consecutive chunks of the collection order, so the
    peer tier and the 1,000-request run used to land together at the end of one worker while
    the other sat idle; started first, the other worker takes up the short tests meanwhile."""
    slots = [i for i, item in enumerate(items) if item.nodeid.startswith("tests/api/")]
    ordered = sorted((items[i] for i in slots), key=_api_cost_rank)  # stable: file order kept
    for i, item in zip(slots, ordered, strict=True):
        items[i] = item
