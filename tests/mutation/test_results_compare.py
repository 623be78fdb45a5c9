"""Pure unit tests of results/compare.py that kill its mutants (TestRow values, no database).

Run comparison decides what CI fails on (--fail-on): these pin each change kind, the noise and
memory floors at their boundaries, the bootstrap's determinism and the exact detail lines.
"""

from __future__ import annotations

import math

import numpy as np

from ipfs_accelerate.results import compare as rc
from ipfs_accelerate.results.history import TestRow

SAME = [10.0, 10.1, 9.9, 10.2, 9.8]


def _row(status: str = "passed", **kw: object) -> TestRow:
    return TestRow(nodeid="t.py::x", status=status, model="bert", hardware="cpu", **kw)  # type: ignore[arg-type]


def _cmp(b: TestRow, h: TestRow, **kw: float) -> rc.Comparison:
    return rc.compare("B", {b.nodeid: b}, "H", {h.nodeid: h}, **kw)


def test_constants() -> None:
    assert (rc.NOISE_FLOOR, rc.MIN_SAMPLES, rc.RESAMPLES, rc.MEMORY_FLOOR, rc.MEMORY_FLOOR_MB) == (0.25, 5, 2000, 0.20, 32.0)


def test_cliffs_delta() -> None:
    assert rc.cliffs_delta(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0
    assert rc.cliffs_delta(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == -1.0
    assert rc.cliffs_delta(np.array([1.0, 3.0]), np.array([2.0, 3.0])) == 0.25  # (+1 -1 +1 0)/4


def test_judge_not_judged_below_min_samples_and_drops_bad_values() -> None:
    j = rc.judge([1.0, 2.0, 3.0, 4.0], [2.0] * 5)
    assert (j.verdict, j.ratio, j.n_base, j.n_head, j.cliffs_delta) == ("not-judged", 2.0 / 2.5, 4, 5, 0.0)
    assert all(math.isnan(x) for x in j.ci)
    j = rc.judge([1.0, 0.0, -1.0, math.inf, math.nan, 1.0, 1.0, 1.0], [1.0] * 5)
    assert (j.verdict, j.n_base) == ("not-judged", 4)
    assert math.isnan(rc.judge([], [1.0]).ratio) and math.isnan(rc.judge([1.0], []).ratio)
    assert rc.judge([1.0] * 4, [2.0] * 5).ratio == 2.0


def test_judge_verdicts_at_the_floor() -> None:
    slow = rc.judge(SAME, [x * 2 for x in SAME])
    assert slow.verdict == "regression" and slow.ratio == 2.0 and slow.cliffs_delta == 1.0 and (slow.n_base, slow.n_head) == (5, 5)
    assert slow.ci[0] > 1.25 and slow.ci[0] <= slow.ratio <= slow.ci[1]
    fast = rc.judge(SAME, [x / 2 for x in SAME])
    assert fast.verdict == "improvement" and fast.ci[1] < 0.8 and fast.cliffs_delta == -1.0
    assert rc.judge(SAME, SAME).verdict == "same"
    # 1.3x slower: a regression over a 25 % floor, not over a 40 % one
    assert rc.judge(SAME, [x * 1.3 for x in SAME]).verdict == "regression"
    assert rc.judge(SAME, [x * 1.3 for x in SAME], floor=0.4).verdict == "same"
    assert rc.judge(SAME, [x / 1.3 for x in SAME]).verdict == "improvement"
    assert rc.judge(SAME, [x / 1.3 for x in SAME], floor=0.4).verdict == "same"


def test_judge_ci_exact_boundaries() -> None:
    # constant samples: every bootstrap ratio equals the ratio, so lo == hi == ratio exactly
    assert rc.judge([1.0] * 5, [1.25] * 5).verdict == "same"  # lo == 1 + floor is not beyond it
    assert rc.judge([1.0] * 5, [1.2500001] * 5).verdict == "regression"
    assert rc.judge([1.0] * 5, [0.8] * 5).verdict == "same"  # hi == 1 / 1.25 is not beyond it
    assert rc.judge([1.0] * 5, [0.7999999] * 5).verdict == "improvement"
    j = rc.judge([1.0] * 5, [2.0] * 5)
    assert j.ci == (2.0, 2.0)


def test_judge_is_seeded_and_uses_its_samples() -> None:
    base = [float(x) for x in np.random.default_rng(5).lognormal(2.0, 0.3, 30)]
    head = [float(x) * 1.1 for x in np.random.default_rng(6).lognormal(2.0, 0.3, 30)]
    a, b = rc.judge(base, head, seed=1), rc.judge(base, head, seed=1)
    assert a == b
    assert rc.judge(base, head, seed=2).ci != a.ci
    assert rc.judge(base, head) == rc.judge(base, head, seed=0) != a  # the default seed is 0
    lo, hi = rc._median_ratio_ci(np.array(base), np.array(head), np.random.default_rng(1))
    assert (lo, hi) == a.ci and lo < a.ratio < hi
    assert a.ratio == float(np.median(head) / np.median(base))
    assert a.cliffs_delta == rc.cliffs_delta(np.array(base), np.array(head))


def test_median_ratio_ci_percentiles() -> None:
    rng = np.random.default_rng(0)
    base, head = np.random.default_rng(7).lognormal(2.0, 0.3, 15), np.random.default_rng(8).lognormal(2.0, 0.3, 16)
    lo, hi = rc._median_ratio_ci(base, head, rng)
    r2 = np.random.default_rng(0)
    bi = r2.integers(0, 15, size=(2000, 15))
    hi_idx = r2.integers(0, 16, size=(2000, 16))
    ratios = np.median(head[hi_idx], axis=1) / np.median(base[bi], axis=1)
    assert (lo, hi) == (float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5)))


def test_status_changes_and_details() -> None:
    c = _cmp(_row("passed"), _row("failed", reason="AssertionError: x\nmore"))
    assert [(x.kind, x.detail, x.base, x.head, x.nodeid, x.model, x.hardware) for x in c.changes] == [
        ("new-failure", "AssertionError: x", "passed", "failed", "t.py::x", "bert", "cpu")]
    assert _cmp(_row("skipped"), _row("crashed")).changes[0].kind == "new-failure"
    assert _cmp(_row("failed"), _row("error")).changes == []  # still failing: not new
    assert _cmp(_row("passed"), _row("failed")).changes[0].detail == ""
    long = _cmp(_row("passed"), _row("failed", reason="y" * 300)).changes[0].detail
    assert long == "y" * 200
    assert [x.kind for x in _cmp(_row("timeout"), _row("passed")).changes] == ["fixed"]
    assert _cmp(_row("timeout"), _row("skipped")).changes == []
    skip = _cmp(_row("passed"), _row("skipped", reason="no GPU\nx")).changes
    assert [(x.kind, x.detail) for x in skip] == [("new-skip", "no GPU")]
    assert _cmp(_row("passed"), _row("skipped")).changes[0].detail == ""
    assert _cmp(_row("passed"), _row("skipped", reason="z" * 300)).changes[0].detail == "z" * 200
    xf = _cmp(_row("passed"), _row("xfailed", reason="known\nx")).changes
    assert [(x.kind, x.detail) for x in xf] == [("new-xfail", "known")]
    assert _cmp(_row("passed"), _row("xfailed")).changes[0].detail == ""
    assert _cmp(_row("passed"), _row("xfailed", reason="q" * 300)).changes[0].detail == "q" * 200
    assert _cmp(_row("skipped"), _row("xfailed")).changes == []
    assert _cmp(_row("xfailed"), _row("skipped")).changes == []


def test_missing_on_either_side_is_not_a_change() -> None:
    c = rc.compare("B", {"a": _row()}, "H", {"b": _row("failed")})
    assert c.changes == [] and (c.base, c.head, c.floor) == ("B", "H", 0.25)
    # a test missing from one run does not stop the comparison of the tests after it
    later = rc.compare("B", {"a": _row(), "b": _row()}, "H", {"b": _row("failed")})
    assert [x.kind for x in later.changes] == ["new-failure"]


def test_judged_and_not_judged_are_counted_per_test() -> None:
    base = {"a": _row(samples=SAME), "b": _row(samples=SAME), "c": _row(samples=[1.0]), "d": _row(samples=[1.0])}
    head = {"a": _row(samples=SAME), "b": _row(samples=SAME), "c": _row(samples=[1.0]), "d": _row(samples=[1.0])}
    c = rc.compare("B", base, "H", head)
    assert (c.judged, c.not_judged) == (2, 2)


def test_judge_drops_non_positive_head_samples() -> None:
    j = rc.judge([1.0] * 5, [1.0, 1.0, 1.0, 1.0, -1.0, 0.0, math.nan])
    assert (j.verdict, j.n_head) == ("not-judged", 4)


def test_fingerprint_changes() -> None:
    c = _cmp(_row(fingerprint="aaa"), _row(fingerprint="bbb"))
    assert [(x.kind, x.detail) for x in c.changes] == [("fingerprint", "aaa → bbb")]
    assert _cmp(_row(fingerprint="aaa"), _row(fingerprint="aaa")).changes == []
    assert _cmp(_row(fingerprint=None), _row(fingerprint="bbb")).changes == []
    assert _cmp(_row(fingerprint="aaa"), _row(fingerprint=None)).changes == []
    m = _cmp(_row(expected="match"), _row(expected="mismatch")).changes
    assert [(x.kind, x.detail) for x in m] == [("fingerprint", "expected results now mismatch")]
    assert _cmp(_row(expected="mismatch"), _row(expected="mismatch")).changes == []
    assert _cmp(_row(expected="match"), _row(expected="match")).changes == []
    # a digest change reports once, not twice
    both = _cmp(_row(fingerprint="a", expected="match"), _row(fingerprint="b", expected="mismatch")).changes
    assert [x.detail for x in both] == ["a → b"]


def test_latency_changes_and_counts() -> None:
    c = _cmp(_row(samples=SAME), _row(samples=[x * 2 for x in SAME]))
    (ch,) = c.changes
    assert ch.kind == "latency-regression" and ch.ratio == 2.0 and ch.effect == 1.0 and ch.ci is not None
    assert ch.ci is not None and f"{ch.ci[0]:.2f}" != f"{ch.ci[1]:.2f}"
    assert ch.detail == f"p50 10.000 → 20.000 ms (×2.00, 95% CI {ch.ci[0]:.2f}–{ch.ci[1]:.2f}, Cliff's δ +1.00)"
    assert (c.judged, c.not_judged) == (1, 0)
    imp = _cmp(_row(samples=SAME), _row(samples=[x / 2 for x in SAME]))
    assert [x.kind for x in imp.changes] == ["latency-improvement"]
    same = _cmp(_row(samples=SAME), _row(samples=SAME))
    assert same.changes == [] and (same.judged, same.not_judged) == (1, 0)
    few = _cmp(_row(samples=[1.0]), _row(samples=[]))
    assert few.changes == [] and (few.judged, few.not_judged) == (0, 1)
    none = _cmp(_row(), _row())
    assert (none.judged, none.not_judged) == (0, 0)
    only_head = _cmp(_row(), _row(samples=SAME))
    assert (only_head.judged, only_head.not_judged) == (0, 1)


def test_latency_uses_the_floor_and_per_test_seed() -> None:
    h = [x * 1.3 for x in SAME]
    assert [x.kind for x in _cmp(_row(samples=SAME), _row(samples=h)).changes] == ["latency-regression"]
    assert _cmp(_row(samples=SAME), _row(samples=h), floor=0.4).changes == []
    base = [float(x) for x in np.random.default_rng(5).lognormal(2.0, 0.3, 30)]
    head = [float(x) * 1.5 for x in np.random.default_rng(6).lognormal(2.0, 0.3, 30)]
    ch = _cmp(_row(samples=base), _row(samples=head), floor=0.0).changes[0]
    assert ch.ci == rc.judge(base, head, floor=0.0, seed=rc._seed("t.py::x")).ci
    assert rc._seed("t.py::x") == rc._seed("t.py::x") != rc._seed("t.py::y")
    import zlib
    assert rc._seed("abc") == zlib.crc32(b"abc")


def test_memory_floors_both_apply() -> None:
    up = _cmp(_row(peak_rss_mb=100.0), _row(peak_rss_mb=132.0)).changes
    assert [(x.kind, x.ratio, x.detail) for x in up] == [("memory-regression", 1.32, "peak RSS 100 → 132 MB")]
    assert _cmp(_row(peak_rss_mb=100.0), _row(peak_rss_mb=131.9)).changes == []  # under 32 MB
    assert _cmp(_row(peak_rss_mb=1000.0), _row(peak_rss_mb=1199.0)).changes == []  # under 20 %
    assert [x.kind for x in _cmp(_row(peak_rss_mb=1000.0), _row(peak_rss_mb=1201.0)).changes] == ["memory-regression"]
    down = _cmp(_row(peak_rss_mb=160.0), _row(peak_rss_mb=120.0)).changes
    assert [(x.kind, x.ratio) for x in down] == [("memory-improvement", 0.75)]
    assert _cmp(_row(peak_rss_mb=None), _row(peak_rss_mb=500.0)).changes == []
    assert _cmp(_row(peak_rss_mb=500.0), _row(peak_rss_mb=None)).changes == []


def test_comparison_views() -> None:
    c = rc.Comparison(base="B", head="H", floor=0.25, judged=3, not_judged=1)
    mk = {"nodeid": "n", "model": None, "hardware": None, "base": "passed", "head": "failed"}
    for kind in ("new-failure", "latency-regression", "memory-regression", "fingerprint", "new-xfail", "fixed", "new-failure"):
        c.changes.append(rc.Change(kind, **mk))
    assert [x.kind for x in c.regressions] == ["latency-regression", "memory-regression"]
    assert c.counts() == {"new-failure": 2, "latency-regression": 1, "memory-regression": 1, "fingerprint": 1, "new-xfail": 1, "fixed": 1}
    assert c.failing(["regression", "new-failure", "fingerprint", "new-skip", "bogus"]) == ["regression", "new-failure", "fingerprint", "new-skip"]
    assert rc.Comparison(base="B", head="H", floor=0.25).failing(list(rc.FAIL_ON)) == []
    only_skip = rc.Comparison(base="B", head="H", floor=0.25, changes=[rc.Change("new-skip", **mk)])
    assert only_skip.failing(list(rc.FAIL_ON)) == ["new-skip"]
    j = c.to_json()
    assert (j["base"], j["head"], j["noise_floor"], j["latency_judged"], j["latency_not_judged"]) == ("B", "H", 0.25, 3, 1)
    assert j["counts"] == c.counts() and j["changes"][0]["kind"] == "new-failure" and len(j["changes"]) == 7
    assert rc.FAIL_ON == ("regression", "new-failure", "fingerprint", "new-skip")
    assert rc._ok("passed") and not rc._ok("xfailed")
