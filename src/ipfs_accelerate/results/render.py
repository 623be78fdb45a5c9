"""Jinja2 environment shared by the Markdown and HTML reports: one template per section under
`results/templates/`, so a section's wording lives in one place and both formats can reuse it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).with_name("templates")


def md_cell(text: object, limit: int = 200) -> str:
    """One Markdown table cell: one line, pipes escaped, long text cut with an ellipsis."""
    one = " ".join(str(text or "").split())
    if len(one) > limit:
        one = one[: limit - 1] + "…"
    return one.replace("|", "\\|")


@cache
def environment(autoescape: bool = False) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=autoescape, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["md"] = md_cell
    return env


def render(name: str, **context: Any) -> str:
    return environment(name.endswith(".html.j2")).get_template(name).render(**context)
