from __future__ import annotations

import json

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from presets import merging

register = template.Library()


@register.filter
def json_value(value: object) -> str:
    """A flag value as it is written in JSON and on the command line: true, 0.85, lpm."""
    return value if isinstance(value, str) else json.dumps(value)


@register.filter
def values_with_sources(pairs: list[tuple[object, list[str]]]) -> str:
    """A merged flag's values, each followed by the presets it came from (the merge preview's cells).

    Built here rather than with template loops: the live preview renders it on every change."""
    cells = (
        f'<span class="value">{escape(json_value(value))} <small class="source">{escape(", ".join(names))}</small>'
        "</span>"
        for value, names in pairs
    )
    return mark_safe("".join(cells))  # every piece is escaped above


@register.filter
def grid_summary(grid: dict) -> str:
    return merging.grid_summary(grid)
