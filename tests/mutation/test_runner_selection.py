"""Pure unit tests of runner/selection.py that kill its mutants (real registry, empty files in tmp_path).

Selection decides which test files a run executes: a flipped filter silently runs too few
tests (or too many), so each filter is checked by the exact file list it yields.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ipfs_accelerate.runner import selection as sel
from ipfs_accelerate.runner.selection import UsageError


@pytest.fixture
def tdir(tmp_path: Path) -> Path:
    for name in ("test_hf_bert.py", "test_hf_bert__fill_mask.py", "test_hf_bertx.py", "test_hf_vit.py",
                 "test_hf_custom.py", "test_diffusion_sd.py", "notes.txt"):
        (tmp_path / "skills").mkdir(exist_ok=True)
        (tmp_path / "skills" / name).write_text("")
    (tmp_path / "apis").mkdir()
    for name in ("test_openai_api.py", "test_claude.py"):
        (tmp_path / "apis" / name).write_text("")
    return tmp_path


def _names(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.name}" for p in paths]


def test_ident_is_the_layout_one() -> None:
    """The runner names files through generate.layout (one owner of the layout, issue 10)."""
    assert sel.ident("Deberta-V2") == "deberta_v2"
    assert sel.ident("kosmos-2.5") == "kosmos_2_5"


def test_model_files_stem_or_task_suffix_only(tdir: Path) -> None:
    assert _names(sel.model_files(tdir, "bert")) == ["skills/test_hf_bert.py", "skills/test_hf_bert__fill_mask.py"]
    assert sel.model_files(tdir, "roberta") == []


def test_resolve_everything(tdir: Path) -> None:
    r = sel.resolve(tdir)
    assert r.models == ["bert", "vit"] and r.apis == ["openai_api", "claude"]
    assert _names(r.files) == [
        "skills/test_hf_bert.py", "skills/test_hf_bert__fill_mask.py", "skills/test_hf_vit.py",
        "skills/test_hf_bertx.py", "skills/test_hf_custom.py", "skills/test_diffusion_sd.py",
        "apis/test_openai_api.py", "apis/test_claude.py",
    ]
    assert "roberta" in r.missing and "groq" in r.missing and "bert" not in r.missing
    assert r.missing.index("roberta") < r.missing.index("groq")  # models first, then APIs


def test_resolve_by_type(tdir: Path) -> None:
    m = sel.resolve(tdir, "model")
    assert m.apis == [] and m.models == ["bert", "vit"] and "skills/test_diffusion_sd.py" in _names(m.files)
    a = sel.resolve(tdir, "api")
    assert a.models == [] and _names(a.files) == ["apis/test_openai_api.py", "apis/test_claude.py"]


def test_named_models_or_apis_pick_only_those(tdir: Path) -> None:
    r = sel.resolve(tdir, models=["bert"])
    assert _names(r.files) == ["skills/test_hf_bert.py", "skills/test_hf_bert__fill_mask.py"] and r.apis == []
    r = sel.resolve(tdir, apis=["claude"])
    assert _names(r.files) == ["apis/test_claude.py"] and r.models == []
    both = sel.resolve(tdir, models=["vit"], apis=["claude"])
    assert _names(both.files) == ["skills/test_hf_vit.py", "apis/test_claude.py"]
    missing = sel.resolve(tdir, models=["roberta"])
    assert missing.files == [] and missing.missing == ["roberta"]
    gone = sel.resolve(tdir, apis=["groq"])
    assert gone.files == [] and gone.missing == ["groq"]


def test_category_filters(tdir: Path) -> None:
    v = sel.resolve(tdir, category="vision")
    assert _names(v.files) == ["skills/test_hf_vit.py"] and v.apis == []
    mm = sel.resolve(tdir, category="multimodal")
    assert _names(mm.files) == ["skills/test_diffusion_sd.py"] and mm.models == []
    api = sel.resolve(tdir, category="api")
    assert api.models == [] and api.apis == ["openai_api", "claude"]
    assert sel.resolve(tdir, models=["vit"], category="vision").models == ["vit"]
    with pytest.raises(UsageError, match=r"^--models bert not in category 'vision'$"):
        sel.resolve(tdir, models=["bert", "vit"], category="vision")
    with pytest.raises(UsageError, match=r"^--models bert roberta not in category 'vision'$"):
        sel.resolve(tdir, models=["bert", "roberta"], category="vision")


def test_limit(tdir: Path) -> None:
    r = sel.resolve(tdir, limit=1)
    assert r.models == ["bert"] and r.apis == ["openai_api"]
    assert _names(r.files) == ["skills/test_hf_bert.py", "skills/test_hf_bert__fill_mask.py", "apis/test_openai_api.py"]
    assert sel.resolve(tdir, limit=2).models == ["bert", "vit"]
    # explicit APIs are not capped by --limit; the custom/diffusion extras only join unlimited runs
    assert sel.resolve(tdir, "api", apis=["openai_api", "claude"], limit=1).apis == ["openai_api", "claude"]
    assert sel.resolve(tdir, "model", limit=5).files[-1].name == "test_hf_vit.py"


def test_usage_errors(tdir: Path) -> None:
    with pytest.raises(UsageError, match=r"^unknown category 'poetry'"):
        sel.resolve(tdir, category="poetry")
    with pytest.raises(UsageError, match=r"^--limit must be at least 1 \(got 0\)$"):
        sel.resolve(tdir, limit=0)
    with pytest.raises(UsageError, match=r"^--models selects model tests; it cannot be combined with --type api$"):
        sel.resolve(tdir, "api", models=["bert"])
    with pytest.raises(UsageError, match=r"^--apis selects API tests; it cannot be combined with --type model$"):
        sel.resolve(tdir, "model", apis=["claude"])
    with pytest.raises(UsageError, match=r"bertt"):
        sel.resolve(tdir, models=["bertt"])
    with pytest.raises(UsageError, match=r"^unknown API 'nope'"):
        sel.resolve(tdir, apis=["claude", "nope"])
    assert sel.resolve(tdir, limit=1).models  # 1 is allowed


def test_check_hardware() -> None:
    assert sel.check_hardware(["cpu", "openvino", "cpu"]) == ["cpu", "openvino"]
    with pytest.raises(UsageError, match=r"^unknown hardware 'tpu'"):
        sel.check_hardware(["cpu", "tpu"])


def test_parse_shard() -> None:
    assert sel.parse_shard(None) is None
    assert sel.parse_shard("2/4") == (2, 4) and sel.parse_shard("1/1") == (1, 1) and sel.parse_shard("4/4") == (4, 4)
    for bad in ("", "x", "1/2/3", "1-2"):
        with pytest.raises(UsageError, match=r"^--shard must look like k/N \(e\.g\. 2/4\), got "):
            sel.parse_shard(bad)
    for bad in ("0/4", "5/4", "1/0", "-1/2"):
        with pytest.raises(UsageError, match=rf"^--shard {bad}: need 1 <= k <= N$"):
            sel.parse_shard(bad)


def test_registry_filter_splits_curated_from_derived(tdir: Path) -> None:
    """`--registry curated` is what `make test` runs; `derived` the Auto-mapped rest."""
    (tdir / "skills" / "test_hf_axk1.py").write_text("")  # a derived type
    curated = sel.resolve(tdir, "model", registry="curated")
    assert curated.models == ["bert", "vit"]
    assert "skills/test_hf_axk1.py" not in _names(curated.files)
    assert "skills/test_diffusion_sd.py" in _names(curated.files)
    assert "skills/test_hf_custom.py" not in _names(curated.files)  # hand files only with --registry all
    derived = sel.resolve(tdir, "model", registry="derived")
    assert _names(derived.files) == ["skills/test_hf_axk1.py"]
    assert "bert" not in derived.models
    with pytest.raises(UsageError, match="--registry"):
        sel.resolve(tdir, "model", registry="hand")


def test_registry_all_keeps_both_and_named_models_bypass_the_filter(tdir: Path) -> None:
    """`--registry all` (the default) keeps curated and derived types; models named with
    `--models` are run whichever registry they come from."""
    (tdir / "skills" / "test_hf_axk1.py").write_text("")  # a derived type
    everything = sel.resolve(tdir, "model", registry="all")
    assert "skills/test_hf_axk1.py" in _names(everything.files)
    assert {"bert", "vit", "axk1"} <= set(everything.models)
    named = sel.resolve(tdir, "model", models=["axk1"], registry="curated")
    assert named.models == ["axk1"] and _names(named.files) == ["skills/test_hf_axk1.py"]
