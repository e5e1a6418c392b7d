import re

from personalize.experiments.plots import Series, line_chart_svg

DAYS = ["2026-12-01", "2026-12-02", "2026-12-03"]


def test_a_chart_draws_each_series_its_band_and_a_legend():
    svg = line_chart_svg(DAYS, [
        Series("a <control>", [0.03, 0.031, 0.03]),
        Series("b", [0.05, None, 0.04], lower=[0.01, None, 0.02], upper=[0.09, None, 0.06]),
    ], title="lift", zero_line=True)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<polyline") == 1  # b has a gap: its two points are dots
    assert svg.count("<circle") == 2
    assert svg.count("<polygon") == 0  # b's band has a gap too: no two points in a row
    assert "a &lt;control&gt;" in svg and "<control>" not in svg  # names are escaped
    assert "2026-12-01" in svg and "2026-12-03" in svg
    assert "0.0%" in svg  # the zero line's tick


def test_a_band_is_shaded_behind_its_line():
    svg = line_chart_svg(DAYS, [Series("b", [0.1, 0.12, 0.11], lower=[0.0, 0.05, 0.07],
                                       upper=[0.2, 0.19, 0.15])], title="lift")
    polygon = re.search(r'<polygon points="([^"]+)"', svg).group(1)
    assert len(polygon.split()) == 6  # up along the upper bound, back along the lower
    assert svg.index("<polygon") < svg.index("<polyline")


def test_nothing_to_draw():
    assert line_chart_svg(DAYS, [Series("a", [None, None, None])], title="t") == ""
    assert line_chart_svg([], [], title="t") == ""


def test_the_end_labels_lean_inwards_and_a_series_may_keep_its_colour():
    svg = line_chart_svg(DAYS, [Series("b", [0.1, 0.2, 0.3], colour="#123456")], title="t")
    assert 'text-anchor="start" fill="#555">2026-12-01<' in svg
    assert 'text-anchor="middle" fill="#555">2026-12-02<' in svg
    assert 'text-anchor="end" fill="#555">2026-12-03<' in svg
    assert 'stroke="#123456"' in svg and "#616161" not in svg
