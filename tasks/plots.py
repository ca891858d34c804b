"""Server-rendered SVG plots for a task's results.

`scatter_svg` draws every benchmarked experiment as one point (x: end-to-end latency p50 in
seconds, lower is better; y: output throughput in tokens/s, higher is better), marks the
Pareto front and the chosen best experiment, and labels points in plain text so the chart
reads without hovering.

The SVG carries no `style` attribute, `<style>` element or script, so it holds under a strict
Content-Security-Policy: colours are presentation attributes (`fill`, `stroke`) that a
stylesheet may override through the `plot-*` classes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from tasks.axes import nice_axis

WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 76, 700, 44, 352  # the plotting area inside the viewBox
MAX_POINT_LABELS = 30  # above this many points the "#n" labels would hide the points

FRONT_FILL = "#2563eb"
OTHER_FILL = "#94a3b8"
VIOLATES_STROKE = "#9ca3af"
BEST_STROKE = "#b45309"
TEXT_FILL = "#374151"
AXIS_STROKE = "#6b7280"
GRID_STROKE = "#e5e7eb"
HALO = "#ffffff"

# Where a "#n" label may go, in order of preference: (dx, dy, text-anchor) from its point.
LABEL_SPOTS = [
    (6, -6, "start"),
    (6, 13, "start"),
    (-6, -6, "end"),
    (-6, 13, "end"),
    (8, 4, "start"),
    (-8, 4, "end"),
    (0, -9, "middle"),
    (0, 17, "middle"),
]

# Figures at or above this are not measurements (and would overflow the axis arithmetic).
MAX_FIGURE = 1e15

EMPTY_MESSAGE = "No experiment has results yet."


@dataclass(frozen=True)
class Point:
    number: int  # experiment number, shown as "#7"
    latency_s: float
    throughput: float  # output tokens/s
    meets_slo: bool = True  # False: drawn hollow and grey, never on the front, never "best"
    url: str = ""  # optional link target, e.g. "#experiment-7"


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The SLO-meeting points no other SLO-meeting point beats on both axes (latency <=,
    throughput >=, one strictly), sorted by latency ascending. Duplicates (same latency and
    throughput) both stay. Points with NaN, infinite or negative figures are ignored."""
    candidates = sorted(
        (p for p in points if p.meets_slo and _plottable(p)),
        key=lambda p: (p.latency_s, -p.throughput, p.number),
    )
    front: list[Point] = []
    for point in candidates:
        # Every earlier candidate is at least as fast, so only a higher throughput, or an
        # exact duplicate of the last front point, escapes domination.
        last = front[-1] if front else None
        if last is None or point.throughput > last.throughput or _same_figures(point, last):
            front.append(point)
    return front


def scatter_svg(
    points: Sequence[Point], *, best: int | None = None, title: str = "Throughput vs latency"
) -> SafeString:
    """Throughput against latency p50 for every experiment with usable figures, as inline SVG."""
    plotted = [p for p in points if _plottable(p)]
    skipped = len(points) - len(plotted)
    ids = _ids(title, points, best)
    if not plotted:
        return _empty_svg(title, skipped, ids)

    front = pareto_front(plotted)
    on_front = set(front)
    best_point = next((p for p in plotted if p.number == best and p.meets_slo), None)

    x_axis = nice_axis(min(p.latency_s for p in plotted), max(p.latency_s for p in plotted))
    # Throughput from zero: two runs 1% apart look 1% apart, not like the top and bottom of the chart.
    y_axis = nice_axis(0.0, max(p.throughput for p in plotted))
    scale = _Scale(x_axis.low, x_axis.high, y_axis.low, y_axis.high)

    parts: list[str] = [
        format_html(
            '<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {} {}" width="100%" role="img"'
            ' aria-labelledby="{} {}" font-family="system-ui, sans-serif" font-size="11">',
            WIDTH,
            HEIGHT,
            ids.title,
            ids.desc,
        ),
        format_html('<title id="{}">{}</title>', ids.title, title),
        format_html('<desc id="{}">{}</desc>', ids.desc, _description(plotted, front, best_point, skipped)),
        _legend(),
        _axes(x_axis.ticks, y_axis.ticks, scale),
    ]
    if len(front) > 1:
        coordinates = " ".join(f"{_c(scale.x(p.latency_s))},{_c(scale.y(p.throughput))}" for p in front)
        parts.append(
            format_html(
                '<polyline class="plot-front-line" points="{}" fill="none" stroke="{}" stroke-width="1.5"/>',
                coordinates,
                FRONT_FILL,
            )
        )

    # Violating points first and the front last, so the points that matter are drawn on top.
    def layer(point: Point) -> tuple[int, int]:
        rank = 3 if point is best_point else 2 if point in on_front else 1 if point.meets_slo else 0
        return rank, point.number

    ordered = sorted(plotted, key=layer)
    markers = [_marker_box(p, scale, best=p is best_point) for p in plotted]
    best_label, taken = None, list(markers)
    if best_point is not None:
        best_label, box = _best_label(best_point, scale, markers)
        taken.append(box)
    # "#n" labels go under the markers: where one cannot avoid another point, the point shows.
    if len(plotted) <= MAX_POINT_LABELS:
        parts.append('<g class="plot-labels">')
        for point in reversed(ordered):  # the front claims the free spots first
            if point is not best_point:
                label, box = _point_label(point, scale, taken)
                parts.append(label)
                taken.append(box)
        parts.append("</g>")

    parts.append('<g class="plot-points">')
    parts.extend(_marker(p, scale, front=p in on_front, best=p is best_point) for p in ordered)
    parts.append("</g>")
    if best_label is not None:  # on top: among many points it has to cover some
        parts.append(best_label)
    parts.append("</svg>")
    return _join(parts)


# Implementation ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ids:
    title: str
    desc: str


@dataclass(frozen=True)
class _Box:
    left: float
    top: float
    right: float
    bottom: float

    def overlaps(self, other: _Box) -> bool:
        apart = self.right <= other.left or other.right <= self.left
        return not apart and self.top < other.bottom and other.top < self.bottom

    def inside_view(self) -> bool:
        # Not above the plotting area's top (the legend lives there) nor below its bottom.
        return self.left >= 0 and self.right <= WIDTH and self.top >= TOP - 8 and self.bottom <= BOTTOM


@dataclass(frozen=True)
class _Scale:
    x_low: float
    x_high: float
    y_low: float
    y_high: float

    def x(self, value: float) -> float:
        return LEFT + (value - self.x_low) / (self.x_high - self.x_low) * (RIGHT - LEFT)

    def y(self, value: float) -> float:
        return BOTTOM - (value - self.y_low) / (self.y_high - self.y_low) * (BOTTOM - TOP)


def _same_figures(a: Point, b: Point) -> bool:
    return a.latency_s == b.latency_s and a.throughput == b.throughput


def _plottable(point: Point) -> bool:
    return all(0 <= v < MAX_FIGURE for v in (point.latency_s, point.throughput))  # NaN fails too


def _ids(title: str, points: Sequence[Point], best: int | None) -> _Ids:
    # Derived from the input, so output stays deterministic and two plots on a page differ.
    digest = hashlib.blake2s(repr((title, tuple(points), best)).encode(), digest_size=4).hexdigest()
    return _Ids(title=f"plot-{digest}-title", desc=f"plot-{digest}-desc")


def _c(value: float) -> str:
    """A coordinate rounded to one decimal, without a trailing ".0"."""
    text = f"{value:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


def _figure(value: float) -> str:
    """A measured figure with about three significant digits: 1,234 · 56.7 · 0.42."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _summary(point: Point) -> str:
    return f"{_figure(point.throughput)} tok/s at {_figure(point.latency_s)} s"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _description(plotted: list[Point], front: list[Point], best: Point | None, skipped: int) -> str:
    text = f"{_plural(len(plotted), 'experiment')} plotted, {len(front)} on the Pareto front"
    violating = sum(not p.meets_slo for p in plotted)
    if violating:
        text += f", {violating} violating the SLO"
    if skipped:
        text += f", {skipped} without usable figures left out"
    if best is None:
        return text + "; no best experiment is marked."
    return text + f"; the best is #{best.number} with {_summary(best)}."


def _empty_svg(title: str, skipped: int, ids: _Ids) -> SafeString:
    desc = EMPTY_MESSAGE
    if skipped:
        desc += f" {_plural(skipped, 'experiment')} without usable figures left out."
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="plot plot-empty" viewBox="0 0 {} 60" width="100%" role="img"'
        ' aria-labelledby="{} {}" font-family="system-ui, sans-serif" font-size="13">\n'
        '<title id="{}">{}</title>\n<desc id="{}">{}</desc>\n'
        '<text class="plot-label" x="{}" y="34" text-anchor="middle" fill="{}">{}</text>\n</svg>',
        WIDTH,
        ids.title,
        ids.desc,
        ids.title,
        title,
        ids.desc,
        desc,
        WIDTH // 2,
        TEXT_FILL,
        EMPTY_MESSAGE,
    )


def _legend() -> SafeString:
    entries = [
        ("plot-point plot-front", 4.5, FRONT_FILL, "none", "Pareto front"),
        ("plot-point", 4.5, OTHER_FILL, "none", "Other"),
        ("plot-point plot-violates", 4.5, "none", VIOLATES_STROKE, "Violates SLO"),
        ("plot-point plot-front plot-best", 7, FRONT_FILL, BEST_STROKE, "Best"),
    ]
    parts = ['<g class="plot-legend">']
    x: float = LEFT
    for css_class, radius, fill, stroke, text in entries:
        parts.append(
            format_html(
                '<circle class="{}" cx="{}" cy="18" r="{}" fill="{}" stroke="{}" stroke-width="2"/>',
                css_class,
                x + 7,
                radius,
                fill,
                stroke,
            )
        )
        parts.append(format_html('<text class="plot-label" x="{}" y="22" fill="{}">{}</text>', x + 18, TEXT_FILL, text))
        x += 18 + _text_width(text, 11) + 20
    parts.append("</g>")
    return _join(parts)


def _axes(x_ticks: list[float], y_ticks: list[float], scale: _Scale) -> SafeString:
    parts = ['<g class="plot-grid">']
    for value in x_ticks:
        x = _c(scale.x(value))
        parts.append(_line(x, TOP, x, BOTTOM, GRID_STROKE))
    for value in y_ticks:
        y = _c(scale.y(value))
        parts.append(_line(LEFT, y, RIGHT, y, GRID_STROKE))
    parts.append("</g>")

    parts.append(format_html('<g class="plot-axis" fill="{}">', TEXT_FILL))
    parts.append(
        format_html(
            '<polyline points="{},{} {},{} {},{}" fill="none" stroke="{}"/>',
            LEFT,
            TOP,
            LEFT,
            BOTTOM,
            RIGHT,
            BOTTOM,
            AXIS_STROKE,
        )
    )
    for value, label in zip(x_ticks, _tick_labels(x_ticks), strict=True):
        x = _c(scale.x(value))
        parts.append(_line(x, BOTTOM, x, BOTTOM + 5, AXIS_STROKE))
        parts.append(format_html('<text x="{}" y="{}" text-anchor="middle">{}</text>', x, BOTTOM + 18, label))
    for value, label in zip(y_ticks, _tick_labels(y_ticks), strict=True):
        tick_y = scale.y(value)
        parts.append(_line(LEFT - 5, _c(tick_y), LEFT, _c(tick_y), AXIS_STROKE))
        parts.append(format_html('<text x="{}" y="{}" text-anchor="end">{}</text>', LEFT - 8, _c(tick_y + 4), label))
    middle_x, middle_y = _c((LEFT + RIGHT) / 2), _c((TOP + BOTTOM) / 2)
    parts.append(
        format_html(
            '<text x="{}" y="{}" text-anchor="middle" font-size="12">Latency p50 (s)</text>', middle_x, HEIGHT - 16
        )
    )
    parts.append(
        format_html(
            '<text x="16" y="{}" text-anchor="middle" font-size="12" transform="rotate(-90 16 {})">'
            "Throughput (tokens/s)</text>",
            middle_y,
            middle_y,
        )
    )
    parts.append("</g>")
    return _join(parts)


def _line(x1: float | str, y1: float | str, x2: float | str, y2: float | str, stroke: str) -> SafeString:
    return format_html('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>', x1, y1, x2, y2, stroke)


def _tick_labels(ticks: list[float]) -> list[str]:
    step = ticks[1] - ticks[0]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [f"{value:,.{decimals}f}" for value in ticks]


def _marker(point: Point, scale: _Scale, *, front: bool, best: bool) -> SafeString:
    if not point.meets_slo:
        css_class, fill, stroke, notes = "plot-point plot-violates", "none", VIOLATES_STROKE, ["violates the SLO"]
    elif front:
        css_class, fill, stroke, notes = "plot-point plot-front", FRONT_FILL, HALO, ["on the Pareto front"]
    else:
        css_class, fill, stroke, notes = "plot-point", OTHER_FILL, HALO, []
    radius = 4.5
    if best:
        css_class, stroke, radius, notes = css_class + " plot-best", BEST_STROKE, 7, ["best", *notes]
    hover = f"#{point.number}: {_summary(point)} p50" + (f" ({', '.join(notes)})" if notes else "")
    circle = format_html(
        '<circle class="{}" cx="{}" cy="{}" r="{}" fill="{}" stroke="{}" stroke-width="{}" data-number="{}">'
        "<title>{}</title></circle>",
        css_class,
        _c(scale.x(point.latency_s)),
        _c(scale.y(point.throughput)),
        radius,
        fill,
        stroke,
        2 if best or not point.meets_slo else 1,
        point.number,
        hover,
    )
    return _linked(point.url, circle)


def _best_label(point: Point, scale: _Scale, markers: list[_Box]) -> tuple[SafeString, _Box]:
    text = f"#{point.number} best: {_summary(point)}"
    font_size = 12
    width = _text_width(text, font_size)
    x, y = scale.x(point.latency_s), scale.y(point.throughput)
    # Above and right of the point by preference. Spots out of view drop out, which puts the
    # label left of a point near the right edge and below one near the top; of the rest, the
    # one covering the fewest points wins.
    sides = [("start", x + 11, x + 11), ("end", x - 11, x - 11 - width)]
    baselines = [y - 11, y + 21]
    spots = [
        (anchor, text_x, baseline, _Box(left, baseline - font_size, left + width, baseline + 3))
        for anchor, text_x, left in sides
        for baseline in baselines
    ]
    in_view = [spot for spot in spots if spot[3].inside_view()] or spots[:1]
    covered = [sum(spot[3].overlaps(m) for m in markers) for spot in in_view]
    anchor, text_x, baseline, box = in_view[covered.index(min(covered))]
    label = format_html(
        '<text class="plot-label plot-best" x="{}" y="{}" text-anchor="{}" font-size="{}" font-weight="bold" '
        'fill="{}" stroke="{}" stroke-width="3" stroke-linejoin="round" paint-order="stroke">{}</text>',
        _c(text_x),
        _c(baseline),
        anchor,
        font_size,
        BEST_STROKE,
        HALO,
        text,
    )
    return _linked(point.url, label), box


def _point_label(point: Point, scale: _Scale, taken: list[_Box]) -> tuple[SafeString, _Box]:
    text = f"#{point.number}"
    font_size = 10
    width = _text_width(text, font_size)
    x, y = scale.x(point.latency_s), scale.y(point.throughput)
    # The first spot around the point that is in view and clear of other labels and markers.
    spots = []
    for dx, dy, anchor in LABEL_SPOTS:
        left = x + dx - {"start": 0, "middle": width / 2, "end": width}[anchor]
        box = _Box(left, y + dy - font_size + 2, left + width, y + dy + 2)
        spots.append((dx, dy, anchor, box))
    in_view = [spot for spot in spots if spot[3].inside_view()] or spots
    dx, dy, anchor, box = next((s for s in in_view if not any(s[3].overlaps(t) for t in taken)), in_view[0])
    label = format_html(
        '<text class="plot-label" x="{}" y="{}" text-anchor="{}" font-size="{}" fill="{}" '
        'stroke="{}" stroke-width="3" stroke-linejoin="round" paint-order="stroke">{}</text>',
        _c(x + dx),
        _c(y + dy),
        anchor,
        font_size,
        TEXT_FILL,
        HALO,
        text,
    )
    return _linked(point.url, label), box


def _marker_box(point: Point, scale: _Scale, *, best: bool) -> _Box:
    x, y = scale.x(point.latency_s), scale.y(point.throughput)
    reach = (7 if best else 4.5) + 1
    return _Box(x - reach, y - reach, x + reach, y + reach)


def _linked(url: str, content: SafeString) -> SafeString:
    # Only same-site references and http(s): a "javascript:" link would run code on click.
    if not url or urlsplit(url).scheme not in ("", "http", "https"):
        return content
    return format_html('<a href="{}">{}</a>', url, content)


def _text_width(text: str, font_size: float) -> float:
    """An estimate: SVG text has no measured width on the server."""
    return round(len(text) * font_size * 0.58, 1)


def _join(parts: Iterable[str]) -> SafeString:
    """Join pieces that are each already escaped (format_html) or literal markup."""
    return mark_safe("\n".join(parts))
