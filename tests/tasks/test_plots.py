"""The results plot: the Pareto front, the throughput-vs-latency SVG and its axes. No database."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.axes import nice_axis
from tasks.plots import Point, pareto_front, scatter_svg

SVG = "{http://www.w3.org/2000/svg}"
VIEW_WIDTH, VIEW_HEIGHT = 720, 420
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 76, 700, 44, 352  # the plotting area inside the view


def numbers(points: list[Point]) -> list[int]:
    return [p.number for p in points]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def markers(root: ET.Element) -> dict[int, ET.Element]:
    """The point markers by experiment number (the legend's sample circles are not points)."""
    group = root.find(f"{SVG}g[@class='plot-points']")
    assert group is not None
    circles = group.iter(f"{SVG}circle")
    return {int(circle.get("data-number")): circle for circle in circles}


def classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def texts(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(f"{SVG}text"))


def text_with(root: ET.Element, content: str) -> ET.Element:
    found = [t for t in texts(root) if t.text == content]
    assert len(found) == 1, [t.text for t in texts(root)]
    return found[0]


def axis_labels(root: ET.Element, anchor: str) -> list[str]:
    """Tick labels: the x axis centres them under a tick, the y axis ends them left of one."""
    axis = root.find(f"{SVG}g[@class='plot-axis']")
    assert axis is not None
    return [t.text for t in axis.iter(f"{SVG}text") if t.get("text-anchor") == anchor and not t.get("font-size")]


SAMPLE = [
    Point(1, 0.20, 500.0, url="#experiment-1"),
    Point(2, 0.40, 900.0, url="#experiment-2"),
    Point(3, 0.50, 700.0, url="#experiment-3"),  # dominated by #2
    Point(4, 0.30, 1_600.0, meets_slo=False, url="#experiment-4"),  # would dominate #2, but violates
    Point(7, 0.90, 1_234.0, url="#experiment-7"),
]


# The Pareto front ------------------------------------------------------------------------


def test_a_point_slower_and_with_less_throughput_than_another_is_left_off_the_front():
    front = pareto_front([Point(1, 0.5, 1_000), Point(2, 0.6, 900), Point(3, 0.8, 1_500)])

    assert numbers(front) == [1, 3]


def test_same_latency_with_less_throughput_or_same_throughput_with_more_latency_is_dominated():
    front = pareto_front([Point(1, 0.5, 1_000), Point(2, 0.5, 900), Point(3, 0.7, 1_000)])

    assert numbers(front) == [1]


def test_a_point_violating_the_slo_is_never_on_the_front_and_dominates_nothing():
    violating = Point(9, 0.1, 5_000, meets_slo=False)

    front = pareto_front([Point(1, 0.5, 1_000), violating, Point(2, 0.9, 1_200)])

    assert numbers(front) == [1, 2]


def test_two_points_with_the_same_figures_both_stay_on_the_front():
    front = pareto_front([Point(5, 0.5, 1_000), Point(6, 0.5, 1_000), Point(7, 0.6, 1_000)])

    assert numbers(front) == [5, 6]


def test_the_front_is_sorted_by_latency_whatever_the_input_order():
    front = pareto_front([Point(3, 0.9, 3_000), Point(1, 0.1, 1_000), Point(2, 0.5, 2_000)])

    assert numbers(front) == [1, 2, 3]


def test_points_without_usable_figures_are_not_on_the_front():
    front = pareto_front([Point(1, math.nan, 9_000), Point(2, 0.5, math.inf), Point(3, 0.9, 100)])

    assert numbers(front) == [3]


def test_no_points_means_no_front():
    assert pareto_front([]) == []


# Small grids of values so that ties on one axis or both are common.
tied_points = st.lists(
    st.builds(
        Point,
        number=st.integers(1, 50),
        latency_s=st.integers(0, 6).map(lambda n: n / 10),
        throughput=st.integers(0, 6).map(lambda n: n * 100.0),
        meets_slo=st.booleans(),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(tied_points)
def test_the_front_is_exactly_the_points_nothing_beats(points):
    meeting = [p for p in points if p.meets_slo]

    def beats(q: Point, p: Point) -> bool:
        no_worse = q.latency_s <= p.latency_s and q.throughput >= p.throughput
        return no_worse and (q.latency_s < p.latency_s or q.throughput > p.throughput)

    expected = [p for p in meeting if not any(beats(q, p) for q in meeting)]
    front = pareto_front(points)

    assert sorted(front, key=repr) == sorted(expected, key=repr)
    assert [p.latency_s for p in front] == sorted(p.latency_s for p in front)


# Axes ------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 1e9, allow_nan=False, allow_subnormal=True),
    st.floats(0, 1e9, allow_nan=False),
)
def test_an_axis_covers_the_data_with_four_to_six_round_ticks(a, b):
    low, high = min(a, b), max(a, b)

    axis = nice_axis(low, high)

    assert axis.low <= low
    assert high <= axis.high
    assert axis.low >= 0
    assert 4 <= len(axis.ticks) <= 6
    assert axis.ticks == sorted(set(axis.ticks))
    step = axis.ticks[1] - axis.ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6
    slack = step * 1e-6
    assert axis.low - slack <= axis.ticks[0]
    assert axis.ticks[-1] <= axis.high + slack


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0.42, 0.42, [0.38, 0.4, 0.42, 0.44, 0.46]),
        (0, 0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (100, 3_000, [0, 1_000, 2_000, 3_000]),
        (5_647, 13_699, [6_000, 8_000, 10_000, 12_000, 14_000]),
    ],
    ids=["one-value", "all-zero", "from-near-zero", "thousands"],
)
def test_axis_ticks_for_typical_ranges(low, high, ticks):
    assert nice_axis(low, high).ticks == pytest.approx(ticks)


# The plot --------------------------------------------------------------------------------


def test_the_plot_is_an_accessible_svg_with_one_marker_per_point():
    root = parse(scatter_svg(SAMPLE, best=7))

    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox") == f"0 0 {VIEW_WIDTH} {VIEW_HEIGHT}"
    assert root.get("width") == "100%"
    assert root.get("role") == "img"
    assert sorted(markers(root)) == [1, 2, 3, 4, 7]
    title_id, desc_id = root.get("aria-labelledby").split()
    assert root.find(f"{SVG}title").get("id") == title_id
    assert root.find(f"{SVG}desc").get("id") == desc_id


def test_the_description_counts_the_experiments_and_names_the_best():
    desc = parse(scatter_svg(SAMPLE, best=7)).find(f"{SVG}desc").text

    assert desc == (
        "5 experiments plotted, 3 on the Pareto front, 1 violating the SLO; the best is #7 with 1,234 tok/s at 0.9 s."
    )


def test_front_points_carry_the_front_class_and_the_others_do_not():
    found = markers(parse(scatter_svg(SAMPLE)))

    assert {n for n, circle in found.items() if "plot-front" in classes(circle)} == {1, 2, 7}
    assert classes(found[3]) == {"plot-point"}
    assert found[1].get("fill") == found[2].get("fill") != found[3].get("fill")


def test_the_front_is_joined_by_a_line_in_latency_order():
    root = parse(scatter_svg(SAMPLE))
    found = markers(root)

    line = root.find(f"{SVG}polyline[@class='plot-front-line']")

    vertices = [tuple(pair.split(",")) for pair in line.get("points").split()]
    assert vertices == [(found[n].get("cx"), found[n].get("cy")) for n in (1, 2, 7)]


def test_a_point_violating_the_slo_is_hollow_and_marked_violates_even_where_it_would_lead():
    violating = markers(parse(scatter_svg(SAMPLE)))[4]

    assert classes(violating) == {"plot-point", "plot-violates"}
    assert violating.get("fill") == "none"


def test_the_best_point_gets_a_larger_marker_and_a_visible_label():
    root = parse(scatter_svg(SAMPLE, best=2))
    found = markers(root)

    assert "plot-best" in classes(found[2])
    assert float(found[2].get("r")) > float(found[1].get("r"))
    label = text_with(root, "#2 best: 900 tok/s at 0.4 s")
    assert "plot-best" in classes(label)


def test_the_best_label_of_a_point_at_the_right_goes_left_of_it_inside_the_view():
    points = [Point(1, 0.2, 500), Point(2, 0.5, 900), Point(7, 0.9, 1_234)]
    root = parse(scatter_svg(points, best=7))

    best = markers(root)[7]
    label = text_with(root, "#7 best: 1,234 tok/s at 0.9 s")

    assert float(best.get("cx")) > VIEW_WIDTH * 0.85
    assert label.get("text-anchor") == "end"
    assert 0 < float(label.get("x")) < float(best.get("cx"))
    assert 0 < float(label.get("y")) < VIEW_HEIGHT


def test_a_point_violating_the_slo_is_never_marked_best():
    root = parse(scatter_svg(SAMPLE, best=4))

    assert not [e for e in root.iter() if "plot-best" in classes(e) and e.get("data-number")]
    assert not [t for t in texts(root) if "best:" in (t.text or "")]
    assert root.find(f"{SVG}desc").text.endswith("no best experiment is marked.")


def test_every_point_has_a_visible_number_label_and_a_hover_title():
    root = parse(scatter_svg(SAMPLE))

    labels = root.find(f"{SVG}g[@class='plot-labels']")
    assert sorted(t.text for t in labels.iter(f"{SVG}text")) == ["#1", "#2", "#3", "#4", "#7"]
    for number, circle in markers(root).items():
        assert circle.find(f"{SVG}title").text.startswith(f"#{number}: ")


def test_number_labels_give_way_to_the_points_beyond_thirty():
    many = [Point(n, n / 100, 1_000 + n) for n in range(1, 32)]

    root = parse(scatter_svg(many, best=31))

    assert root.find(f"{SVG}g[@class='plot-labels']") is None
    assert len(markers(root)) == 31
    text_with(root, "#31 best: 1,031 tok/s at 0.31 s")


def test_the_legend_names_each_kind_of_point():
    root = parse(scatter_svg(SAMPLE))

    legend = root.find(f"{SVG}g[@class='plot-legend']")

    assert [t.text for t in legend.iter(f"{SVG}text")] == ["Pareto front", "Other", "Violates SLO", "Best"]


def test_markers_link_to_their_experiment():
    root = parse(scatter_svg(SAMPLE))

    links = [a for a in root.iter(f"{SVG}a") if a.find(f"{SVG}circle") is not None]

    assert sorted(a.get("href") for a in links) == [f"#experiment-{n}" for n in (1, 2, 3, 4, 7)]


def test_a_javascript_url_is_not_made_a_link():
    svg = scatter_svg([Point(1, 0.5, 100, url="javascript:alert(1)")])

    assert "javascript:" not in svg
    assert parse(svg).find(f".//{SVG}a") is None


@pytest.mark.parametrize("points", [[], [Point(1, math.nan, math.nan)]], ids=["none", "none-usable"])
def test_without_results_the_plot_says_so(points):
    root = parse(scatter_svg(points))

    assert [t.text for t in texts(root)] == ["No experiment has results yet."]
    assert root.get("role") == "img"


@pytest.mark.parametrize(
    "bad",
    [Point(8, math.nan, 100), Point(8, 0.5, math.inf), Point(8, -0.1, 100), Point(8, 0.5, -3)],
    ids=["nan", "inf", "negative-latency", "negative-throughput"],
)
def test_a_point_with_unusable_figures_is_skipped(bad):
    root = parse(scatter_svg([*SAMPLE, bad]))

    assert 8 not in markers(root)
    assert len(markers(root)) == len(SAMPLE)
    assert "1 without usable figures left out" in root.find(f"{SVG}desc").text


@pytest.mark.parametrize(
    "points",
    [[Point(1, 0.42, 1_234)], [Point(1, 0.5, 800), Point(2, 0.5, 800)], [Point(1, 0, 0)]],
    ids=["single-point", "all-equal", "zeros"],
)
def test_a_degenerate_range_still_gets_ticks_on_both_axes(points):
    root = parse(scatter_svg(points, best=1))

    assert 4 <= len(axis_labels(root, "middle")) <= 6
    assert 4 <= len(axis_labels(root, "end")) <= 6
    text_with(root, "Latency p50 (s)")
    text_with(root, "Throughput (tokens/s)")
    assert len(markers(root)) == len(points)


def test_a_single_point_is_plotted_between_its_ticks():
    root = parse(scatter_svg([Point(7, 0.42, 1_234)]))

    assert axis_labels(root, "middle") == ["0.38", "0.40", "0.42", "0.44", "0.46"]
    assert axis_labels(root, "end") == ["0", "500", "1,000", "1,500"]


def plotted_at(root: ET.Element, number: int) -> tuple[float, float]:
    marker = markers(root)[number]
    return float(marker.get("cx", "")), float(marker.get("cy", ""))


def test_throughput_starts_at_zero_so_two_close_figures_look_close():
    root = parse(scatter_svg([Point(1, 0.50, 1_125), Point(2, 0.51, 1_131)], best=2))

    assert axis_labels(root, "end")[0] == "0"
    (x1, y1), (x2, y2) = plotted_at(root, 1), plotted_at(root, 2)
    assert abs(y1 - y2) < 5  # half a percent apart: a few pixels, not the height of the chart
    assert abs(x1 - x2) < (PLOT_RIGHT - PLOT_LEFT) / 4  # 2% apart in latency: not edge to edge


def test_no_point_sits_on_an_edge_and_the_best_has_room_above_for_its_label():
    root = parse(scatter_svg(SAMPLE, best=7))

    xs, ys = zip(*(plotted_at(root, number) for number in markers(root)), strict=True)
    assert min(xs) - PLOT_LEFT >= 0.05 * (PLOT_RIGHT - PLOT_LEFT)
    assert PLOT_RIGHT - max(xs) >= 0.05 * (PLOT_RIGHT - PLOT_LEFT)
    assert min(ys) - PLOT_TOP >= 0.05 * (PLOT_BOTTOM - PLOT_TOP)
    label_y = float(text_with(root, "#7 best: 1,234 tok/s at 0.9 s").get("y", ""))
    assert label_y < plotted_at(root, 7)[1]  # above the point
    assert label_y - 12 >= PLOT_TOP - 8  # its top inside the view, clear of the legend


def test_text_is_escaped():
    title = '<script>alert("x")</script> & more'

    svg = scatter_svg(SAMPLE, title=title)

    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
    assert parse(svg).find(f"{SVG}title").text == title


@pytest.mark.parametrize("points", [SAMPLE, []], ids=["plot", "empty"])
def test_no_inline_style_and_no_script_so_a_strict_csp_holds(points):
    svg = scatter_svg(points, best=7, title="<script>x</script>")

    assert "style=" not in svg
    assert "<style" not in svg
    assert "<script" not in svg
    assert not [name for element in parse(svg).iter() for name in element.attrib if name.startswith("on")]


def test_the_same_input_gives_the_same_output_and_another_plot_other_ids():
    first, again = scatter_svg(SAMPLE, best=7), scatter_svg(list(SAMPLE), best=7)
    other = scatter_svg(SAMPLE, best=7, title="Another task")

    assert first == again
    assert parse(first).get("aria-labelledby") != parse(other).get("aria-labelledby")


def test_coordinates_have_at_most_one_decimal():
    svg = scatter_svg([Point(1, 0.123456, 1_234.5678), Point(2, 0.987654, 987.654321)], best=1)

    values = re.findall(r' (?:cx|cy|x|y|x1|x2|y1|y2)="([^"]*)"', svg)
    values += re.findall(r"-?\d+(?:\.\d+)?", " ".join(re.findall(r' points="([^"]*)"', svg)))

    assert values
    assert all(re.fullmatch(r"-?\d+(\.\d)?", v) for v in values), values


def test_the_output_is_marked_safe_for_templates():
    assert hasattr(scatter_svg(SAMPLE), "__html__")
    assert hasattr(scatter_svg([]), "__html__")


any_figure = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 5e-324, 1e-300, 1e15, 1e308])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.builds(Point, number=st.integers(0, 40), latency_s=any_figure, throughput=any_figure), max_size=35),
    st.integers(0, 40),
)
def test_any_figures_give_a_well_formed_plot_that_stays_in_view(points, best):
    root = parse(scatter_svg(points, best=best))

    group = root.find(f"{SVG}g[@class='plot-points']")
    circles = list(group.iter(f"{SVG}circle")) if group is not None else []
    measured = [p for p in points if all(0 <= v < 1e12 for v in (p.latency_s, p.throughput))]
    assert len(measured) <= len(circles) <= len(points)
    for circle in circles:
        assert 0 <= float(circle.get("cx")) <= VIEW_WIDTH
        assert 0 <= float(circle.get("cy")) <= VIEW_HEIGHT
    for text in texts(root):
        if text.get("x") is not None:
            assert 0 <= float(text.get("x")) <= VIEW_WIDTH
