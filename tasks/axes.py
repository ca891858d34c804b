"""Plot axes with round ticks, padded so the data never sits on an edge nor looks more spread
than it is (tasks.plots draws them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_SPAN = 0.2  # an axis spans at least this fraction of its highest value
MARGIN = 0.1  # and this fraction of its span beyond the data on both sides


@dataclass(frozen=True)
class Axis:
    low: float
    high: float
    ticks: list[float]


def nice_axis(low: float, high: float) -> Axis:
    """An axis over low..high, spanning at least a fifth of high and with a margin on both sides
    so no point sits on an edge, and four to six ticks at round values (steps of 1, 2 or 5 × 10^k)."""
    low, high = padded(low, high)
    span = high - low
    magnitude = math.floor(math.log10(span))
    inside, widened = [], []
    for exponent in range(magnitude - 2, magnitude + 2):
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**exponent
            first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
            if 4 <= last - first + 1 <= 6:
                inside.append((abs(last - first + 1 - 5), -step, step, first, last))
            # Some ranges fall between steps (2,000 gives seven ticks, 5,000 three); the axis
            # then grows to round values, above the data and then below it.
            first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
            for extra in range(4 - (last - first + 1)):
                if extra % 2 == 0 or first == 0:
                    last += 1
                else:
                    first -= 1
            if last - first + 1 <= 6:
                widened.append(((last - first) * step - span, step, first, last))
    if inside:
        *_, step, first, last = min(inside)
    else:
        *_, step, first, last = min(widened)
        low, high = first * step, last * step
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return Axis(low, high, [round(i * step, decimals) for i in range(first, last + 1)])


def padded(low: float, high: float) -> tuple[float, float]:
    """Widen a narrow range to a fifth of its top value, around its middle, so that figures a few
    percent apart do not fill the chart as if they were far apart; then leave a margin (a tenth of
    the span) on both sides, so no point sits on an edge and the best point's label fits above it.
    Never below zero."""
    if high < 1e-8:  # all zero, or as near as a plot can tell
        return 0.0, 1.0
    if high - low < high * MIN_SPAN:
        middle = (low + high) / 2
        low, high = middle - high * MIN_SPAN / 2, middle + high * MIN_SPAN / 2
    margin = max((high - low) * MARGIN, 1e-9)  # the floor keeps tick steps clear of subnormals
    return max(0.0, low - margin), high + margin
