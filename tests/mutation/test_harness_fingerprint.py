"""Pure unit tests of harness/fingerprint.py that kill its mutants (no model builds).

Fingerprints decide "same numbers as the committed expected results": these pin the rounding,
which dtypes get statistics, the tolerance boundary and every line of the readable diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ipfs_accelerate.harness import fingerprint as fp
from ipfs_accelerate.results.schema import ArrayStats, Fingerprint


def test_round_keeps_seven_significant_digits() -> None:
    assert fp._round(1.23456789) == 1.234568
    assert fp._round(123456789.0) == 123456800.0
    assert fp._round(-0.000123456789) == -0.0001234568


def test_stats_of_float_int_bool_and_unsigned() -> None:
    s = fp.stats(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 9.0]], np.float32))
    assert (s.shape, s.dtype) == ([2, 3], "float32")
    assert (s.mean, s.min, s.max) == (4.0, 1.0, 9.0)
    assert s.std == fp._round(float(np.std([1.0, 2.0, 3.0, 4.0, 5.0, 9.0])))
    assert s.head == [1.0, 2.0, 3.0, 4.0]  # first HEAD values of the flattened array
    assert fp.HEAD == 4
    ints = fp.stats(np.array([2, 4], np.int64))
    assert (ints.mean, ints.std, ints.min, ints.max, ints.head) == (3.0, 1.0, 2.0, 4.0, [2.0, 4.0])
    assert fp.stats(np.array([True, False])).mean == 0.5
    assert fp.stats(np.array([7], np.uint8)).max == 7.0


def test_stats_skips_empty_and_non_numeric() -> None:
    for value in (np.zeros((0, 3), np.float32), np.array(["a", "b"]), np.array([1 + 2j])):
        s = fp.stats(value)
        assert (s.mean, s.std, s.min, s.max, s.head) == (None, None, None, None, [])
        assert s.shape == list(value.shape) and s.dtype == str(value.dtype)


def test_make_records_outputs_tokens_and_source() -> None:
    f = fp.make("bert", "fill-mask", {"logits": np.ones((1, 2), np.float32)}, np.array([[1.0, 2.0]]))
    assert (f.model, f.task, f.source) == ("bert", "fill-mask", "tiny-random")
    assert f.tokens == [[1, 2]] and isinstance(f.tokens[0][0], int)
    assert f.outputs["logits"].shape == [1, 2] and list(f.outputs) == ["logits"]
    g = fp.make("m", "t", {}, None, source="pretrained")
    assert g.tokens is None and g.source == "pretrained" and g.outputs == {}


def test_path_for_names_model_and_task(tmp_path: Path) -> None:
    assert fp.path_for(tmp_path, "bert", "fill-mask") == tmp_path / "bert.fill-mask.json"
    assert fp.path_for(str(tmp_path), "a", "b") == tmp_path / "a.b.json"  # type: ignore[arg-type]


def test_save_load_round_trip_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "m.t.json"
    assert fp.load(path) is None
    f = fp.make("m", "t", {"y": np.array([0.5, 1.5], np.float32)}, np.array([[3]]))
    fp.save(path, f)
    assert fp.load(path) == f
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text == json.dumps(f.model_dump(), indent=1, sort_keys=True) + "\n"
    fp.save(path, fp.make("m", "t", {}, None))  # folder exists already: overwrite works
    assert fp.load(path).outputs == {}
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.t.json"]  # no temp file left


def test_write_atomic_failure_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    fp.write_atomic(path, "old")
    with pytest.raises(TypeError):
        fp.write_atomic(path, 123)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_write_atomic_temp_file_is_hidden_beside_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []
    real = fp.os.replace

    def spy(src: str, dst: Path) -> None:
        seen.append((str(src), str(dst)))
        real(src, dst)

    monkeypatch.setattr(fp.os, "replace", spy)
    fp.write_atomic(tmp_path / "out.json", "data")
    (src, dst), = seen
    assert Path(src).parent == tmp_path and Path(src).name.startswith(".out.json.") and dst == str(tmp_path / "out.json")
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == "data"


def test_close_boundaries() -> None:
    assert fp._close(None, None, 0.0)
    assert not fp._close(None, 1.0, 0.0) and not fp._close(1.0, None, 0.0)
    assert fp._close(fp.ATOL, 0.0, 0.5)  # |a-b| == ATOL * max(1, scale): inclusive
    assert not fp._close(1.5e-4, 0.0, 0.5)  # small scales do not shrink below ATOL*1
    assert fp._close(9e-4, 0.0, 10.0) and not fp._close(1.1e-3, 0.0, 10.0)  # ATOL scales with 10
    assert fp._close(100.05, 100.0, 0.0) and not fp._close(100.2, 100.0, 0.0)  # RTOL * |expected|
    assert fp._close(-100.05, -100.0, 0.0)
    assert (fp.ATOL, fp.RTOL) == (1e-4, 1e-3)


def _fp(outputs: dict[str, ArrayStats], tokens: list[list[int]] | None = None) -> Fingerprint:
    return Fingerprint(model="m", task="t", outputs=outputs, tokens=tokens)


def _st(**kw: object) -> ArrayStats:
    base: dict[str, object] = {"shape": [2], "dtype": "float32", "mean": 1.0, "std": 0.5, "min": 0.5, "max": 1.5, "head": [0.5, 1.5]}
    return ArrayStats(**{**base, **kw})


def test_diff_agreeing_is_empty() -> None:
    assert fp.diff(_fp({"y": _st()}, [[1]]), _fp({"y": _st(mean=1.00005)}, [[1]])) == []


def test_diff_missing_unexpected_shape_dtype() -> None:
    lines = fp.diff(_fp({"a": _st(), "b": _st()}), _fp({"b": _st(shape=[3]), "c": _st(dtype="int64")}))
    assert lines == [
        "output 'a': missing (expected [2], got None)",
        "output 'b': shape/dtype [3] float32 != expected [2] float32",
        "output 'c': unexpected (expected None, got [2])",
    ]
    assert fp.diff(_fp({"y": _st()}), _fp({"y": _st(dtype="float16")})) == [
        "output 'y': shape/dtype [2] float16 != expected [2] float32"
    ]


def test_diff_each_statistic_and_head() -> None:
    lines = fp.diff(_fp({"y": _st()}), _fp({"y": _st(mean=2.0, std=0.7, min=0.1, max=1.9, head=[0.5, 1.6])}))
    assert lines == [
        "output 'y': mean 2.0 != expected 1.0",
        "output 'y': std 0.7 != expected 0.5",
        "output 'y': min 0.1 != expected 0.5",
        "output 'y': max 1.9 != expected 1.5",
        "output 'y': first values [0.5, 1.6] != expected [0.5, 1.5]",
    ]
    assert fp.diff(_fp({"y": _st()}), _fp({"y": _st(head=[0.5])})) == ["output 'y': first values [0.5] != expected [0.5, 1.5]"]
    assert fp.diff(_fp({"y": _st()}), _fp({"y": _st(head=[0.6, 1.5])})) == ["output 'y': first values [0.6, 1.5] != expected [0.5, 1.5]"]
    assert fp.diff(_fp({"y": _st()}), _fp({"y": _st(mean=None)})) == ["output 'y': mean None != expected 1.0"]


def test_diff_tolerance_scales_with_the_expected_range() -> None:
    wide = _st(min=-1000.0, max=10.0, std=5.0, mean=0.0, head=[])
    assert fp.diff(_fp({"y": wide}), _fp({"y": _st(min=-1000.0, max=10.0, std=5.0, mean=0.05, head=[])})) == []
    assert fp.diff(_fp({"y": wide}), _fp({"y": _st(min=-1000.0, max=10.0, std=5.0, mean=0.2, head=[])})) != []
    by_max = _st(min=0.0, max=1000.0, std=5.0, mean=0.0, head=[])
    assert fp.diff(_fp({"y": by_max}), _fp({"y": _st(min=0.0, max=1000.0, std=5.0, mean=0.05, head=[])})) == []
    by_std = _st(min=0.0, max=0.0, std=1000.0, mean=0.0, head=[])
    assert fp.diff(_fp({"y": by_std}), _fp({"y": _st(min=0.0, max=0.0, std=1000.0, mean=0.05, head=[])})) == []
    bare = _st(min=None, max=None, std=None, mean=0.0, head=[])
    assert fp.diff(_fp({"y": bare}), _fp({"y": _st(min=None, max=None, std=None, mean=5e-5, head=[])})) == []
    assert fp.diff(_fp({"y": bare}), _fp({"y": _st(min=None, max=None, std=None, mean=2e-4, head=[])})) != []


def test_diff_tokens() -> None:
    assert fp.diff(_fp({}, [[1, 2]]), _fp({}, [[1, 3]])) == ["tokens [[1, 3]] != expected [[1, 2]]"]
    assert fp.diff(_fp({}, None), _fp({}, [[1]])) == ["tokens [[1]] != expected None"]


def test_make_truncates_tokens_to_ints() -> None:
    assert fp.make("m", "t", {}, np.array([[1.7, 2.2]])).tokens == [[1, 2]]


def test_check_missing_updated_match_mismatch(tmp_path: Path) -> None:
    """The one expected-results verdict (model and diffusion cases): each outcome, its exact text,
    and that only `update` writes."""
    a = _fp({"y": _st()})
    b = _fp({"y": _st(mean=a.outputs["y"].mean + 1.0)})
    path = tmp_path / "m.t.json"
    assert fp.check(tmp_path, "m", "t", a, False) == (
        "missing", f"no expected results at {path}; run with --update-expected to create them")
    assert not path.exists()  # a missing verdict writes nothing
    assert fp.check(tmp_path, "m", "t", a, True) == ("updated", str(path))
    assert fp.load(path) == a
    assert fp.check(tmp_path, "m", "t", a, False) == ("match", "")
    status, text = fp.check(tmp_path, "m", "t", b, False)
    assert status == "mismatch"
    assert text == "\n".join(fp.diff(a, b)) and text.count("\n") == len(fp.diff(a, b)) - 1 and text
    assert fp.load(path) == a  # a mismatch does not rewrite the committed file
    assert fp.check(tmp_path, "m", "t", b, True) == ("updated", str(path))
    assert fp.load(path) == b
    assert fp.check(tmp_path / "other", "m", "t", b, False)[0] == "missing"  # the folder is honoured
    assert fp.check(tmp_path, "m2", "t", b, False)[0] == "missing"  # and the model name
    assert fp.check(tmp_path, "m", "t2", b, False)[0] == "missing"  # and the task


def test_check_mismatch_joins_every_line(tmp_path: Path) -> None:
    a = _fp({"y": _st(), "z": _st()})
    b = _fp({"y": _st(mean=a.outputs["y"].mean + 1.0, max=a.outputs["y"].max + 5.0)})
    fp.check(tmp_path, "m", "t", a, True)
    status, text = fp.check(tmp_path, "m", "t", b, False)
    lines = fp.diff(a, b)
    assert status == "mismatch" and len(lines) >= 2 and text.split("\n") == lines
