"""Pure unit tests of registry/schema.py that kill its mutants (validation only, no models).

A hand-edited registry table must fail with one line per problem naming file, table and field;
these pin the hardware-key check and the exact message shape.
"""

from __future__ import annotations

import pytest

from ipfs_accelerate.registry import schema


def _entry(**kw: object) -> dict[str, object]:
    return {"category": "language", "task": "fill-mask", "tasks": {"fill-mask": "AutoModelForMaskedLM"}, **kw}


def test_hardware_keys_accept_known_and_precision_suffix() -> None:
    ok = schema.validate(schema.ModelEntry, _entry(known_incompatible={"cpu": "r", "cuda:fp16": "r", "openvino": "r"}), "f", "t")
    assert ok.known_incompatible == {"cpu": "r", "cuda:fp16": "r", "openvino": "r"}
    assert schema._hardware_keys({"cpu:bf16": 1}) == {"cpu:bf16": 1}


def test_hardware_keys_refuse_unknown_with_the_known_list() -> None:
    with pytest.raises(ValueError) as info:
        schema._hardware_keys({"cpu": 1, "tpu:fp32": 2})
    assert str(info.value) == "unknown hardware 'tpu:fp32'; known: cpu, cuda, openvino"


def test_validate_message_names_file_table_and_each_field() -> None:
    raw = _entry(category="poetry", tolerances={"gpu": {"atol": -1, "rtol": 0, "reason": "x"}}, bogus=1)
    with pytest.raises(schema.RegistryError) as info:
        schema.validate(schema.ModelEntry, raw, "language.toml", "bert")
    lines = str(info.value).split("\n")
    assert lines[0].startswith("registry: language.toml [bert] category: Input should be ")
    assert any(ln.startswith("registry: language.toml [bert] tolerances.gpu.atol: Input should be greater than or equal to 0") for ln in lines)
    assert "registry: language.toml [bert] bogus: Extra inputs are not permitted" in lines
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_validate_table_level_error_says_table() -> None:
    with pytest.raises(schema.RegistryError) as info:
        schema.validate(schema.ModelEntry, "not a table", "f.toml", "x")  # type: ignore[arg-type]
    assert str(info.value).startswith("registry: f.toml [x] (table): Input should be")


def test_validate_returns_the_model_and_nested_location() -> None:
    with pytest.raises(schema.RegistryError) as info:
        schema.validate(schema.OverrideEntry, {"tasks": {"t": {"head": 3}}}, "overrides.toml", "m")
    assert str(info.value) == "registry: overrides.toml [m] tasks.t.head: Input should be a valid string"
    ok = schema.validate(schema.OverrideEntry, {"init_std": 0.02}, "o", "m")
    assert isinstance(ok, schema.OverrideEntry) and ok.init_std == 0.02
