"""Thin generated test files for the diffusion cases, in the generator engine's format.

`targets()` returns `generate.engine.Target`s (same header, checksum, `ast.parse` check and
writer), so `generate --type all` / `--check` can simply append them to the model targets.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any

from ..generate import engine
from ..generate.names import camel, ident
from . import spec

COMMAND = "python -m ipfs_accelerate.diffusion generate"
SOURCE = "ipfs-accelerate diffusion case table"


@lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ipfs_accelerate.diffusion", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["py"] = engine.py_literal
    env.filters["docstring"] = engine.py_docstring
    return env


def relpath(name: str) -> PurePosixPath:
    return PurePosixPath(engine.MODEL_DIR, f"test_diffusion_{ident(name)}.py")


def target(name: str, hardware: tuple[str, ...] = ("cpu", "cuda", "openvino")) -> engine.Target:
    s = spec.get(name)
    doc = (
        f"Generated tests for the {name} diffusion case ({spec.CATEGORY}), task {s.task}:\n"
        f"init, one run, repeatability, batch rows, parity vs CPU, expected-results comparison and\n"
        f"metrics, on {', '.join(hardware)} (each skipped where not available).\n\n{s.description}"
    )
    body = _env().get_template("diffusion_test.py.j2").render(
        docstring=doc, name=name, category=spec.CATEGORY, task=s.task, hardware=hardware, class_name="TestDiffusion" + camel(name)
    )
    return engine._target("model", name, s.task, "unified", relpath(name), COMMAND, SOURCE, body)


def targets() -> list[engine.Target]:
    return [target(name) for name in spec.names()]
