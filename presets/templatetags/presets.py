from __future__ import annotations

import json

from django import template

from presets import merging

register = template.Library()


@register.filter
def json_value(value: object) -> str:
    """A flag value as it is written in JSON and on the command line: true, 0.85, lpm."""
    return value if isinstance(value, str) else json.dumps(value)


@register.filter
def grid_summary(grid: dict) -> str:
    return merging.grid_summary(grid)
