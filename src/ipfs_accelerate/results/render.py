"""Jinja2 environment shared by the Markdown and HTML reports: one template per section under
`results/templates/`, so a section's wording lives in one place and both formats can reuse it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from .status import ICON

TEMPLATES = Path(__file__).with_name("templates")


def md_cell(text: object, limit: int = 200) -> str:
    """One Markdown table cell: one line, pipes escaped, long text cut with an ellipsis."""
    one = " ".join(str(text or "").split())
    if len(one) > limit:
        one = one[: limit - 1] + "…"
    return one.replace("|", "\\|")


def fmt(x: float | None, digits: int = 2) -> str:
    """A number with fixed decimals, or an en dash for no value."""
    return "–" if x is None else f"{x:.{digits}f}"


def tail(text: str, lines: int = 40) -> str:
    """The last lines of captured output, with code fences defused so they cannot end the block."""
    return "\n".join((text or "").rstrip().splitlines()[-lines:]).replace("```", "ˋˋˋ")


def bar(n: int, total: int, width: int = 10) -> str:
    """A text bar for Markdown (the HTML report draws real ones from the same numbers)."""
    filled = round(width * n / total) if total else 0
    return "█" * filled + "░" * (width - filled)


@cache
def environment(autoescape: bool = False) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=autoescape, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters.update(md=md_cell, f2=fmt, f1=lambda x: fmt(x, 1), f0=lambda x: fmt(x, 0), tail=tail, bar=bar,
                       cell_icon=lambda s: ICON.get(str(s), ""), sort_int=lambda keys: sorted(keys, key=int))
    return env


def render(name: str, **context: Any) -> str:
    return environment(name.endswith(".html.j2")).get_template(name).render(**context)
