"""The registry's breadth and its guards: derived from transformers' Auto mappings, drift named,
tables validated with file/table/field in the error, one layout module for file names."""

from __future__ import annotations

import copy
import tomllib
from importlib import resources

import pytest

from ipfs_accelerate import registry
from ipfs_accelerate.generate import layout
from ipfs_accelerate.registry import derive, schema


@pytest.fixture(scope="module")
def snapshot() -> dict:
    return derive.load_snapshot()


def test_every_auto_mapped_type_is_an_entry(snapshot: dict) -> None:
    types = snapshot["types"]
    assert len(types) >= 600  # transformers 5.24: 666
    models = registry.load()
    assert set(types) <= set(models), sorted(set(types) - set(models))[:5]
    for name, auto in types.items():
        spec = models[name]
        if spec.derived:
            assert list(spec.tasks) == list(auto["heads"]), name
            assert {t: s.head for t, s in spec.tasks.items()} == {t: h[0] for t, h in auto["heads"].items()}
            assert spec.category == auto["category"]
    assert len(registry.hand_written()) >= 92


def test_derived_category_and_tasks_come_from_the_mappings(snapshot: dict) -> None:
    llama = snapshot["types"]["llama"]
    assert llama["category"] == "language"
    assert llama["heads"]["text-generation"] == ["LlamaForCausalLM"]
    assert llama["heads"]["feature-extraction"] == ["LlamaModel"]
    assert snapshot["types"]["beit"]["category"] == "vision"
    assert snapshot["types"]["wav2vec2"]["heads"]["automatic-speech-recognition"] == ["Wav2Vec2ForCTC"]


def test_heads_without_a_skill_are_declared_strict_xfails() -> None:
    unsupported = [(s.name, t) for s in registry.load().values() for t, ts in s.tasks.items() if ts.skill == registry.UNSUPPORTED_SKILL]
    assert unsupported, "expected some task families without an input recipe"
    for name, task in unsupported:
        ts = registry.get(name).tasks[task]
        assert set(ts.known_incompatible) == set(registry.HARDWARE)
        assert task in ts.known_incompatible["cpu"]


def test_drift_names_a_type_missing_from_the_registry(snapshot: dict) -> None:
    live = derive.derive()  # the installed transformers
    assert derive.drift(snapshot, live) == [], "snapshot out of date: run python -m ipfs_accelerate.registry.derive"
    older = copy.deepcopy(snapshot)  # as if transformers had been upgraded past the snapshot
    del older["types"]["llama"]
    del older["types"]["bert"]["heads"]["fill-mask"]
    lines = derive.drift(older, live)
    assert len(lines) == 2
    assert "new model type 'llama'" in lines[1] or "new model type 'llama'" in lines[0]
    assert any("new head for 'bert': fill-mask -> BertForMaskedLM" in line for line in lines)
    gone = copy.deepcopy(live)
    gone["types"]["my_model"] = {"category": "language", "heads": {"text-generation": ["MyModelForCausalLM"]}}
    assert derive.drift(gone, live) == ["model type 'my_model' is in the registry but transformers " f"{live['transformers']} no longer maps it"]


def test_drift_check_command_exits_1_naming_the_type(snapshot: dict, tmp_path, monkeypatch, capsys) -> None:
    older = copy.deepcopy(snapshot)
    del older["types"]["mistral"]
    monkeypatch.setattr(derive, "load_snapshot", lambda: older)
    assert derive._entry(["--check"]) == 1
    out = capsys.readouterr().out
    assert "new model type 'mistral'" in out
    monkeypatch.setattr(derive, "load_snapshot", lambda: snapshot)
    assert derive._entry(["--check"]) == 0


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"category": "language", "task": "fill-mask", "tasks": {"fill-mask": "BertForMaskedLM"}, "confg": {}}, "language.toml [bert] confg: Extra inputs are not permitted"),
        ({"category": "languages", "task": "fill-mask", "tasks": {"fill-mask": "X"}}, "language.toml [bert] category: Input should be"),
        ({"category": "language", "task": "fill-mask", "tasks": {"fill-mask": {"head": 3}}}, "language.toml [bert] tasks.fill-mask"),
        ({"category": "language", "task": "fill-mask", "tasks": {"fill-mask": "X"}, "known_incompatible": {"tpu": "x"}}, "language.toml [bert] known_incompatible: Value error, unknown hardware 'tpu'"),
        ({"category": "language", "task": "fill-mask", "tasks": {"fill-mask": "X"}, "init_std": -1}, "language.toml [bert] init_std: Input should be greater than 0"),
    ],
)
def test_bad_tables_name_file_table_and_field(raw: dict, needle: str) -> None:
    with pytest.raises(schema.RegistryError) as info:
        schema.validate(schema.ModelEntry, raw, "language.toml", "bert")
    assert needle in str(info.value)


def test_committed_tables_validate() -> None:
    folder = resources.files(registry.__name__).joinpath("models")
    for category in registry.CATEGORIES:
        for name, raw in tomllib.loads(folder.joinpath(f"{category}.toml").read_text()).items():
            schema.validate(schema.ModelEntry, raw, f"{category}.toml", name)
    overrides = tomllib.loads(folder.joinpath(registry.OVERRIDES).read_text())
    for name, raw in overrides.items():
        schema.validate(schema.OverrideEntry, raw, registry.OVERRIDES, name)
    with pytest.raises(schema.RegistryError, match=r"overrides.toml \[x\] tasks.fill-mask.hed"):
        schema.validate(schema.OverrideEntry, {"tasks": {"fill-mask": {"hed": "X"}}}, registry.OVERRIDES, "x")


def test_layout_is_one_rule_for_names_and_paths(tmp_path) -> None:
    assert layout.model_relpath("kosmos-2.5").as_posix() == "skills/test_hf_kosmos_2_5.py"
    assert layout.model_relpath("bert", "fill-mask", "fill-mask").as_posix() == "skills/test_hf_bert.py"
    assert layout.model_relpath("xlm-roberta", "question-answering", "fill-mask").as_posix() == "skills/test_hf_xlm_roberta__question_answering.py"
    assert layout.parse_model_stem("test_hf_xlm_roberta__question_answering") == ("xlm_roberta", "question_answering")
    assert layout.parse_model_stem("test_ollama") is None
    skills = tmp_path / "test" / layout.MODEL_DIR
    skills.mkdir(parents=True)
    for stem in ("test_hf_bert", "test_hf_bert__fill_mask", "test_hf_bert_generation", "test_hf_bertx"):
        (skills / f"{stem}.py").write_text("")
    assert [p.stem for p in layout.model_files(tmp_path / "test", "bert")] == ["test_hf_bert", "test_hf_bert__fill_mask"]
    assert layout.find_test_dir(tmp_path) == tmp_path / "test"
    assert layout.find_test_dir(tmp_path / "test") == tmp_path / "test"
