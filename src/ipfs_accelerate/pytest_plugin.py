"""pytest plugin (entry point `pytest11`): options, markers and parametrisation for generated
tests, so they run under plain `pytest` exactly as under the runner.

Options: --hardware, --update-expected, --expected-dir, --model-id, --benchmark-cases,
--ipfs-results (append one JSON CaseResult per finished case, for the runner and reports),
--impl-type (tiny / pretrained / all, with the spec's mock / real as aliases: which
implementations the `impl_type` fixture is parametrised over; model tests: tiny real forward
passes on random weights vs a resolved pretrained checkpoint; API tests: the local protocol server
vs the provider's real endpoint). The fixture's values stay the recorded tags "mock" / "real".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .runner.impl import IMPL_CHOICES, IMPL_HELP, impl_tag

MARKERS = [
    "model(name): registry model this test exercises",
    "category(name): model category (language, vision, audio, multimodal, specialized)",
    "task(name): task / pipeline tag under test",
    "hardware(name): hardware backend the test runs on",
    "api(name): API backend under test",
    "impl(kind): implementation under test: mock (tiny random / local server) or real (pretrained / real endpoint)",
    "basic: fast CPU smoke profile",
    "peer: needs a real third-party server (slower tier)",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ipfs-accelerate")
    group.addoption("--hardware", nargs="+", default=None, help="hardware to test (cpu cuda openvino); default: all")
    group.addoption("--update-expected", action="store_true", help="rewrite expected-results fingerprints")
    group.addoption("--expected-dir", default=None, help="expected-results folder (default: test/expected_results next to the tests)")
    group.addoption("--model-id", default=None, help="run from this local checkpoint folder / cached repo id instead of tiny random weights")
    group.addoption("--benchmark-cases", action="store_true", help="more warm-up/repetitions and batch sizes 1/4/16")
    group.addoption("--scale", choices=("tiny", "full"), default="tiny", help="tiny models or the real reference size")  # seam(scale)
    group.addoption("--ipfs-results", default=None, help="append one JSON CaseResult line per finished case to this file")
    group.addoption(
        "--impl-type", choices=IMPL_CHOICES, default=None,
        help=f"{IMPL_HELP}. Default: tiny (or --model-id's checkpoint when given)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)


def _expected_dir(config: pytest.Config, path: Path) -> Path | None:
    opt = config.getoption("--expected-dir", None)
    if opt:
        return Path(opt)
    for parent in [path.parent, *path.parents]:
        cand = parent / "expected_results"
        if cand.is_dir():
            return cand
        if (parent / "pyproject.toml").exists():
            break
    return None


@pytest.fixture
def ipfs_settings(request: pytest.FixtureRequest):
    from .harness.case import Settings

    config = request.config
    kwargs = dict(
        expected_dir=_expected_dir(config, Path(str(request.node.path))),
        update_expected=config.getoption("--update-expected"),
        model_id=config.getoption("--model-id"),
        scale=config.getoption("--scale", "tiny"),  # seam(scale)
    )
    if config.getoption("--benchmark-cases"):
        return Settings.benchmark(**kwargs)
    return Settings(**kwargs)


IMPLS = {"mock": ("mock",), "real": ("real",), "all": ("mock", "real")}


@pytest.fixture
def impl_type(request: pytest.FixtureRequest) -> str:
    """'mock' or 'real' (see --impl-type); parametrised directly when --impl-type includes real."""
    return getattr(request, "param", "mock")


def _impls(config: pytest.Config) -> tuple[str, ...]:
    return IMPLS[impl_tag(config.getoption("--impl-type", None) or "tiny")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    impls = _impls(metafunc.config)
    if "hw" not in metafunc.fixturenames or metafunc.cls is None:
        if "impl_type" in metafunc.fixturenames and impls != ("mock",):
            metafunc.parametrize("impl_type", [pytest.param(i, marks=[pytest.mark.impl(i)], id=i) for i in impls])
        return
    cls = metafunc.cls
    selected = metafunc.config.getoption("--hardware") or list(cls.hardware)
    hws = [h for h in cls.hardware if h in selected]
    name = metafunc.function.__name__
    if getattr(cls, "profile", "unified") == "basic":
        from .testing.model_tests import BASIC_TESTS

        hws = [h for h in hws if h == "cpu"] if name in BASIC_TESTS else []
    elif name == "test_parity":
        hws = [h for h in hws if h != "cpu"]
    elif name == "test_expected_results":
        hws = [h for h in hws if h == "cpu"]
    marks = {h: [pytest.mark.hardware(h)] for h in hws}
    if impls == ("mock",) or "impl_type" not in metafunc.fixturenames:
        metafunc.parametrize("hw", [pytest.param(h, marks=marks[h], id=h) for h in hws])
        return
    # ids stay `[cpu]` for mock so node ids do not change with the option; real ones are `[cpu-real]`
    metafunc.parametrize(
        ("hw", "impl_type"),
        [
            pytest.param(h, i, marks=[*marks[h], pytest.mark.impl(i)], id=h if i == "mock" else f"{h}-{i}")
            for i in impls
            for h in hws
        ],
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A model test left with no hardware by --hardware (test_parity with `--hardware cpu`) is
    deselected rather than reported as a `[NOTSET]` skip: it was not asked for."""
    drop = [i for i in items if "hw" in getattr(getattr(i, "callspec", None), "params", {}) and not isinstance(i.callspec.params["hw"], str)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        dropped = {id(i) for i in drop}
        items[:] = [i for i in items if id(i) not in dropped]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    if call.when != "call":
        return
    from .testing.model_tests import RESULT_KEY

    result = item.stash.get(RESULT_KEY, None)
    path = item.config.getoption("--ipfs-results", None)
    if result is not None and path:
        line = result.model_dump_json()
        with open(path, "a", encoding="utf-8") as fh:  # one short append per case: atomic on POSIX
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    report = outcome.get_result()
    if result is not None:
        report.user_properties.append(("ipfs_case", json.loads(result.model_dump_json())))
