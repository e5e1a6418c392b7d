"""Tiny inline SVG plots for the admin (no JavaScript, no plotting library)."""

from __future__ import annotations

from collections.abc import Sequence


def sparkline_svg(
    values: Sequence[float | None],
    *,
    highlight: int | None = None,
    width: int = 160,
    height: int = 32,
    label: str = "",
) -> str:
    """An inline SVG line of ``values`` (``None`` leaves a gap), scaled to its own range.

    Args:
        values: the series, oldest first.
        highlight: index of a point drawn as a larger red dot (the version shown).
        width: pixels.
        height: pixels.
        label: the accessible title of the plot.

    Returns:
        SVG markup built from numbers only (safe to mark safe), or ``""`` when
        there is no value to draw.
    """
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    pad = 3
    step = (width - 2 * pad) / max(len(values) - 1, 1)

    def point(i: int, v: float) -> tuple[float, float]:
        return pad + i * step, height - pad - (v - low) / span * (height - 2 * pad)

    segments: list[list[tuple[float, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            segments.append([])
        else:
            segments[-1].append(point(i, float(v)))
    lines = "".join(
        '<polyline fill="none" stroke="#417690" stroke-width="1.5" points="{}"/>'.format(
            " ".join(f"{x:.1f},{y:.1f}" for x, y in seg))
        for seg in segments if seg
    )
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.8" fill="#417690"/>'
        for seg in segments for x, y in seg
    )
    marked = ""
    if highlight is not None and 0 <= highlight < len(values) and values[highlight] is not None:
        x, y = point(highlight, float(values[highlight]))  # type: ignore[arg-type]
        marked = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#c62828"/>'
    title = "".join(c for c in label if c.isalnum() or c in " @.:-_v,")  # numbers and names only
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="personalize-sparkline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{title}">'
        f"<title>{title}</title>{lines}{dots}{marked}</svg>"
    )
