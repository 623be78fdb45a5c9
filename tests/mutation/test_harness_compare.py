"""Pure unit tests of harness/compare.py that kill its mutants (milliseconds each, no models).

Each assertion pins one number or boundary of the verdict: a mutant that widens a tolerance,
flips a comparison or drops a row must change a result here.
"""

from __future__ import annotations

import numpy as np
import pytest

from ipfs_accelerate.harness import compare
from ipfs_accelerate.registry.spec import ModelSpec, TaskSpec, Tolerance


def _spec(**tolerances: Tolerance) -> ModelSpec:
    return ModelSpec(name="m", category="text", task="t", tasks={"t": TaskSpec(task="t", head="AutoModel", skill="text")}, tolerances=tolerances)


def test_tolerance_table_defaults_and_precision_suffix() -> None:
    assert compare.TOLERANCES[("cpu", "fp32")] == (0.0, 0.0, 1.0)
    assert compare.tolerance(_spec(), "openvino", "fp32") == (1e-4, 1e-3, 0.99999, "")
    assert compare.tolerance(_spec(), "cuda", "fp16(autocast)") == (1.6e-2, 1.6e-2, 0.999, "")
    # an unknown pair falls back to the strict fp32 default
    assert compare.tolerance(_spec(), "webgpu", "int4") == (1e-4, 1e-3, 0.99999, "")


def test_tolerance_override_precedence_and_cosine_fallback() -> None:
    both = _spec(**{
        "openvino:fp32": Tolerance(atol=1e-2, rtol=2e-2, reason="specific", min_cosine=0.9),
        "openvino": Tolerance(atol=5.0, rtol=6.0, reason="generic"),
    })
    assert compare.tolerance(both, "openvino", "fp32(x)") == (1e-2, 2e-2, 0.9, "specific")
    # backend-only override applies to other precisions; no min_cosine keeps the table's
    assert compare.tolerance(both, "openvino", "default") == (5.0, 6.0, 0.99, "generic")
    assert compare.tolerance(both, "cuda", "fp32") == (1e-4, 1e-3, 0.99999, "")


def test_is_flat_boundaries() -> None:
    assert compare.is_flat(np.zeros(4, np.float32))
    assert not compare.is_flat(np.zeros(1, np.float32))  # one value has no spread to judge
    assert not compare.is_flat(np.zeros(4, np.int64))  # ids are compared exactly
    assert not compare.is_flat(np.array([0.0, 1e-5], np.float32))
    assert compare.is_flat(np.array([0.0, 1.9e-6], np.float64))  # std 9.5e-7 < 1e-6
    assert not compare.is_flat(np.array([0.0, 2e-6], np.float64))  # std exactly 1e-6 is not flat


def test_compare_arrays_numbers() -> None:
    ref = np.array([1.0, -2.0, 4.0], np.float32)
    act = np.array([1.5, -2.0, 4.0], np.float32)
    row = compare.compare_arrays("x", act, ref, atol=0.5, rtol=0.0, min_cos=0.0)
    assert row.name == "x" and row.max_abs == 0.5 and row.max_rel == 0.5 and row.ok and not row.flat
    cos = float(act.astype(np.float64) @ ref / (np.linalg.norm(act.astype(np.float64)) * np.linalg.norm(ref.astype(np.float64))))
    assert row.cosine == pytest.approx(cos, abs=1e-15) and row.cosine < 1.0
    assert not compare.compare_arrays("x", act, ref, atol=0.49, rtol=0.0, min_cos=0.0).ok
    # rtol scales with |ref|: 0.5 <= 0 + 0.5 * 1
    assert compare.compare_arrays("x", act, ref, atol=0.0, rtol=0.5, min_cos=0.0).ok
    assert not compare.compare_arrays("x", act, ref, atol=0.0, rtol=0.49, min_cos=0.0).ok


def test_compare_arrays_cosine_gate_and_atol_escape() -> None:
    ref = np.array([1.0, 0.2], np.float64)
    act = np.array([0.9, 0.3], np.float64)
    cos = float(act @ ref / (np.linalg.norm(act) * np.linalg.norm(ref)))
    assert compare.compare_arrays("x", act, ref, 0.05, 1.0, min_cos=cos).ok  # cosine exactly at the gate passes
    # elementwise within tolerance but direction off and max_abs above atol: fails on cosine
    assert not compare.compare_arrays("x", act, ref, 0.05, 1.0, min_cos=cos + 1e-9).ok
    # ...unless every difference is within atol itself
    assert compare.compare_arrays("x", act, ref, 0.1, 0.0, min_cos=1.0).ok


def test_compare_arrays_relative_error_uses_floor_and_zero_norms() -> None:
    row = compare.compare_arrays("z", np.array([1e-6, 0.0]), np.array([0.0, 0.0]), 1.0, 0.0, 0.0)
    assert row.max_rel == pytest.approx(1e6)
    assert row.cosine == 0.0  # one zero vector: not similar
    both_zero = compare.compare_arrays("z", np.zeros(3), np.zeros(3), 0.0, 0.0, 1.0)
    assert both_zero.cosine == 1.0 and both_zero.ok and both_zero.flat and both_zero.max_rel == 0.0
    empty = compare.compare_arrays("e", np.zeros((0,)), np.zeros((0,)), 0.0, 0.0, 1.0)
    assert empty.max_abs == 0.0 and empty.max_rel == 0.0


def test_compare_arrays_shape_mismatch_and_integer_exactness() -> None:
    bad = compare.compare_arrays("s", np.zeros((2, 3)), np.zeros((3, 2)), 1.0, 1.0, 0.0)
    assert (bad.name, bad.max_abs, bad.max_rel, bad.cosine, bad.ok) == ("s", compare.HUGE, compare.HUGE, 0.0, False)
    ids = np.array([3, 4, 5], np.int64)
    assert compare.compare_arrays("ids", ids.copy(), ids, 0.0, 0.0, 1.0).ok
    # integer outputs ignore atol: a one-off id is wrong however loose the tolerance
    assert not compare.compare_arrays("ids", ids + np.array([0, 0, 1]), ids, 10.0, 10.0, 0.0).ok
    assert not compare.compare_arrays("b", np.array([True, False]), np.array([True, True]), 10.0, 10.0, 0.0).ok
    assert not compare.compare_arrays("u", np.array([1], np.uint8), np.array([2], np.uint8), 10.0, 10.0, 0.0).ok


def test_parity_rows_tokens_and_header() -> None:
    ref = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    tol = (0.1, 0.0, 0.0, "why")
    p = compare.parity({"a": ref["a"] + 0.05, "b": ref["b"]}, ref, None, None, tol)
    assert p.ok and p.tokens_match is None
    assert (p.atol, p.rtol, p.min_cosine, p.tolerance_reason) == (0.1, 0.0, 0.0, "why")
    assert [r.name for r in p.outputs] == ["a", "b"] and p.outputs[0].max_abs == pytest.approx(0.05)
    missing = compare.parity({"a": ref["a"]}, ref, None, None, tol)
    assert not missing.ok and [r.name for r in missing.outputs] == ["a", "b"]
    gone = missing.outputs[1]
    assert (gone.max_abs, gone.max_rel, gone.cosine, gone.ok) == (compare.HUGE, compare.HUGE, 0.0, False)
    toks = np.array([[1, 2]])
    assert compare.parity(ref, ref, toks, toks.copy(), tol).tokens_match is True
    wrong = compare.parity(ref, ref, np.array([[1, 3]]), toks, tol)
    assert wrong.tokens_match is False and not wrong.ok
    absent = compare.parity(ref, ref, None, toks, tol)
    assert absent.tokens_match is False and not absent.ok
    one_bad = compare.parity({"a": ref["a"] + 1.0, "b": ref["b"]}, ref, None, None, tol)
    assert not one_bad.ok and [r.ok for r in one_bad.outputs] == [False, True]


def test_batch_vs_single_rows_and_tolerance() -> None:
    rows = [{"y": np.array([[1.0, 2.0]])}, {"y": np.array([[3.0, 4.0]])}]
    batch = {"y": np.array([[1.0, 2.0], [3.0, 4.5]])}
    check = compare.batch_vs_single(batch, rows, None, [None, None], atol=0.5, rtol=0.0)
    assert check.ok and check.max_abs == 0.5 and check.batch_size == 2 and check.flat_outputs == [] and check.tokens_match is None
    assert not compare.batch_vs_single(batch, rows, None, [None, None], atol=0.49, rtol=0.0).ok
    assert compare.batch_vs_single(batch, rows, None, [None, None], atol=0.0, rtol=0.125).ok  # 0.5 <= 0.125*4
    assert not compare.batch_vs_single(batch, rows, None, [None, None], atol=0.0, rtol=0.12).ok
    # defaults: atol 1e-4, rtol 1e-3
    near = {"y": np.array([[1.0, 2.0], [3.0, 4.0 + 4.0e-3]])}
    assert compare.batch_vs_single(near, rows, None, [None, None]).ok
    assert not compare.batch_vs_single({"y": np.array([[1.0, 2.0], [3.0, 4.0 + 4.2e-3]])}, rows, None, [None, None]).ok
    # the worst row is the maximum, not the last
    worst = compare.batch_vs_single({"y": np.array([[1.0, 2.3], [3.0, 4.1]])}, rows, None, [None, None], atol=1.0)
    assert worst.max_abs == pytest.approx(0.3)


def test_batch_vs_single_skips_unbatched_outputs_and_needs_one_comparison() -> None:
    rows = [{"y": np.array([[1.0]])}, {"y": np.array([[2.0]])}]
    extra = {"y": np.array([[1.0], [2.0]]), "scalar": np.array(5.0), "other": np.zeros((3, 1)), "only_batch": np.zeros((2, 1))}
    assert compare.batch_vs_single(extra, rows, None, [None, None]).ok
    assert not compare.batch_vs_single({"scalar": np.array(1.0)}, rows, None, [None, None]).ok  # nothing compared
    missing_in_one = [{"y": np.array([[1.0]])}, {"z": np.array([[2.0]])}]
    assert not compare.batch_vs_single({"y": np.array([[1.0], [2.0]])}, missing_in_one, None, [None, None]).ok


def test_batch_vs_single_shape_mismatch_is_infinite() -> None:
    rows = [{"y": np.zeros((1, 2))}, {"y": np.zeros((1, 3))}]
    check = compare.batch_vs_single({"y": np.zeros((2, 2))}, rows, None, [None, None], atol=1.0)
    assert not check.ok and check.max_abs == compare.HUGE
    later = [{"y": np.zeros((1, 3))}, {"y": np.zeros((1, 2))}]
    check = compare.batch_vs_single({"y": np.zeros((2, 2))}, later, None, [None, None], atol=1.0)
    assert not check.ok and check.max_abs == compare.HUGE


def test_batch_vs_single_flat_and_tokens() -> None:
    rows = [{"y": np.zeros((1, 4))}, {"y": np.zeros((1, 4))}]
    check = compare.batch_vs_single({"y": np.zeros((2, 4))}, rows, None, [None, None])
    assert check.ok and check.flat_outputs == ["y"]
    live = [{"y": np.array([[0.0, 1.0]])}, {"y": np.array([[2.0, 3.0]])}]
    batch = {"y": np.array([[0.0, 1.0], [2.0, 3.0]])}
    toks = np.array([[7, 8], [9, 10]])
    good = compare.batch_vs_single(batch, live, toks, [np.array([[7, 8]]), np.array([[9, 10]])])
    assert good.ok and good.tokens_match is True
    swapped = compare.batch_vs_single(batch, live, toks, [np.array([[9, 10]]), np.array([[7, 8]])])
    assert not swapped.ok and swapped.tokens_match is False
    lost = compare.batch_vs_single(batch, live, toks, [np.array([[7, 8]]), None])
    assert not lost.ok and lost.tokens_match is False
    # only the second single differs: every row is checked, not just the first
    second = compare.batch_vs_single(batch, live, toks, [np.array([[7, 8]]), np.array([[9, 11]])])
    assert not second.ok and second.tokens_match is False


def test_compare_arrays_cosine_of_small_and_zero_vectors() -> None:
    # a reference shorter than 1 still gets a real cosine, not the zero-norm fallback
    row = compare.compare_arrays("s", np.array([0.4, 0.3]), np.array([0.3, 0.4]), 1.0, 0.0, 0.0)
    assert row.cosine == pytest.approx(0.96)
    # all-zero output against a live reference: cosine 0, never NaN
    dead = compare.compare_arrays("d", np.zeros(2), np.array([0.3, 0.4]), 0.1, 1.0, 0.99)
    assert dead.cosine == 0.0 and not dead.ok


def test_compare_arrays_atol_escape_is_inclusive() -> None:
    ref, act = np.array([1.0, 0.5]), np.array([0.75, 0.75])  # every diff exactly 0.25, cosine < 1
    assert compare.compare_arrays("x", act, ref, 0.25, 0.0, min_cos=1.0).ok
    assert not compare.compare_arrays("x", act, ref, 0.2499, 0.5, min_cos=1.0).ok


def test_parity_missing_first_output_still_compares_the_rest() -> None:
    ref = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    p = compare.parity({"b": ref["b"] + 5.0}, ref, None, None, (0.1, 0.0, 0.0, ""))
    assert [r.name for r in p.outputs] == ["a", "b"] and p.outputs[1].max_abs == pytest.approx(5.0)


def test_batch_vs_single_unbatched_first_output_does_not_stop_the_check() -> None:
    rows = [{"y": np.array([[1.0]])}, {"y": np.array([[2.0]])}]
    batch = {"scalar": np.array(5.0), "y": np.array([[1.0], [2.0]])}
    assert compare.batch_vs_single(batch, rows, None, [None, None]).ok


def test_batch_vs_single_empty_rows_and_tokens_without_outputs() -> None:
    rows = [{"y": np.zeros((1, 0))}, {"y": np.zeros((1, 0))}]
    empty = compare.batch_vs_single({"y": np.zeros((2, 0))}, rows, None, [None, None])
    assert empty.ok and empty.max_abs == 0.0
    toks = np.array([[1], [2]])
    nothing = compare.batch_vs_single({"s": np.array(1.0)}, rows, toks, [np.array([[1]]), np.array([[2]])])
    assert not nothing.ok and nothing.tokens_match is True  # tokens agreeing cannot rescue "nothing compared"
    wrong_rows = compare.batch_vs_single({"y": np.array([[1.0], [9.0]])}, [{"y": np.array([[1.0]])}, {"y": np.array([[2.0]])}],
                                         toks, [np.array([[1]]), np.array([[2]])])
    assert not wrong_rows.ok and wrong_rows.tokens_match is True


def test_absdiff_equal_infinities_are_zero_and_the_rest_huge() -> None:
    a = np.array([-np.inf, 1.0, np.nan, np.inf, 3.0])
    b = np.array([-np.inf, 2.0, np.nan, 1.0, -np.inf])
    assert compare.absdiff(a, b).tolist() == [0.0, 1.0, compare.HUGE, compare.HUGE, compare.HUGE]
    assert compare.HUGE == 1e308
    assert compare.absdiff(np.array([1e308], np.float64), np.array([-1e308])).tolist() == [compare.HUGE]  # overflow


def test_masked_logits_compare_on_their_finite_part() -> None:
    ref = np.array([-np.inf, 1.0, 2.0])
    same = compare.compare_arrays("l", ref.copy(), ref, 0.0, 0.0, 1.0)
    assert same.ok and same.max_abs == 0.0 and same.max_rel == 0.0 and same.cosine == pytest.approx(1.0)
    unmasked = compare.compare_arrays("l", np.array([0.0, 1.0, 2.0]), ref, 1.0, 1.0, 0.0)
    assert not unmasked.ok and unmasked.max_abs == compare.HUGE and unmasked.max_rel == compare.HUGE
    assert compare.compare_arrays("r", np.array([1e300]), np.array([0.0]), 0.0, 0.0, 0.0).max_rel == compare.HUGE


def test_batch_vs_single_masked_rows() -> None:
    rows = [{"y": np.array([[-np.inf, 1.0]])}, {"y": np.array([[-np.inf, 2.0]])}]
    good = compare.batch_vs_single({"y": np.array([[-np.inf, 1.0], [-np.inf, 2.0]])}, rows, None, [None, None], atol=0.0, rtol=0.0)
    assert good.ok and good.max_abs == 0.0
    bad = compare.batch_vs_single({"y": np.array([[0.0, 1.0], [-np.inf, 2.0]])}, rows, None, [None, None], atol=1.0, rtol=1.0)
    assert not bad.ok and bad.max_abs == compare.HUGE


def test_non_finite_values_raise_no_numpy_warnings() -> None:
    """Masked logits and huge values are normal model outputs: judging them must not spam warnings."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compare.absdiff(np.array([np.inf, 1e308]), np.array([np.inf, -1e308])).tolist() == [0.0, compare.HUGE]
        assert compare.absdiff(np.array([np.inf]), np.array([-np.inf])).tolist() == [compare.HUGE]
        rows = [{"y": np.array([[1e200]])}, {"y": np.array([[1e200]])}]
        check = compare.batch_vs_single({"y": np.array([[1e200], [1e200]])}, rows, None, [None, None], atol=0.0, rtol=1e200)
        assert check.ok and check.max_abs == 0.0

    with warnings.catch_warnings():
        # np.linalg.norm of 1e300-scale values overflows in its dot product (a separate, unguarded warning)
        warnings.simplefilter("ignore")
        warnings.filterwarnings("error", message="overflow encountered in divide")
        assert compare.compare_arrays("r", np.array([1e300]), np.array([0.0]), 0.0, 0.0, 0.0).max_rel == compare.HUGE


def _bvs(batch: dict, singles: list[dict]) -> bool:
    return compare.batch_vs_single(batch, singles, None, [None] * len(singles)).ok


def test_batch_check_skips_outputs_not_batch_leading_and_keeps_going() -> None:
    f = np.float32
    singles = [{"y": np.full((1, 3), float(i), f), "states": np.full((2, 5), 10.0 * i, f), "z": np.full((1, 2), i, f),
                "score": np.array([float(i)], f)} for i in range(2)]
    batch = {"y": np.array([[0.0] * 3, [1.0] * 3], f), "states": np.full((2, 5), 99.0, f), "z": np.array([[0.0] * 2, [1.0] * 2], f),
             "score": np.array([0.0, 1.0], f)}
    assert _bvs(batch, singles)  # per-layer states (first dim 2 alone too) are not rows
    assert not _bvs({**batch, "z": np.array([[0.0] * 2, [5.0] * 2], f)}, singles)  # outputs after the skipped one still count
    assert not _bvs({**batch, "score": np.array([0.0, 5.0], f)}, singles)  # 1-D outputs are rows
    leading = [{**s, "states": s["states"][:1]} for s in singles]
    assert not _bvs(batch, leading)


def test_batch_check_reads_pair_scores_on_the_diagonal() -> None:
    f = np.float32
    scores = np.array([[1.0, 5.0], [7.0, 2.0]], f)
    diag = [{"k": np.array([[1.0]], f)}, {"k": np.array([[2.0]], f)}]
    rows = [{"k": scores[i : i + 1]} for i in range(2)]
    for name in ("logits_per_image", "logits_audio_text"):
        singles = [{name: d["k"]} for d in diag]
        assert _bvs({name: scores}, singles)
        assert not _bvs({name: scores}, [singles[0], {name: np.array([[7.0]], f)}])
    for name in ("image_text", "logits_audio", "scores"):  # other (n, n) outputs are rows
        assert _bvs({name: scores}, [{name: r["k"]} for r in rows])
    assert not _bvs({"scores": scores}, [{"scores": d["k"]} for d in diag])
    # X-CLIP: (videos, texts, dim) in the batch, (1, 1, dim) alone: the diagonal again
    emb = np.arange(12, dtype=f).reshape(2, 2, 3)
    xsingles = [{"text_embeds": emb[i : i + 1, i : i + 1]} for i in range(2)]
    assert _bvs({"text_embeds": emb}, xsingles)
    assert not _bvs({"text_embeds": emb}, [xsingles[0], {"text_embeds": emb[1:2, 0:1]}])
    logits = np.arange(30, dtype=f).reshape(2, 5, 3)  # an ordinary 3-D output is rows
    assert _bvs({"logits": logits}, [{"logits": logits[i : i + 1]} for i in range(2)])
