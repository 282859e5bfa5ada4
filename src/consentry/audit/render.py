"""Jinja2 for the audit package: templates ship inside it, and the filters turn
microseconds and counts into what a DPO reads."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ..words import plural


def duration(us: int | None) -> str:
    """A delay in words and a sensible unit: '42 ms', '3.5 min', '2.1 days'."""
    if us is None:
        return "-"
    sign, us = ("-" if us < 0 else ""), abs(us)
    s = us / 1_000_000
    if s < 1:
        text = f"{us / 1000:.0f} ms" if us >= 1000 else f"{us} µs"
    elif s < 120:
        text = f"{s:.1f} s"
    elif s < 2 * 3600:
        text = f"{s / 60:.1f} min"
    elif s < 2 * 86_400:
        text = f"{s / 3600:.1f} h"
    else:
        text = f"{s / 86_400:.1f} days"
    return sign + text


def md_cell(value: object) -> str:
    """A Markdown table cell: pipes and line breaks would break the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def number(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


@lru_cache(maxsize=2)
def environment(*, html: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(resources.files(__package__) / "templates")),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=html, default=html),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["duration"] = duration
    env.filters["number"] = number
    env.filters["plural"] = plural
    env.filters["md_cell"] = md_cell
    return env
