"""The GPU timeline of a task's run: one lane per GPU the task used, one bar per experiment on each
GPU it held, from its start to its end (now, while it runs), coloured by outcome.

`gpu_timeline` turns experiments into geometry (lanes, bars and ticks in the SVG's viewBox units,
and one entry per experiment for the text version); `timeline_svg` draws it. A bar's lighter
start is its engine starting up, until it answered its health check (``serving_at``); the rest is
the benchmark. An experiment whose engine never answered is start-up from end to end.

As in tasks.plots, the SVG carries no ``style`` attribute, ``<style>`` element or script, so it
holds under a strict Content-Security-Policy. It scales to its box (viewBox, width 100 %): a phone
shows it smaller and never scrolls sideways.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from presets.templatetags.presets import json_value
from tasks.gpus import GpuSlot
from tasks.plots import _c, _join, _text_width  # the results plot's coordinate and text helpers
from tasks.states import ExperimentRole, ExperimentStatus
from tasks.templatetags.runs import duration

if TYPE_CHECKING:
    from tasks.experiments import Experiment

# Narrow, so that scaled to a phone the text stays legible; the stylesheet caps its width on a laptop.
WIDTH = 520
LEFT, RIGHT = 84, 500  # the time axis inside the viewBox; lane labels sit left of it
FONT = 12
LEGEND_HEIGHT = 28
LANE = 24  # a lane's height; its bar leaves a gap above and below
BAR = 18
AXIS_HEIGHT = 26  # below the lanes: the ticks and their labels
MIN_BAR = 2.0  # a bar of a moment is still seen
LABEL_CHARACTERS = 11  # a lane label longer than this is cut, the whole of it in its <title>
MAX_TICKS = 6
# Round steps for the time axis: seconds, minutes, hours, a day.
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)

# The outcomes a bar shows, by experiment status; pending and skipped experiments never ran.
OUTCOMES: dict[str, str] = {
    ExperimentStatus.SUCCEEDED: "succeeded",
    ExperimentStatus.FAILED: "failed",
    ExperimentStatus.CANCELLED: "cancelled",
    ExperimentStatus.STARTING: "running",
    ExperimentStatus.BENCHMARKING: "running",
}
LABELS = {"succeeded": "Succeeded", "failed": "Failed", "cancelled": "Cancelled", "running": "Running"}
FILLS = {"succeeded": "#1a7f37", "failed": "#b42318", "cancelled": "#6e7781", "running": "#0a58ca"}
STARTUP_VEIL = "#ffffff"  # over a bar's start-up part, so it reads as the same colour, lighter
LANE_FILL = "#f6f8fa"
TEXT_FILL = "#374151"
AXIS_STROKE = "#6b7280"
GRID_STROKE = "#e5e7eb"
TITLE_ID, DESC_ID = "gpu-timeline-title", "gpu-timeline-desc"


@dataclass(frozen=True)
class Lane:
    host: str
    gpu: str
    y: float  # the lane's top
    label: str  # "GPU 0", or "host · 0" when the task ran on several hosts


@dataclass(frozen=True)
class Bar:
    number: int
    lane: int  # index into Timeline.lanes
    outcome: str  # a key of LABELS
    x: float
    width: float
    startup_width: float  # the engine's start-up, from x
    title: str  # "#4 tp-size 2 · GPUs 2,3 · 41 s · succeeded"


@dataclass(frozen=True)
class Entry:
    """One experiment drawn, for the text version of the timeline."""

    number: int
    outcome: str
    description: str  # "tp-size 2", "baseline (engine defaults)", "repeat of #4: tp-size 2"
    host: str
    gpu_ids: tuple[str, ...]
    start_s: float  # after the first experiment started
    startup_s: float
    duration_s: float

    @property
    def outcome_label(self) -> str:
        return LABELS[self.outcome]


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    lanes: tuple[Lane, ...] = ()
    bars: tuple[Bar, ...] = ()
    ticks: tuple[Tick, ...] = ()
    entries: tuple[Entry, ...] = ()
    span_s: float = 0.0
    without_gpus: int = 0  # experiments that ran on a host offering no GPU ids (no AUTOTUNER_GPU_IDS)

    @property
    def height(self) -> float:
        return LEGEND_HEIGHT + len(self.lanes) * LANE + AXIS_HEIGHT

    @property
    def svg(self) -> SafeString:
        return timeline_svg(self)


def gpu_timeline(
    experiments: Sequence[Experiment], *, now: datetime, positions: Mapping[tuple[str, str], int] | None = None
) -> Timeline:
    """The timeline of these experiments (a task's). ``positions`` orders a host's GPUs as it offers
    them (tasks.gpus.GpuSlot.position); a GPU missing there sorts by its id, numbers as numbers."""
    numbers = {experiment.pk: experiment.number for experiment in experiments}
    ran = sorted((e for e in experiments if e.started_at is not None and e.status in OUTCOMES), key=lambda e: e.number)
    drawn = [experiment for experiment in ran if experiment.gpu_ids]
    if not drawn:
        return Timeline(without_gpus=len(ran))

    origin = min(experiment.started_at for experiment in drawn if experiment.started_at)
    spans = {experiment.pk: _span(experiment, origin, now) for experiment in drawn}
    span = max(end for _, _, end in spans.values())
    step, axis_end = _time_axis(span)

    def x(seconds: float) -> float:
        return LEFT + seconds / axis_end * (RIGHT - LEFT)

    order = positions or {}
    keys = sorted(
        {(experiment.host, str(gpu)) for experiment in drawn for gpu in experiment.gpu_ids},
        key=lambda key: (key[0], order.get(key, math.inf), _natural(key[1])),
    )
    several_hosts = len({host for host, _ in keys}) > 1
    lanes = tuple(
        Lane(host, gpu, LEGEND_HEIGHT + index * LANE, _cut(f"{host} · {gpu}" if several_hosts else f"GPU {gpu}"))
        for index, (host, gpu) in enumerate(keys)
    )
    lane_of = {(lane.host, lane.gpu): index for index, lane in enumerate(lanes)}

    bars, entries = [], []
    for experiment in drawn:
        start, serving, end = spans[experiment.pk]
        gpu_ids = tuple(str(gpu) for gpu in experiment.gpu_ids)
        entry = Entry(
            number=experiment.number,
            outcome=OUTCOMES[experiment.status],
            description=_description(experiment, numbers),
            host=experiment.host,
            gpu_ids=gpu_ids,
            start_s=start,
            startup_s=serving - start,
            duration_s=end - start,
        )
        entries.append(entry)
        width = max(x(end) - x(start), MIN_BAR)
        title = _bar_title(entry, several_hosts)
        for gpu in gpu_ids:
            bars.append(
                Bar(
                    number=experiment.number,
                    lane=lane_of[(experiment.host, gpu)],
                    outcome=entry.outcome,
                    x=x(start),
                    width=width,
                    startup_width=min(x(serving) - x(start), width),
                    title=title,
                )
            )
    ticks = tuple(Tick(x(seconds), _tick_label(seconds, step)) for seconds in range(0, axis_end + 1, step))
    return Timeline(
        lanes=lanes,
        bars=tuple(bars),
        ticks=ticks,
        entries=tuple(entries),
        span_s=span,
        without_gpus=len(ran) - len(drawn),
    )


def task_timeline(experiments: Sequence[Experiment], *, now: datetime) -> Timeline:
    """The timeline of a task's experiments, each host's GPUs in the order it offers them."""
    hosts = {experiment.host for experiment in experiments if experiment.gpu_ids}
    slots = GpuSlot.objects.filter(host__in=hosts).values_list("host", "gpu", "position")
    return gpu_timeline(experiments, now=now, positions={(host, gpu): position for host, gpu, position in slots})


def timeline_svg(timeline: Timeline) -> SafeString:
    """The timeline as inline SVG: a legend, a lane per GPU, a bar per experiment on each of its GPUs,
    each with its <title>, each linked to its row of the experiments table."""
    if not timeline.bars:
        return mark_safe("")
    lanes_bottom = LEGEND_HEIGHT + len(timeline.lanes) * LANE
    parts = [
        format_html(
            '<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {} {}" width="100%" role="img"'
            ' aria-labelledby="{} {}" font-family="system-ui, sans-serif" font-size="{}">',
            WIDTH,
            _c(timeline.height),
            TITLE_ID,
            DESC_ID,
            FONT,
        ),
        format_html('<title id="{}">GPU timeline</title>', TITLE_ID),
        format_html('<desc id="{}">{}</desc>', DESC_ID, _summary(timeline)),
        _legend(timeline),
        '<g class="timeline-lanes">',
    ]
    for index, lane in enumerate(timeline.lanes):
        if index % 2 == 0:
            parts.append(
                format_html('<rect x="0" y="{}" width="{}" height="{}" fill="{}"/>', _c(lane.y), WIDTH, LANE, LANE_FILL)
            )
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="end" fill="{}"><title>{}</title>{}</text>',
                LEFT - 6,
                _c(lane.y + LANE / 2 + FONT / 3),
                TEXT_FILL,
                f"{lane.host} · GPU {lane.gpu}" if lane.host else f"GPU {lane.gpu}",
                lane.label,
            )
        )
    parts.append("</g>")
    parts.append('<g class="timeline-grid">')
    parts.extend(_line(tick.x, LEGEND_HEIGHT, tick.x, lanes_bottom, GRID_STROKE) for tick in timeline.ticks)
    parts.append("</g>")
    parts.append('<g class="timeline-bars">')
    parts.extend(_bar(bar, timeline.lanes[bar.lane]) for bar in timeline.bars)
    parts.append("</g>")
    parts.append(format_html('<g class="timeline-axis" fill="{}">', TEXT_FILL))
    parts.append(_line(LEFT, lanes_bottom, RIGHT, lanes_bottom, AXIS_STROKE))
    for tick in timeline.ticks:
        parts.append(_line(tick.x, lanes_bottom, tick.x, lanes_bottom + 4, AXIS_STROKE))
        parts.append(
            format_html('<text x="{}" y="{}" text-anchor="middle">{}</text>', _c(tick.x), lanes_bottom + 17, tick.label)
        )
    parts.append("</g>")
    parts.append("</svg>")
    return _join(parts)


# Implementation ------------------------------------------------------------------------


def _span(experiment: Experiment, origin: datetime, now: datetime) -> tuple[float, float, float]:
    """Seconds after ``origin``: the experiment's start, its engine serving, its end (now while it runs)."""
    assert experiment.started_at is not None
    if experiment.finished_at is not None:
        ended = experiment.finished_at
    else:  # running; or stopped without a recorded end, then it is drawn as a moment
        ended = now if experiment.is_running else experiment.started_at
    start = (experiment.started_at - origin).total_seconds()
    end = max((ended - origin).total_seconds(), start)
    serving = end if experiment.serving_at is None else (experiment.serving_at - origin).total_seconds()
    return start, min(max(serving, start), end), end


def _time_axis(span: float) -> tuple[int, int]:
    """A round step and the axis's end: the first step giving at most MAX_TICKS intervals."""
    span = max(span, 1.0)
    for step in STEPS:
        if math.ceil(span / step) <= MAX_TICKS:
            return step, math.ceil(span / step) * step
    step = math.ceil(span / MAX_TICKS / STEPS[-1]) * STEPS[-1]
    return step, math.ceil(span / step) * step


def _tick_label(seconds: int, step: int) -> str:
    if seconds == 0:
        return "0"
    if step % 3600 == 0:
        return f"{seconds // 3600} h"
    if step % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _natural(gpu: str) -> tuple[int, int, str]:
    return (0, int(gpu), "") if gpu.isdigit() else (1, 0, gpu)


def _cut(label: str) -> str:
    return label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…"


def _description(experiment: Experiment, numbers: Mapping[int, int]) -> str:
    flags = ", ".join(f"{flag} {json_value(value)}" for flag, value in experiment.parameters.items())
    if experiment.role == ExperimentRole.BASELINE:
        return "baseline (engine defaults)"
    repeated = numbers.get(experiment.repeat_of_id) if experiment.repeat_of_id else None
    if experiment.role == ExperimentRole.REPEAT and repeated is not None:
        return f"repeat of #{repeated}" + (f": {flags}" if flags else "")
    return flags or "engine defaults"


def _gpus(entry: Entry) -> str:
    return ("GPUs " if len(entry.gpu_ids) > 1 else "GPU ") + ",".join(entry.gpu_ids)


def _bar_title(entry: Entry, several_hosts: bool) -> str:
    where = _gpus(entry) + (f" on {entry.host}" if several_hosts else "")
    time = duration(entry.duration_s)
    if entry.outcome == "running":
        time += " so far"
    return f"#{entry.number} {entry.description} · {where} · {time} · {entry.outcome}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _summary(timeline: Timeline) -> str:
    outcomes = Counter(entry.outcome for entry in timeline.entries)
    counts = ", ".join(f"{outcomes[outcome]} {outcome}" for outcome in LABELS if outcomes[outcome])
    return (
        f"{_plural(len(timeline.entries), 'experiment')} on {_plural(len(timeline.lanes), 'GPU')}"
        f" over {duration(timeline.span_s)}: {counts}."
    )


def _legend(timeline: Timeline) -> SafeString:
    shown = {bar.outcome for bar in timeline.bars}
    entries = [(FILLS[outcome], 1.0, LABELS[outcome]) for outcome in LABELS if outcome in shown]
    entries.append((FILLS["succeeded"], 0.5, "Start-up"))
    parts = ['<g class="timeline-legend">']
    x: float = LEFT
    for fill, strength, text in entries:
        parts.append(format_html('<rect x="{}" y="7" width="12" height="12" rx="2" fill="{}"/>', _c(x), fill))
        if strength < 1:
            parts.append(_veil(x, 7, 12, 12))
        parts.append(format_html('<text x="{}" y="18" fill="{}">{}</text>', _c(x + 16), TEXT_FILL, text))
        x += 16 + _text_width(text, FONT) + 14
    parts.append("</g>")
    return _join(parts)


def _bar(bar: Bar, lane: Lane) -> SafeString:
    top = lane.y + (LANE - BAR) / 2
    fill = FILLS[bar.outcome]
    parts: list[str] = [
        format_html(
            '<a href="#experiment-{}"><g class="timeline-bar timeline-{}" data-number="{}"><title>{}</title>',
            bar.number,
            bar.outcome,
            bar.number,
            bar.title,
        ),
        format_html(
            '<rect x="{}" y="{}" width="{}" height="{}" rx="2" fill="{}"/>',
            _c(bar.x),
            _c(top),
            _c(bar.width),
            BAR,
            fill,
        ),
    ]
    if bar.startup_width > 0:
        parts.append(_veil(bar.x, top, bar.startup_width, BAR))
    label = f"#{bar.number}"
    if _text_width(label, FONT) + 6 <= bar.width:
        # Dark on a white halo, as the results plot's labels: it reads on every colour and on the start-up part.
        parts.append(
            format_html(
                '<text x="{}" y="{}" fill="{}" stroke="#ffffff" stroke-width="3" stroke-linejoin="round"'
                ' paint-order="stroke">{}</text>',
                _c(bar.x + 4),
                _c(top + BAR / 2 + FONT / 3),
                TEXT_FILL,
                label,
            )
        )
    parts.append("</g></a>")
    return _join(parts)


def _veil(x: float, y: float, width: float, height: float) -> SafeString:
    return format_html(
        '<rect class="timeline-startup" x="{}" y="{}" width="{}" height="{}" fill="{}" fill-opacity="0.45"/>',
        _c(x),
        _c(y),
        _c(width),
        _c(height),
        STARTUP_VEIL,
    )


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str) -> SafeString:
    return format_html('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>', _c(x1), _c(y1), _c(x2), _c(y2), stroke)
