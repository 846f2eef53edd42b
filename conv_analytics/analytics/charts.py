"""Charts drawn as inline SVG (no JavaScript, nothing fetched), plus text bars for Markdown.

Every chart is an `<svg class="chart" data-chart=NAME>` with a <title>, so a report opens offline
and tests can find each chart in the DOM.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 44
COLOURS = ("#2f6db5", "#e07b24", "#3a9a5b", "#c0392b", "#8e5ea2", "#6b7a8f", "#d4a017", "#17a2b8")
MUTED = "#8a94a6"

Number = float | int | None


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least `value` (axis tops)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _fmt_tick(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _svg(name: str, title: str, body: list[str], height: int = HEIGHT) -> str:
    return (
        f'<svg class="chart" data-chart="{escape(name)}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text x="{LEFT}" y="18" class="chart-title">{escape(title)}</text>' + "".join(body) + "</svg>"
    )


def _no_data(name: str, title: str) -> str:
    return _svg(
        name,
        title,
        [f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="{MUTED}">no data</text>'],
    )


def _tick_count(span: float) -> int:
    """4 steps for a top of 2, 20, ... (0.5 each), else 5 (0.2, 0.5 or 1 each): round tick labels."""
    leading = span / 10 ** math.floor(math.log10(span)) if span > 0 else 1
    return 4 if math.isclose(leading, 2) else 5


def _axes(
    y_min: float, y_max: float, fmt: Callable[[float], str], ticks: int | None = None
) -> tuple[list[str], Callable[[float], float]]:
    """Horizontal grid lines with labels, and the value -> y pixel function."""
    plot_h = HEIGHT - TOP - BOTTOM
    ticks = ticks or _tick_count(y_max - y_min)

    def y_of(value: float) -> float:
        return TOP + plot_h * (1 - (value - y_min) / (y_max - y_min))

    parts = []
    for i in range(ticks + 1):
        value = y_min + (y_max - y_min) * i / ticks
        y = y_of(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{escape(fmt(value))}</text>'
        )
    return parts, y_of


def _x_labels(labels: Sequence[str], centres: list[float]) -> list[str]:
    every = max(1, math.ceil(len(labels) / 12))
    return [
        f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" class="tick">{escape(label)}</text>'
        for i, (label, x) in enumerate(zip(labels, centres, strict=True))
        if i % every == 0
    ]


def _legend(names: Sequence[str], colours: Sequence[str], y: float = HEIGHT - 8) -> list[str]:
    parts, x = [], LEFT
    for name, colour in zip(names, colours, strict=False):
        parts.append(
            f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{y}" class="legend">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    return parts


def _polyline(points: list[tuple[float, float] | None], colour: str, name: str) -> list[str]:
    """One path per unbroken run of points (a missing period leaves a gap) and a dot per point."""
    parts, run = [], []
    for point in [*points, None]:
        if point is not None:
            run.append(point)
            continue
        if len(run) > 1:
            d = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(run))
            parts.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2" class="series"/>')
        run = []
    for point in points:
        if point is not None:
            parts.append(
                f'<circle cx="{point[0]:.1f}" cy="{point[1]:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(name)}</title></circle>"
            )
    return parts


def bars_and_line(
    name: str,
    title: str,
    labels: Sequence[str],
    bars: Sequence[Number],
    line: Sequence[Number],
    bar_name: str,
    line_name: str,
) -> str:
    """Columns for one count (e.g. conversations) and a line for another (e.g. active users)."""
    values = [v for v in (*bars, *line) if v is not None]
    if not labels or not values:
        return _no_data(name, title)
    top = nice_ceiling(max(values))
    parts, y_of = _axes(0, top, _fmt_tick)
    slot = (WIDTH - LEFT - RIGHT) / len(labels)
    centres = [LEFT + slot * (i + 0.5) for i in range(len(labels))]
    width = max(2.0, slot * 0.6)
    for label, x, value in zip(labels, centres, bars, strict=True):
        if value is None:
            continue
        y = y_of(value)
        parts.append(
            f'<rect x="{x - width / 2:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{y_of(0) - y:.1f}" fill="{COLOURS[0]}" class="bar">'
            f"<title>{escape(label)}: {value:g} {escape(bar_name)}</title></rect>"
        )
    points = [(x, y_of(v)) if v is not None else None for x, v in zip(centres, line, strict=True)]
    parts += _polyline(points, COLOURS[1], line_name)
    parts += _x_labels(labels, centres)
    parts += _legend([bar_name, line_name], COLOURS[:2])
    return _svg(name, title, parts)


def lines(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number]]],
    y_range: tuple[float, float],
    fmt: Callable[[float], str] = _fmt_tick,
) -> str:
    """Several series over the same periods on a fixed axis (e.g. sentiment from -1 to 1)."""
    if not labels or all(v is None for _, values in series for v in values):
        return _no_data(name, title)
    parts, y_of = _axes(*y_range, fmt)
    slot = (WIDTH - LEFT - RIGHT) / len(labels)
    centres = [LEFT + slot * (i + 0.5) for i in range(len(labels))]
    for (series_name, values), colour in zip(series, COLOURS, strict=False):
        points = [(x, y_of(v)) if v is not None else None for x, v in zip(centres, values, strict=True)]
        parts += _polyline(points, colour, series_name)
    parts += _x_labels(labels, centres)
    parts += _legend([n for n, _ in series], COLOURS)
    return _svg(name, title, parts)


def horizontal_bars(
    name: str, title: str, items: Sequence[tuple[str, float, str]], fmt: Callable[[float], str] = _fmt_tick
) -> str:
    """Ranked bars (label, value, note), the note (e.g. the change) printed after the value."""
    if not items:
        return _no_data(name, title)
    row, label_w = 22, 170
    height = TOP + 8 + row * len(items)
    top = max(v for _, v, _ in items) or 1
    span = WIDTH - label_w - RIGHT - 150
    parts = []
    for i, (label, value, note) in enumerate(items):
        y = TOP + 6 + i * row
        length = span * value / top
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end" class="tick">{escape(label[:28])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row - 7}" '
            f'fill="{COLOURS[0]}" class="bar"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
            f'<text x="{label_w + length + 6:.1f}" y="{y + 14}" class="value">{escape(fmt(value))}'
            f' <tspan class="note">{escape(note)}</tspan></text>'
        )
    return _svg(name, title, parts, height=height)


def columns(name: str, title: str, labels: Sequence[str], values: Sequence[int]) -> str:
    """A histogram: one column per bucket."""
    if not labels or not any(values):
        return _no_data(name, title)
    parts, y_of = _axes(0, nice_ceiling(max(values)), _fmt_tick)
    slot = (WIDTH - LEFT - RIGHT) / len(labels)
    centres = [LEFT + slot * (i + 0.5) for i in range(len(labels))]
    for label, x, value in zip(labels, centres, values, strict=True):
        y = y_of(value)
        parts.append(
            f'<rect x="{x - slot * 0.42:.1f}" y="{y:.1f}" width="{slot * 0.84:.1f}" '
            f'height="{y_of(0) - y:.1f}" fill="{COLOURS[2]}" class="bar">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
    parts += _x_labels(labels, centres)
    return _svg(name, title, parts)


def share_bar(name: str, title: str, items: Sequence[tuple[str, float]]) -> str:
    """One 100% bar split by share (a mix such as channels), with a legend of percentages."""
    if not items:
        return _no_data(name, title)
    height = 110
    x, span, parts = float(LEFT), WIDTH - LEFT - RIGHT, []
    for (label, share), colour in zip(items, _cycle(len(items)), strict=True):
        width = span * share
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + 6}" width="{width:.1f}" height="28" fill="{colour}" class="bar">'
            f"<title>{escape(label)}: {share:.1%}</title></rect>"
        )
        x += width
    legend, lx, ly = [], LEFT, TOP + 58
    for (label, share), colour in zip(items, _cycle(len(items)), strict=True):
        text = f"{label} {share:.1%}"
        if lx + 24 + 7 * len(text) > WIDTH - RIGHT:
            lx, ly = LEFT, ly + 18
        legend.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{ly}" class="legend">{escape(text)}</text>'
        )
        lx += 24 + 7 * len(text)
    return _svg(name, title, parts + legend, height=max(height, ly + 12))


def _cycle(count: int) -> list[str]:
    return [COLOURS[i % len(COLOURS)] for i in range(count)]


def text_bars(rows: Sequence[tuple[str, float | None, str]], width: int = 30) -> str:
    """Unicode bars for Markdown (a code block renders them everywhere, the Dagster UI included)."""
    values = [v for _, v, _ in rows if v is not None]
    top = max(values) if values else 0
    label_w = max((len(label) for label, _, _ in rows), default=0)
    lines_ = []
    for label, value, note in rows:
        length = round(width * value / top) if value and top else 0
        bar = "█" * length if value is not None else "(missing)"
        lines_.append(f"{label.ljust(label_w)} {bar} {note}".rstrip())
    return "\n".join(lines_)
