"""The class's progress through a lesson over the session, as an SVG drawn on the server.

For each moment: the exercise every participant had reached by then (0: not started),
and of those the median (line) and the middle half (band), plus the furthest anyone got
(dotted). No script, no library: the page shows it as an <img>, so even a lesson title
written to break out of the SVG could not run (and titles are escaped regardless).
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 140, 10, 10, 24
SAMPLES = 120  # points along the time axis
MAX_LABELS = 12  # exercise names on the y axis at most (every k-th one beyond)


def _quantile(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    k = (len(values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def progress_svg(advances: dict[str, list[tuple[datetime, int]]], everyone: int,
                 exercises: list[str], now: datetime) -> str:
    """`advances`: per participant, (when, exercise from 0) each time they got further;
    `everyone`: participants in the class (those without advances have not started)."""
    n = max(1, len(exercises))
    starts = [a[0][0] for a in advances.values() if a]
    start = min(starts) if starts else now - timedelta(minutes=1)
    span = max((now - start).total_seconds(), 60.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + plot_w * t / span

    def y(level: float) -> float:  # 0 = not started, n = the last exercise
        return TOP + plot_h * (1 - level / n)

    series = {name: ([w for w, _ in a], [e + 1 for _, e in a]) for name, a in advances.items()}
    points = []
    for i in range(SAMPLES + 1):
        t = span * i / SAMPLES
        moment = start + timedelta(seconds=t)
        levels = [0] * max(0, everyone - len(series))
        for times, reached in series.values():
            k = bisect.bisect_right(times, moment)
            levels.append(reached[k - 1] if k else 0)  # advances only go up
        levels.sort()
        points.append((t, _quantile(levels, 0.25), _quantile(levels, 0.5),
                       _quantile(levels, 0.75), levels[-1] if levels else 0))

    band = " ".join(f"{x(t):.1f},{y(q3):.1f}" for t, _, _, q3, _ in points)
    band += " " + " ".join(f"{x(t):.1f},{y(q1):.1f}" for t, q1, _, _, _ in reversed(points))
    mid = " ".join(f"{x(t):.1f},{y(m):.1f}" for t, _, m, _, _ in points)
    top = " ".join(f"{x(t):.1f},{y(mx):.1f}" for t, _, _, _, mx in points)
    step = max(1, -(-n // MAX_LABELS))
    labels = []
    for k in range(0, n + 1, step):
        name = ("not started" if k == 0 else
                f"{k}. {exercises[k - 1]}" if k <= len(exercises) else "")
        name = name if len(name) <= 22 else name[:21] + "…"
        labels.append(f'<text x="{LEFT - 6}" y="{y(k) + 4:.1f}" text-anchor="end">'
                      f"{escape(name)}</text>"
                      f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(k):.1f}" '
                      f'y2="{y(k):.1f}" class="grid"/>')
    minutes = int(span // 60)
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" \
viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="10">
<style>.grid{{stroke:#e3e6ea}} text{{fill:#555}}</style>
{''.join(labels)}
<polygon points="{band}" fill="#9ecae1" fill-opacity="0.55"/>
<polyline points="{top}" fill="none" stroke="#6baed6" stroke-dasharray="3,3"/>
<polyline points="{mid}" fill="none" stroke="#08519c" stroke-width="2"/>
<text x="{LEFT}" y="{HEIGHT - 6}">{minutes} min ago</text>
<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">median, middle half, \
furthest · now</text>
</svg>"""
