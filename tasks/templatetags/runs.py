"""Template filters for run figures: measured numbers and durations, written as people read them."""

from __future__ import annotations

import math

from django import template

register = template.Library()


@register.filter
def figure(value: float | None) -> str:
    """A measurement with three or four significant digits: 1,234, 56.7, 0.0421; empty when missing."""
    if value is None or not math.isfinite(value):
        return ""
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


@register.filter
def duration(seconds: float | None) -> str:
    """12 s, 3 min 5 s, 2 h 4 min."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = max(round(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
