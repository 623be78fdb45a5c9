"""One plan, two drivers: run_plan (sync, batch steps lazily in order) and arun_plan (async,
batch steps concurrently) return the same value, and a failed step reaches the plan's except."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ipfs_accelerate.api.core import Plan, arun_plan, run_plan, verb_pair


def _plan(log: list[str], fail_at: int | None = None) -> Plan[int]:
    first = yield "one"
    try:
        parts = yield (f"part{i}" if i != fail_at else "boom" for i in range(3))
    except ValueError:
        yield "cleanup"
        raise
    return len(first) + len(parts)


class Runner:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.active = 0
        self.peak = 0

    def _step(self, step: str) -> str:
        self.log.append(step)
        if step == "boom":
            raise ValueError(step)
        return step

    async def _astep(self, step: str) -> str:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(0)  # yield to the loop so concurrent steps overlap (no wall time)
        self.active -= 1
        return self._step(step)

    go, ago = verb_pair(lambda self, fail_at=None: _plan(self.log, fail_at), "_step", "_astep")


def test_sync_and_async_twins_agree_and_only_async_overlaps_a_batch() -> None:
    sync, asyn = Runner(), Runner()
    assert sync.go() == asyncio.run(asyn.ago()) == 3 + 3
    assert sync.log == asyn.log == ["one", "part0", "part1", "part2"]
    assert (sync.peak, asyn.peak) == (0, 3)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failed_step_runs_the_plans_cleanup_then_raises(mode: str) -> None:
    r = Runner()
    with pytest.raises(ValueError, match="boom"):
        if mode == "sync":
            r.go(fail_at=1)
        else:
            asyncio.run(r.ago(fail_at=1))
    assert r.log[-1] == "cleanup"
    if mode == "sync":  # lazily: nothing after the failed part was started
        assert r.log == ["one", "part0", "boom", "cleanup"]


def test_run_plan_returns_the_plans_value_for_single_steps() -> None:
    def plan() -> Plan[str]:
        a = yield 1
        b = yield 2
        return f"{a}+{b}"

    seen: list[Any] = []
    assert run_plan(plan(), lambda s: seen.append(s) or s * 10) == "10+20"
    assert seen == [1, 2]

    async def aone(s: int) -> int:
        return s * 10

    assert asyncio.run(arun_plan(plan(), aone)) == "10+20"
