"""Geometry for small stacked bar charts, drawn as inline SVG by templates (no JS, no CDN)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 640, 180, 12, 22, 40


def _nice_max(value: int) -> int:
    """Round the axis maximum up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def stacked_bars(
    series: Sequence[dict],
    *,
    keys: Sequence[tuple[str, str]],
    label: Callable[[dict], str],
    names: Mapping[str, str] | None = None,
) -> dict:
    """Bars for ``series`` rows, stacking ``keys`` (``(field, css class)``) bottom up.

    ``names`` are what the legend and the bars' titles call each field (default: the field itself).
    """
    names = names or {k: k for k, _ in keys}
    plot_h = HEIGHT - TOP - BOTTOM
    plot_w = WIDTH - LEFT - 4
    top = _nice_max(max((sum(row[k] for k, _ in keys) for row in series), default=0))
    n = max(len(series), 1)
    slot = plot_w / n
    bar_w = min(48.0, max(2.0, slot * 0.7))
    bars = []
    every = max(1, n // 7)  # at most about seven axis labels
    for i, row in enumerate(series):
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = TOP + plot_h
        rects = []
        for key, css in keys:
            h = plot_h * row[key] / top
            y -= h
            if h > 0:
                rects.append({"x": round(x, 1), "y": round(y, 1), "w": round(bar_w, 1), "h": round(h, 1), "css": css})
        title = label(row) + ": " + ", ".join(f"{row[k]} {names[k].lower()}" for k, _ in keys)
        bars.append(
            {
                "rects": rects,
                "title": title,
                "label": label(row) if i % every == 0 else "",
                "label_x": round(x + bar_w / 2, 1),
            }
        )
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "bars": bars,
        "max": top,
        "axis_y": TOP + plot_h,
        "label_y": HEIGHT - 6,
        "left": LEFT,
        "top": TOP,
        "right": WIDTH - 4,
        "keys": [{"css": css.removeprefix("c-"), "label": names[k]} for k, css in keys],
        "empty": not any(sum(row[k] for k, _ in keys) for row in series),
    }
