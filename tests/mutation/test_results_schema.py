"""Pure unit tests of the result schema (`results/schema.py`, `results/run.py`) that kill its
mutants: the fingerprint digest run history compares, the run's exit code and summary, the
deferred validators the runner builds while its workers start, and a lossless round trip."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from ipfs_accelerate.results.run import TestRecord, build_validators, exit_code, summarize
from ipfs_accelerate.results.schema import (
    SCHEMA_VERSION,
    ArrayStats,
    CaseResult,
    Fingerprint,
    Record,
)
from ipfs_accelerate.results.status import DISPLAY

from .kit import make_run


def _fp(**kw: object) -> Fingerprint:
    base: dict[str, object] = {"model": "bert", "task": "fill-mask",
                               "outputs": {"logits": ArrayStats(shape=[1, 2], dtype="float32", mean=0.5, head=[1.0, 2.0])}}
    return Fingerprint(**{**base, **kw})


def _t(status: str, i: int = 0) -> TestRecord:
    return TestRecord(nodeid=f"f.py::t{i}", file="f.py", status=status)


def test_digest_is_pinned_and_covers_outputs_and_tokens_only() -> None:
    fp = _fp()
    assert fp.digest() == "c336d6ab78a93d11"  # committed expectations depend on this exact value
    assert len(fp.digest()) == 16
    assert _fp(model="gpt2", task="x", source="pretrained").digest() == fp.digest()  # names are not outputs
    assert _fp(tokens=[[1, 2]]).digest() != fp.digest()
    other = {"logits": ArrayStats(shape=[1, 2], dtype="float32", mean=0.25, head=[1.0, 2.0])}
    assert _fp(outputs=other).digest() != fp.digest()


def test_digest_does_not_depend_on_output_order() -> None:
    a = ArrayStats(shape=[1], dtype="float32", mean=1.0)
    b = ArrayStats(shape=[2], dtype="int64", mean=2.0)
    assert _fp(outputs={"a": a, "b": b}).digest() == _fp(outputs={"b": b, "a": a}).digest()
    assert _fp(outputs={"a": a, "b": b}, tokens=[[3]]).digest() == "311bd2acdf4721ae"


def test_exit_code_failure_beats_nothing_ran() -> None:
    assert exit_code([_t("passed"), _t("skipped", 1)], 2) == 0
    assert exit_code([_t("passed"), _t("failed", 1)], 2) == 1
    assert exit_code([_t("crashed")], 0) == 1  # a failure is a failure even when nothing was selected
    assert exit_code([_t("skipped")], 1) == 3  # everything skipped: nothing ran
    assert exit_code([], 0) == 3
    assert exit_code([_t("passed")], 0) == 3  # zero selected is "nothing ran" whatever came back
    assert exit_code([_t("xfailed")], 1) == 0  # an expected failure ran


def test_summarize_lists_every_display_status_in_order() -> None:
    s = summarize([_t("passed"), _t("passed", 1), _t("timeout", 2)])
    assert list(s) == list(DISPLAY)
    assert s["passed"] == 2 and s["timeout"] == 1 and sum(s.values()) == 3
    assert summarize([]) == {k: 0 for k in DISPLAY}


def test_counts_and_round_trip() -> None:
    run = make_run("r1", {"a.py": [1.0, 2.0]})
    run.tests.append(TestRecord(nodeid="b.py::x", file="b.py", status="failed", reason="boom",
                                case=CaseResult(model="bert", task="fill-mask", category="language", hardware="cpu",
                                                status="failed", fingerprint="abc")))
    assert run.counts() == Counter({"passed": 2, "failed": 1})
    assert run.schema_version == SCHEMA_VERSION == 1
    back = type(run).model_validate_json(run.model_dump_json())
    assert back == run and back.tests[2].case is not None and back.tests[2].case.fingerprint == "abc"


def test_status_is_validated() -> None:
    with pytest.raises(ValidationError):
        _t("exploded")


def test_build_validators_builds_every_deferred_model_down_the_tree() -> None:
    class Child(Record):
        x: int

    class GrandChild(Child):
        y: int = 0

    class Sibling(Record):  # the last subclass: popped first, its (empty) subclasses must not end the walk
        z: int

    models = (Child, GrandChild, Sibling)
    assert not any(m.__pydantic_complete__ for m in models)  # deferred until first use
    build_validators()
    assert all(m.__pydantic_complete__ for m in models)
    assert GrandChild(x=1).y == 0
