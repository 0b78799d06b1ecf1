"""Run time over time as an inline SVG, drawn on the server (no JavaScript, nothing fetched).

x is when a run started, y how long it ran; DONE runs are green, FAILED red, and each point
links to its run's page. All text placed in the SVG is escaped here.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from luigid.core.model import DONE
from luigid.history.views import DurationPoint

WIDTH = 900
HEIGHT = 360
LEFT, RIGHT, TOP, BOTTOM = 80, 20, 20, 60
COLORS = {DONE: "#3c8d2f", "FAILED": "#c62828"}
TICKS = 5


def format_seconds(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    if high <= low:
        return (out_low + out_high) / 2
    return out_low + (value - low) * (out_high - out_low) / (high - low)


def duration_chart(points: Sequence[DurationPoint], run_link_prefix: str) -> str:
    """SVG markup for ``points``; ``run_link_prefix`` + run id is each point's (relative) link."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="duration-chart" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="run time over time">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    if not points:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            "No finished runs recorded.</text></svg>"
        )
        return "".join(parts)

    starts = [p.started.timestamp() for p in points]
    t_low, t_high = min(starts), max(starts)
    y_high = max(p.seconds for p in points) or 1.0

    for i in range(TICKS + 1):
        value = y_high * i / TICKS
        y = _scale(value, 0, y_high, TOP + plot_h, TOP)
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{format_seconds(value)}</text>"
        )
    tick_count = TICKS if t_high > t_low else 0
    for i in range(tick_count + 1):
        when = t_low + (t_high - t_low) * i / TICKS if tick_count else t_low
        x = _scale(when, t_low, t_high, LEFT + 10, LEFT + plot_w - 10)
        label = datetime.datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M")
        parts.append(
            f'<text x="{x:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle" font-size="11">'
            f"{escape(label)}</text>"
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle" font-size="12">'
        "run started</text>"
    )
    parts.append(
        f'<text x="14" y="{TOP + plot_h / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2})">run time</text>'
    )

    for point, start in zip(points, starts, strict=True):
        x = _scale(start, t_low, t_high, LEFT + 10, LEFT + plot_w - 10)
        y = _scale(point.seconds, 0, y_high, TOP + plot_h, TOP)
        color = COLORS.get(point.outcome, "#555")
        title = (
            f"{point.task_id or ''} — {point.outcome} after {format_seconds(point.seconds)}, "
            f"started {point.started.strftime('%Y-%m-%d %H:%M:%S')}"
        )
        href = quoteattr(f"{run_link_prefix}{point.run_id}")
        parts.append(
            f'<a href={href}><circle class="run {escape(point.outcome.lower())}" '
            f'cx="{x:.1f}" cy="{y:.1f}" r="5" '
            f'fill="{color}"><title>{escape(title)}</title></circle></a>'
        )
    parts.append("</svg>")
    return "".join(parts)
