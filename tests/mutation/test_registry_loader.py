"""Pure unit tests of the registry loader (`registry/__init__.py`, `registry/errors.py`) that kill
its mutants: small hand-made registries in tmp folders through `load_from`, and the real one for
`get` / `list_models`. A bad table must fail naming file, table and field; an unknown name must
come with suggestions; a derived entry's default task and known failures follow fixed rules."""

from __future__ import annotations

import json
import locale
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipfs_accelerate import registry
from ipfs_accelerate.registry import (
    HARDWARE,
    UNSUPPORTED_SKILL,
    UnknownNameError,
    _derived,
    _hand,
    _observed_reasons,
    _read_toml,
    _task_spec,
    load_from,
    schema,
)
from ipfs_accelerate.registry.spec import TaskSpec, Tolerance

BERT = {"category": "language", "task": "fill-mask", "tasks": {"fill-mask": "BertForMaskedLM"}}


def _folder(tmp_path: Path, overrides: str = "", **categories: str) -> Path:
    """A registry folder: every category file (empty unless given) and overrides.toml."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    for cat in registry.CATEGORIES:
        (tmp_path / f"{cat}.toml").write_text(categories.get(cat, ""), encoding="utf-8")
    (tmp_path / registry.OVERRIDES).write_text(overrides, encoding="utf-8")
    return tmp_path


def _raises(fn: object, *args: object) -> str:
    with pytest.raises(schema.RegistryError) as info:
        fn(*args)  # type: ignore[operator]
    return str(info.value)


# ---- _task_spec ------------------------------------------------------------------------------


def test_task_spec_skill_precedence_and_merges() -> None:
    entry = schema.TaskEntry(head="H", inputs={"b": 2, "c": 3}, config={"k": 1}, known_incompatible={"cuda": "no"})
    spec = _task_spec("vision", "feature-extraction", entry, {"a": 1, "b": 0})
    assert spec == TaskSpec(task="feature-extraction", head="H", skill="vision", inputs={"a": 1, "b": 2, "c": 3},
                            config={"k": 1}, known_incompatible={"cuda": "no"})
    assert _task_spec("language", "feature-extraction", entry, {}).skill == "text"  # the task's default family
    assert _task_spec("vision", "feature-extraction", schema.TaskEntry(head="H", skill="own"), {}).skill == "own"
    assert _task_spec("language", "no-such-task", schema.TaskEntry(head="H"), {}).skill == ""  # hand: caller refuses it


def test_task_spec_of_a_derived_head_without_recipe_is_unsupported_everywhere() -> None:
    entry = schema.TaskEntry(head="H", known_incompatible={"cuda": "own reason"})
    spec = _task_spec("language", "no-such-task", entry, {}, derived=True)
    reason = "no input recipe (task skill) for 'no-such-task' yet"
    assert spec.skill == UNSUPPORTED_SKILL
    assert spec.known_incompatible == {"cpu": reason, "cuda": "own reason", "openvino": reason}
    assert list(spec.known_incompatible) == list(HARDWARE)
    assert _task_spec("language", "fill-mask", entry, {}, derived=True).known_incompatible == {"cuda": "own reason"}


# ---- _hand -----------------------------------------------------------------------------------


def test_hand_entry_becomes_a_full_spec() -> None:
    raw = {**BERT, "tasks": {"fill-mask": "BertForMaskedLM", "text-generation": {"head": "BertLMHeadModel", "config": {"is_decoder": True}}},
           "description": "d", "config": {"hidden_size": 8}, "config_class": "BertConfig", "shrink": False, "init_std": 0.5,
           "requires": ["timm"], "known_incompatible": {"openvino": "x"}, "pretrained": "org/bert", "inputs": {"seq": 4},
           "patches": ["p1"], "tolerances": {"openvino": {"atol": 0.1, "rtol": 0.2, "reason": "r", "min_cosine": 0.9}}}
    spec = _hand("bert", raw, "language.toml")
    assert (spec.name, spec.category, spec.task, spec.description) == ("bert", "language", "fill-mask", "d")
    assert spec.tasks["fill-mask"] == TaskSpec(task="fill-mask", head="BertForMaskedLM", skill="text", inputs={"seq": 4})
    assert spec.tasks["text-generation"].config == {"is_decoder": True} and spec.tasks["text-generation"].skill == "generation"
    assert (spec.config, spec.config_class, spec.shrink, spec.init_std) == ({"hidden_size": 8}, "BertConfig", False, 0.5)
    assert spec.requires == ("timm",) and spec.patches == ("p1",) and spec.pretrained == "org/bert"
    assert spec.known_incompatible == {"openvino": "x"} and not spec.derived
    assert spec.tolerances == {"openvino": Tolerance(atol=0.1, rtol=0.2, reason="r", min_cosine=0.9)}
    vit = _hand("vit", {"category": "vision", "task": "feature-extraction", "tasks": {"feature-extraction": "V"}}, "vision.toml")
    assert vit.name == "vit" and vit.tasks["feature-extraction"].skill == "vision"  # the category picks the family
    plain = _hand("b", BERT, "f")
    assert (plain.shrink, plain.init_std, plain.requires, plain.patches, plain.pretrained) == (True, None, (), (), None)


def test_hand_entry_errors_name_file_table_and_field() -> None:
    bad_task = {**BERT, "tasks": {"fill-mask": "M", "dance": "D"}}
    assert _raises(_hand, "bert", bad_task, "language.toml") == "registry: language.toml [bert] tasks.dance: not a known task (no skill)"
    ok = _hand("bert", {**BERT, "tasks": {"fill-mask": "M", "dance": {"head": "D", "skill": "text"}}}, "f")
    assert ok.tasks["dance"].skill == "text"
    wrong_default = {**BERT, "task": "text-generation"}
    assert _raises(_hand, "bert", wrong_default, "language.toml") == (
        "registry: language.toml [bert] task: default task 'text-generation' is not in its tasks")
    assert _raises(_hand, "bert", {**BERT, "bogus": 1}, "language.toml") == (
        "registry: language.toml [bert] bogus: Extra inputs are not permitted")


# ---- derived entries -------------------------------------------------------------------------


def test_observed_reasons_drop_passes_and_spread_a_cpu_failure() -> None:
    assert _observed_reasons({"t": {"cpu": "passed", "openvino": "boom"}}, "t") == {"openvino": "boom"}
    assert _observed_reasons({"t": {"cpu": "bad", "openvino": "own"}}, "t") == {
        "cpu": "bad", "cuda": "fails on cpu: bad", "openvino": "own"}
    assert _observed_reasons({}, "t") == {}


AUTO = {"category": "language", "heads": {"feature-extraction": ["XModel", "XOther"], "text-generation": ["XForCausalLM"],
                                          "weird-head": ["XWeird"]}}


def test_derived_entry_defaults() -> None:
    spec = _derived("x", AUTO, schema.OverrideEntry(), {})
    assert spec.name == "x" and spec.derived and spec.category == "language" and spec.task == "feature-extraction"  # first runnable
    vision = _derived("v", {"category": "vision", "heads": {"feature-extraction": ["VModel"]}}, schema.OverrideEntry(), {})
    assert vision.tasks["feature-extraction"].skill == "vision"  # the category picks the family
    assert spec.description == "x (language; derived from transformers' Auto mappings)"
    assert spec.tasks["feature-extraction"].head == "XModel" and spec.tasks["text-generation"].skill == "generation"
    assert spec.tasks["weird-head"].skill == UNSUPPORTED_SKILL
    assert (spec.config, spec.config_class, spec.init_std, spec.requires, spec.known_incompatible, spec.tolerances,
            spec.patches) == ({}, None, None, (), {}, {}, ())
    audio = _derived("a", {"category": "audio", "heads": {"audio-classification": ["A"]}}, schema.OverrideEntry(inputs={"x": 1}), {})
    assert audio.tasks["audio-classification"].inputs == {"features": "wav2vec2", "samples": 1600, "x": 1}
    samples = _derived("a", {"category": "audio", "heads": {"audio-classification": ["A"]}}, schema.OverrideEntry(inputs={"samples": 8}), {})
    assert samples.tasks["audio-classification"].inputs == {"features": "wav2vec2", "samples": 8}


def test_derived_default_task_prefers_override_then_cpu_pass_then_runnable() -> None:
    observed = {"text-generation": {"cpu": "passed"}, "feature-extraction": {"cpu": "bad"}}
    assert _derived("x", AUTO, schema.OverrideEntry(), observed).task == "text-generation"
    assert _derived("x", AUTO, schema.OverrideEntry(task="weird-head"), observed).task == "weird-head"
    only_weird = {"category": "language", "heads": {"weird-head": ["W"], "odd-head": ["O"]}}
    assert _derived("x", only_weird, schema.OverrideEntry(), {}).task == "weird-head"  # nothing runnable: the first
    assert _raises(_derived, "x", AUTO, schema.OverrideEntry(task="fill-mask"), {}) == (
        "registry: overrides.toml [x] task: 'fill-mask' is not one of its heads' tasks (feature-extraction, text-generation, weird-head)")


def test_derived_overrides_apply_per_head_and_known_failures_merge() -> None:
    over = schema.OverrideEntry(
        description="mine", config={"a": 1}, config_class="C", init_std=0.1, requires=["r"], known_incompatible={"cuda": "m"},
        tolerances={"openvino": schema.ToleranceEntry(atol=1, rtol=2, reason="why")}, patches=["p"],
        tasks={"feature-extraction": schema.TaskOverride(head="XOther", known_incompatible={"openvino": "declared"}),
               "text-generation": schema.TaskOverride(config={"use_cache": False})})  # no head: the Auto one stays
    observed = {"feature-extraction": {"cpu": "passed", "openvino": "seen", "cuda": "seen too"}}
    spec = _derived("x", AUTO, over, observed)
    fe = spec.tasks["feature-extraction"]
    assert fe.head == "XOther" and fe.known_incompatible == {"openvino": "declared", "cuda": "seen too"}
    tg = spec.tasks["text-generation"]
    assert (tg.head, tg.config, tg.known_incompatible) == ("XForCausalLM", {"use_cache": False}, {})
    assert (spec.description, spec.config, spec.config_class, spec.init_std, spec.requires, spec.patches) == (
        "mine", {"a": 1}, "C", 0.1, ("r",), ("p",))
    assert spec.known_incompatible == {"cuda": "m"} and spec.tolerances == {"openvino": Tolerance(atol=1, rtol=2, reason="why")}
    bad = schema.OverrideEntry(tasks={"fill-mask": schema.TaskOverride()})
    assert _raises(_derived, "x", AUTO, bad, {}) == (
        "registry: overrides.toml [x] tasks.fill-mask: x has no such head (feature-extraction, text-generation, weird-head)")


# ---- files -----------------------------------------------------------------------------------


@pytest.fixture
def ascii_locale() -> Iterator[None]:
    """A C (ASCII) locale, as on a bare container: a file read without an explicit encoding fails."""
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


def test_read_toml_is_utf8_whatever_the_locale(tmp_path: Path, ascii_locale: None) -> None:
    (tmp_path / "c.toml").write_bytes('[x]\nd = "é"\n'.encode())
    assert _read_toml(tmp_path, "c.toml") == {"x": {"d": "é"}}


def test_read_toml_names_the_file_on_a_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("[x]\ny = 1\n", encoding="utf-8")
    assert _read_toml(tmp_path, "a.toml") == {"x": {"y": 1}}
    (tmp_path / "b.toml").write_text("[x\n", encoding="utf-8")
    with pytest.raises(schema.RegistryError) as info:
        _read_toml(tmp_path, "b.toml")
    assert str(info.value).startswith("registry: b.toml: ") and "line 1" in str(info.value)
    assert info.value.__suppress_context__ and info.value.__cause__ is None  # no parser traceback


def test_load_from_orders_hand_entries_then_derived_and_hand_shadows_auto(tmp_path: Path) -> None:
    folder = _folder(tmp_path, overrides='[x]\ndescription = "over"\n',
                     language='[b]\ncategory = "language"\ntask = "fill-mask"\ntasks.fill-mask = "B"\n'
                              '[a]\ncategory = "language"\ntask = "fill-mask"\ntasks.fill-mask = "A"\n',
                     vision='[v]\ncategory = "vision"\ntask = "image-classification"\ntasks.image-classification = "V"\n')
    auto = {"x": AUTO, "b": AUTO, "y": {"category": "vision", "heads": {"backbone": ["Y"]}}}
    out = load_from(folder, auto, {"y": {"backbone": {"openvino": "boom"}}})
    assert list(out) == ["b", "a", "v", "x", "y"]
    assert not out["b"].derived and out["b"].tasks["fill-mask"].head == "B"  # the hand entry, not the Auto one
    assert out["x"].derived and out["x"].description == "over"
    assert all(spec.name == name for name, spec in out.items())
    assert out["y"].tasks["backbone"].known_incompatible == {"openvino": "boom"}


def test_load_from_refuses_duplicates_misfiled_entries_and_stray_overrides(tmp_path: Path) -> None:
    entry = '[m]\ncategory = "language"\ntask = "fill-mask"\ntasks.fill-mask = "M"\n'
    dup = _folder(tmp_path / "dup", language=entry, specialized=entry.replace('"language"', '"specialized"'))
    assert _raises(load_from, dup, {}, {}) == "registry: specialized.toml [m]: model is defined twice"
    misfiled = _folder(tmp_path / "mis", vision=entry)
    assert _raises(load_from, misfiled, {}, {}) == "registry: vision.toml [m] category: 'language' belongs in language.toml"
    stray = _folder(tmp_path / "stray", overrides='[zz]\ndescription = "z"\n[aa]\ndescription = "a"\n')
    assert _raises(load_from, stray, {"m": AUTO}, {}) == "registry: overrides.toml [aa]: not a type of transformers' Auto mappings"
    bad_hand = _folder(tmp_path / "hand", audio='[m]\ncategory = "audio"\ntask = "x"\ntasks.audio-classification = "M"\n')
    assert _raises(load_from, bad_hand, {}, {}) == "registry: audio.toml [m] task: default task 'x' is not in its tasks"
    bad_over = _folder(tmp_path / "bad", overrides="[m]\nbogus = 1\n")
    assert _raises(load_from, bad_over, {"m": AUTO}, {}) == "registry: overrides.toml [m] bogus: Extra inputs are not permitted"


# ---- the real registry: lookups --------------------------------------------------------------


def test_load_reads_the_package_registry_with_its_observed_results() -> None:
    models = registry.load()
    assert models is registry.load()  # cached
    assert registry._load_package() == models  # what the cache holds, read afresh
    assert not models["bert"].derived and models["bert"].task == "fill-mask"
    fresh = registry._load_package()
    assert list(fresh) == list(models) and fresh["bert"].tasks["fill-mask"].head == "BertForMaskedLM"
    derived = [s for s in fresh.values() if s.derived]
    assert derived and any("observed in the full matrix run" in why for s in derived for t in s.tasks.values()
                           for why in t.known_incompatible.values())
    assert registry.hand_written() == [n for n, s in models.items() if not s.derived] and "bert" in registry.hand_written()
    assert "afmoe" not in registry.hand_written()


def test_package_data_without_observed_results_or_with_non_ascii_ones(tmp_path: Path, ascii_locale: None) -> None:
    real = Path(registry.__file__).parent
    shutil.copytree(real / "models", tmp_path / "models")
    bare = registry._load_package(tmp_path)  # no observed.json: nothing observed, nothing refused
    assert not any(t.known_incompatible for t in bare["afmoe"].tasks.values())
    (tmp_path / registry.OBSERVED).write_bytes(json.dumps({"types": {"afmoe": {"feature-extraction": {"cpu": "boom é"}}}},
                                                          ensure_ascii=False).encode())
    seen = registry._load_package(tmp_path)["afmoe"].tasks["feature-extraction"].known_incompatible
    assert seen == {"cpu": "boom é", "cuda": "fails on cpu: boom é", "openvino": "fails on cpu: boom é"}


def test_get_finds_aliases_and_suggests_for_unknown_names() -> None:
    assert registry.get("bert").name == "bert"
    assert registry.get("gpt-neo").name == "gpt_neo" and registry.get("GPT-Neo").name == "gpt_neo"
    assert registry.get("gpt_neo") is registry.load()["gpt_neo"]
    with pytest.raises(UnknownNameError) as info:
        registry.get("bertt")
    assert info.value.kind == "model" and info.value.name == "bertt" and "bert" in info.value.suggestions
    assert str(info.value).startswith("unknown model 'bertt'; did you mean: bert")


def test_list_models_filters_and_refuses_unknown_category_or_task() -> None:
    assert [m.name for m in registry.list_models(names=["gpt2", "bert"])] == ["gpt2", "bert"]
    assert [m.name for m in registry.list_models("ber*", names=["gpt2", "bert", "bart"])] == ["bert"]
    assert all(m.category == "audio" for m in registry.list_models(category="audio")) and registry.list_models(category="audio")
    assert len(registry.list_models(category="all")) == len(registry.load()) == len(registry.list_models())
    fm = registry.list_models(task="fill-mask", names=["gpt2", "bert"])
    assert [m.name for m in fm] == ["bert"]
    with pytest.raises(UnknownNameError) as info:
        registry.list_models(category="lang")
    assert str(info.value) == "unknown category 'lang'; did you mean: language?" and info.value.kind == "category"
    with pytest.raises(UnknownNameError) as info:
        registry.list_models(category="zzz")
    assert str(info.value) == "unknown category 'zzz'; known: all, audio, language, multimodal, specialized, vision"
    with pytest.raises(UnknownNameError) as info:
        registry.list_models(task="fill-masks")
    assert info.value.kind == "task" and info.value.suggestions[0] == "fill-mask"


def test_all_tasks_is_sorted_and_unique() -> None:
    tasks = registry.all_tasks()
    assert tasks == sorted(set(tasks)) and "fill-mask" in tasks
    assert set(tasks) == {t for s in registry.load().values() for t in s.tasks}


# ---- errors ----------------------------------------------------------------------------------


def test_unknown_name_error_message_shapes() -> None:
    e = UnknownNameError("api", "opena", ["openai", "ollama", "gemini"])
    assert (e.kind, e.name, e.suggestions) == ("api", "opena", ["openai"])
    assert str(e) == "unknown api 'opena'; did you mean: openai?" and isinstance(e, LookupError)
    ctx = UnknownNameError("task", "zzz", ["b", "a"], context="bert")
    assert str(ctx) == "unknown task 'zzz' for bert; known: a, b" and ctx.suggestions == []
    many = [f"name{i:02d}" for i in range(13)]
    assert str(UnknownNameError("model", "zzz", many)) == "unknown model 'zzz'"  # too many to list
    assert str(UnknownNameError("model", "zzz", many[:12])).endswith("; known: " + ", ".join(many[:12]))
    six = UnknownNameError("model", "abcd", ["abcd1", "abcd2", "abcd3", "abcd4", "abcd5", "abcd6"])
    assert len(six.suggestions) == 5  # at most five
    assert str(UnknownNameError("model", "abcd", ["abcd1", "abcd2"])) == "unknown model 'abcd'; did you mean: abcd2, abcd1?"  # difflib: best first, ties latest first
    assert UnknownNameError("model", "abcd", ["abxy"]).suggestions == ["abxy"]  # ratio 0.5 is close enough
    assert UnknownNameError("model", "abcd", ["axyz"]).suggestions == []
