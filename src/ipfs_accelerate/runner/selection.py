"""From command-line filters to test files and pytest options.

Model tests live in `<test-dir>/skills/test_hf_<model>[__<task>].py`, API tests in
`<test-dir>/apis/test_<api>.py` (the generator's layout). Every filter changes the file list or
the pytest options, and every unknown name is a usage error with suggestions; none is parsed and
then ignored (the earlier runner's `--category` and `--impl-type` were).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# The test tree's layout has one owner, generate.layout (stdlib only, cheap at start-up).
from ..generate.layout import API_DIR, MODEL_DIR, ident, model_files

# The registry is imported inside the functions: loading it validates every entry with pydantic
# (~0.2 s), which the runner must not pay before its workers are launched.


class UsageError(Exception):
    """Bad command line: exit code 2."""


def api_names() -> list[str]:
    from ..api.providers import PROVIDER_NAMES

    return list(PROVIDER_NAMES)


@dataclass
class Resolved:
    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # requested names without a generated file
    models: list[str] = field(default_factory=list)
    apis: list[str] = field(default_factory=list)


def resolve(
    test_dir: Path,
    type_: str = "all",
    models: list[str] | None = None,
    apis: list[str] | None = None,
    category: str = "all",
    limit: int | None = None,
    registry: str = "all",
) -> Resolved:
    """Pick files. `--category` filters models (and `api` selects API tests); `--limit` caps the
    number of models that have a test file (and of APIs), in registry order. `--registry curated`
    keeps the hand-tuned entries, `derived` the types taken from transformers' Auto mappings."""
    from ..registry import CATEGORIES, UnknownNameError, get, list_models

    RUN_CATEGORIES = (*CATEGORIES, "api", "all")
    if category not in RUN_CATEGORIES:
        raise UsageError(str(UnknownNameError("category", category, list(RUN_CATEGORIES))))
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1 (got {limit})")
    out = Resolved()
    want_models = type_ in ("model", "all") and category != "api" and not (apis and not models and type_ == "all")
    want_apis = type_ in ("api", "all") and (category in ("all", "api")) and not (models and not apis and type_ == "all")
    if models and type_ == "api":
        raise UsageError("--models selects model tests; it cannot be combined with --type api")
    if apis and type_ == "model":
        raise UsageError("--apis selects API tests; it cannot be combined with --type model")
    if want_models:
        try:
            specs = list_models(category=None if category in ("all",) else category, names=models or None)
        except UnknownNameError as exc:
            raise UsageError(str(exc)) from exc
        if registry not in ("all", "curated", "derived"):
            raise UsageError(f"--registry must be all, curated or derived (got {registry!r})")
        if registry != "all" and not models:
            specs = [s for s in specs if s.derived == (registry == "derived")]
        if models and category != "all":
            dropped = [m for m in models if get(m).category != category]
            if dropped:
                raise UsageError(f"--models {' '.join(dropped)} not in category {category!r}")
        for spec in specs:
            if limit is not None and len(out.models) >= limit:
                break
            found = model_files(test_dir, spec.name)
            if found:
                out.files.extend(found)
                out.models.append(spec.name)
            else:
                out.missing.append(spec.name)
        if not models and category == "all" and limit is None and registry == "all":  # hand-written files outside the registry
            known = {f"test_hf_{ident(s.name)}" for s in list_models()}
            for path in sorted((test_dir / MODEL_DIR).glob("test_hf_*.py")):
                if path.stem.split("__")[0] not in known and path not in out.files:
                    out.files.append(path)
        if not models and category in ("all", "multimodal") and limit is None and registry != "derived":  # seam(diffusion): its generated cases
            out.files += [p for p in sorted((test_dir / MODEL_DIR).glob("test_diffusion_*.py")) if p not in out.files]
    if want_apis:
        known_apis = api_names()
        chosen = list(apis or known_apis)
        for name in chosen:
            if name not in known_apis:
                raise UsageError(str(UnknownNameError("API", name, known_apis)))
        for name in chosen:
            if limit is not None and not apis and len(out.apis) >= limit:
                break
            path = test_dir / API_DIR / f"test_{ident(name)}.py"
            if path.is_file():
                out.files.append(path)
                out.apis.append(name)
            else:
                out.missing.append(name)
    return out


def check_hardware(hardware: list[str]) -> list[str]:
    from ..registry.errors import UnknownNameError
    from ..registry.spec import HARDWARE

    for hw in hardware:
        if hw not in HARDWARE:
            raise UsageError(str(UnknownNameError("hardware", hw, list(HARDWARE))))
    return list(dict.fromkeys(hardware))


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'k/N' with 1 <= k <= N; None when no --shard was given (an empty one is an error)."""
    if text is None:
        return None
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError as exc:
        raise UsageError(f"--shard must look like k/N (e.g. 2/4), got {text!r}") from exc
    if not (n >= 1 and 1 <= k <= n):
        raise UsageError(f"--shard {text}: need 1 <= k <= N")
    return k, n
