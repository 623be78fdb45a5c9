"""The result types the runner needs before it imports pydantic (~0.2 s, paid while its workers
start): status groups and the run's `Selection`, a stdlib dataclass that pydantic validates as a
field of `RunResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .status import FAILING, RAN  # noqa: F401  (re-exported: the runner imports them from here)


@dataclass
class Selection:
    """What was asked for, as resolved; `--resume` reuses it verbatim."""

    type: Literal["model", "api", "all"] = "all"
    models: list[str] = field(default_factory=list)
    apis: list[str] = field(default_factory=list)
    category: str = "all"
    registry: str = "all"  # all | curated (hand-tuned entries) | derived (from transformers' Auto mappings)
    limit: int | None = None
    hardware: list[str] = field(default_factory=list)
    impl_type: Literal["real", "mock", "all"] = "all"
    keyword: str | None = None
    benchmark: bool = False
    shard: str | None = None
    test_dir: str = ""
    files: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # selected names with no generated test file
    paths: list[str] = field(default_factory=list)  # explicit test files/folders given on the command line
    pytest_args: list[str] = field(default_factory=list)
