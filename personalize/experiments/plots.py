"""Inline SVG line charts for the experiment reports (no JavaScript, no plotting library).

A chart is a few series over the same days; a series may carry a band (its
confidence interval), drawn as a shaded area behind its line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape

#: Line colours, in series order (the control first).
PALETTE = ("#616161", "#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f")


@dataclass(frozen=True)
class Series:
    """One line: a value per day (``None`` leaves a gap), optionally with its interval.

    ``colour`` keeps a line's colour from chart to chart (a variant's); by
    default the :data:`PALETTE` colour of its position.
    """

    name: str
    values: Sequence[float | None]
    lower: Sequence[float | None] | None = None
    upper: Sequence[float | None] | None = None
    colour: str | None = None


def line_chart_svg(
    days: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    value_format: Callable[[float], str] = lambda v: f"{v:.1%}",
    zero_line: bool = False,
    width: int = 640,
    height: int = 220,
) -> str:
    """An SVG chart of ``series`` over ``days``, with y ticks, day labels and a legend.

    Args:
        days: the x axis labels (ISO dates), one per value.
        series: the lines; their bands, if any, are drawn first.
        title: the accessible title.
        value_format: how tick values are written.
        zero_line: draw the y = 0 line (for lifts).
        width: pixels.
        height: pixels.

    Returns:
        SVG markup (names are escaped; safe to mark safe), or ``""`` with no value to draw.
    """
    known = [float(v) for s in series for part in (s.values, s.lower or (), s.upper or ())
             for v in part if v is not None]
    if not known or not days:
        return ""
    low, high = min(known), max(known)
    if zero_line:
        low, high = min(low, 0.0), max(high, 0.0)
    span = (high - low) or 1.0
    left, right, top, bottom = 56, 12, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(days) - 1, 1)

    def x(i: int) -> float:
        return left + i * step

    def y(v: float) -> float:
        return top + (high - v) / span * plot_h

    parts: list[str] = []
    for n, s in enumerate(series):
        if s.lower is None or s.upper is None:
            continue
        runs: list[list[tuple[int, float, float]]] = [[]]
        for i, (lo, hi) in enumerate(zip(s.lower, s.upper, strict=True)):
            if lo is None or hi is None:
                runs.append([])  # a gap in the interval is a gap in its band
            else:
                runs[-1].append((i, float(lo), float(hi)))
        for run in runs:
            if len(run) < 2:
                continue
            outline = [f"{x(i):.1f},{y(hi):.1f}" for i, _, hi in run]
            outline += [f"{x(i):.1f},{y(lo):.1f}" for i, lo, _ in reversed(run)]
            parts.append(f'<polygon points="{" ".join(outline)}" fill="{_colour(s, n)}" '
                         'fill-opacity="0.15" stroke="none"/>')
    ticks = sorted({low, high, *([0.0] if zero_line else [])})
    for value in ticks:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}" stroke="#ddd" stroke-width="1"/>'
                     f'<text x="{left - 6}" y="{y(value) + 4:.1f}" font-size="11" '
                     f'text-anchor="end" fill="#555">{escape(value_format(value))}</text>')
    if zero_line:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(0.0):.1f}" '
                     f'y2="{y(0.0):.1f}" stroke="#999" stroke-width="1"/>')
    last = len(days) - 1
    for i in sorted({0, len(days) // 2, last}):
        # the first and last labels lean inwards, so that neither is cut at the edge
        anchor = "start" if i == 0 else "end" if i == last else "middle"
        parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" font-size="11" '
                     f'text-anchor="{anchor}" fill="#555">{escape(days[i])}</text>')
    for n, s in enumerate(series):
        segments: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                segments.append([])
            else:
                segments[-1].append(f"{x(i):.1f},{y(float(v)):.1f}")
        for segment in segments:
            if len(segment) > 1:
                parts.append(f'<polyline fill="none" stroke="{_colour(s, n)}" stroke-width="2" '
                             f'points="{" ".join(segment)}"/>')
            elif segment:
                cx, cy = segment[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{_colour(s, n)}"/>')
    legend_x = left
    for n, s in enumerate(series):
        parts.append(f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" '
                     f'fill="{_colour(s, n)}"/><text x="{legend_x + 14}" y="{height - 5}" '
                     f'font-size="11" fill="#333">{escape(s.name)}</text>')
        legend_x += 24 + 7 * len(s.name)
    label = escape(title)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="personalize-chart" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{label}">'
            f'<title>{label}</title>{"".join(parts)}</svg>')


def _colour(s: Series, n: int) -> str:
    return escape(s.colour) if s.colour else PALETTE[n % len(PALETTE)]
