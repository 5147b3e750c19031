"""The plots: tasks/s against worker processes (log scale), as hand-written
SVG (a few dozen elements; no plotting library in the venv for two line
charts)."""

import math
from dataclasses import dataclass
from pathlib import Path

WIDTH, HEIGHT = 640, 400
LEFT, TOP, BOTTOM = 70, 40, 60


@dataclass
class Series:
    label: str
    color: str
    points: list          # [(workers, tasks/s)], sorted
    marker: str = "circle"  # or "square" (white inside)
    dashed: bool = False
    legend: str = "line"  # what the legend shows: "line", "line+marker" or "marker"


def step_decimal(ymax):
    """A grid step of 1, 2, 5 × 10^k with 4 to 10 lines below ymax."""
    step = 1.0
    while ymax / step > 10:
        step *= 10
    while ymax / step < 4 and step > 0.1:
        step = step / 2 if str(step)[0] == "1" else step / 2.5 if str(step)[0] == "5" else step / 2
    return step


def step_power(ymax):
    """The power of ten below ymax, halved when that gives fewer than 4 lines."""
    step = 10 ** math.floor(math.log10(ymax))
    if ymax / step < 4:
        step /= 2
    return step


def _marker(s, x, y):
    if s.marker == "square":
        return (f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" '
                f'fill="white" stroke="{s.color}" stroke-width="2"/>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{s.color}"/>'


def _legend(s, lx0, ly):
    e = []
    if "line" in s.legend:
        e.append(f'<line x1="{lx0}" y1="{ly}" x2="{lx0 + 20}" y2="{ly}" stroke="{s.color}" stroke-width="2"/>')
    if "marker" in s.legend:
        if s.marker == "square":
            e.append(f'<rect x="{lx0 + 6}" y="{ly - 4}" width="8" height="8" fill="white" '
                     f'stroke="{s.color}" stroke-width="2"/>')
        else:
            e.append(f'<circle cx="{lx0 + 10}" cy="{ly}" r="4" fill="{s.color}"/>')
    e.append(f'<text x="{lx0 + 26}" y="{ly + 4}">{s.label}</text>')
    return e


def line_plot(path, title, series, counts, right, ystep):
    """Writes an SVG of the series against worker processes (log scale); the
    x axis has the series' worker counts and `counts`; `right` is the width
    kept for the legend."""
    w, h = WIDTH, HEIGHT
    xs = sorted({p[0] for s in series for p in s.points} | set(counts or [1])) or [1]
    ymax = max([p[1] for s in series for p in s.points] + [1.0])
    step = ystep(ymax)
    ytop = step * (int(ymax / step) + 1)
    lx = [math.log2(x) for x in xs]
    x0, x1 = min(lx), max(lx)
    if x1 == x0:
        x1 = x0 + 1

    def X(v):  # noqa: N802 (the plot's coordinates)
        return LEFT + (math.log2(v) - x0) / (x1 - x0) * (w - LEFT - right)

    def Y(v):  # noqa: N802
        return h - BOTTOM - v / ytop * (h - TOP - BOTTOM)

    e = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
         f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">',
         f'<rect width="{w}" height="{h}" fill="white"/>',
         f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{title}</text>']
    for i in range(0, int(ytop / step) + 1):
        v = i * step
        e.append(f'<line x1="{LEFT}" y1="{Y(v):.1f}" x2="{w - right}" y2="{Y(v):.1f}" stroke="#ddd"/>')
        e.append(f'<text x="{LEFT - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    for x in xs:
        e.append(f'<line x1="{X(x):.1f}" y1="{TOP}" x2="{X(x):.1f}" y2="{h - BOTTOM}" stroke="#eee"/>')
        e.append(f'<text x="{X(x):.1f}" y="{h - BOTTOM + 16}" text-anchor="middle">{x}</text>')
    e.append(f'<line x1="{LEFT}" y1="{h - BOTTOM}" x2="{w - right}" y2="{h - BOTTOM}" stroke="black"/>')
    e.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{h - BOTTOM}" stroke="black"/>')
    e.append(f'<text x="{(LEFT + w - right) / 2}" y="{h - 18}" text-anchor="middle">'
             f'worker processes (log scale)</text>')
    e.append(f'<text x="18" y="{(TOP + h - BOTTOM) / 2}" text-anchor="middle" '
             f'transform="rotate(-90 18 {(TOP + h - BOTTOM) / 2})">tasks/s (median)</text>')
    ly = TOP + 10
    for s in series:
        dash = ' stroke-dasharray="5,4"' if s.dashed else ""
        if len(s.points) > 1:
            d = " ".join(f"{'M' if i == 0 else 'L'}{X(x):.1f},{Y(y):.1f}" for i, (x, y) in enumerate(s.points))
            e.append(f'<path d="{d}" fill="none" stroke="{s.color}" stroke-width="2"{dash}/>')
        e += [_marker(s, X(x), Y(y)) for x, y in s.points]
        e += _legend(s, w - right + 12, ly)
        ly += 20
    e.append("</svg>")
    Path(path).write_text("\n".join(e) + "\n")


def _points(med, scenario, client):
    return sorted((m["workers"], m["tasks_per_s"]) for k, m in med.items()
                  if k[0] == scenario and k[3] == client and m.get("tasks_per_s"))


def write_throughput_svg(path, med, pg_counts):
    """Scenario c: ours and Python's tasks/s on PostgreSQL and SQLite."""
    series = []
    for db in ("postgresql", "sqlite"):
        for client, color in (("c", "#1f77b4"), ("python", "#d62728")):
            pts = _points(med, f"c-{db}", client)
            if pts:
                label = (f"{'ours (C)' if client == 'c' else 'Python'}, "
                         f"{'PostgreSQL' if db == 'postgresql' else 'SQLite'}")
                series.append(Series(label, color, pts, marker="circle" if db == "postgresql" else "square",
                                     dashed=db != "postgresql",
                                     legend="line+marker" if db == "postgresql" else "marker"))
    line_plot(path, "Real taskfarm server: tasks/s against worker processes", series, pg_counts, 180,
              step_decimal)


def write_coalesced_svg(path, med, counts):
    """tasks/s against workers for e1 (ours coalesced, Python) and, for
    reference, scenario c's ours with the interval 0."""
    series = []
    for sc, client, color, label in (("e-stress", "c-coalesced", "#1f77b4", "ours, interval 1 s"),
                                     ("c-postgresql", "c", "#9ecae1", "ours, interval 0"),
                                     ("e-stress", "python", "#d62728", "Python")):
        pts = _points(med, sc, client)
        if pts:
            series.append(Series(label, color, pts))
    line_plot(path, "Stress pattern on PostgreSQL + gunicorn: tasks/s against workers", series, counts, 200,
              step_power)


WAVE_SKIP_BINS = 5  # the first 0.5 s after the release


def write_retry_wave_svg(path, scale):
    """Scenario f2: the task requests' attempts per 100 ms after the workers
    were released against a dead server, with jitter and without (a linear
    time axis; the server's return marked)."""
    waves = [(name, color, scale["restart"][name]) for name, color in
             (("no jitter", "#d62728"), ("jitter", "#1f77b4")) if name in scale["restart"]]
    w, h, right = WIDTH, HEIGHT, 150
    tmax = max([len(r["wave"]) / 10 for _, _, r in waves] + [1.0])
    # The release itself (every worker's first attempt and its immediate
    # first retry, in the first bins) would flatten the wave: the axis is
    # scaled to what comes after WAVE_SKIP_BINS, the release's bins cut off
    # and their height written.
    ymax = max([max(r["wave"][WAVE_SKIP_BINS:], default=0) for _, _, r in waves] + [1])
    step = step_decimal(ymax)
    ytop = step * (int(ymax / step) + 1)
    tstep = step_decimal(tmax)

    def X(t):  # noqa: N802 (the plot's coordinates)
        return LEFT + t / tmax * (w - LEFT - right)

    def Y(v):  # noqa: N802
        return h - BOTTOM - v / ytop * (h - TOP - BOTTOM)

    e = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
         f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">',
         f'<rect width="{w}" height="{h}" fill="white"/>',
         f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">Server restart with '
         f'{scale["workers"]} workers waiting: task requests per 100 ms</text>']
    for i in range(0, int(ytop / step) + 1):
        v = i * step
        e.append(f'<line x1="{LEFT}" y1="{Y(v):.1f}" x2="{w - right}" y2="{Y(v):.1f}" stroke="#ddd"/>')
        e.append(f'<text x="{LEFT - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    t = 0.0
    while t <= tmax + 1e-9:
        e.append(f'<text x="{X(t):.1f}" y="{h - BOTTOM + 16}" text-anchor="middle">{t:g}</text>')
        t += tstep
    e.append(f'<line x1="{LEFT}" y1="{h - BOTTOM}" x2="{w - right}" y2="{h - BOTTOM}" stroke="black"/>')
    e.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{h - BOTTOM}" stroke="black"/>')
    e.append(f'<text x="{(LEFT + w - right) / 2}" y="{h - 18}" text-anchor="middle">'
             f'seconds after the workers were released (the server down)</text>')
    e.append(f'<text x="18" y="{(TOP + h - BOTTOM) / 2}" text-anchor="middle" '
             f'transform="rotate(-90 18 {(TOP + h - BOTTOM) / 2})">attempts per 100 ms</text>')
    ly = TOP + 10
    for k, (name, color, r) in enumerate(waves):
        d = " ".join(f"{'M' if i == 0 else 'L'}{X(i / 10):.1f},{Y(min(v, ytop)):.1f} "
                     f"L{X((i + 1) / 10):.1f},{Y(min(v, ytop)):.1f}" for i, v in enumerate(r["wave"]))
        cut = max(r["wave"][:WAVE_SKIP_BINS], default=0)
        if cut > ytop:
            e.append(f'<text x="{X(0.1) + 4:.1f}" y="{TOP + 14 + 14 * k}" fill="{color}" '
                     f'font-size="11">release: {cut} in 100 ms (cut off)</text>')
        e.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        back = r["outage_s"]
        e.append(f'<line x1="{X(back):.1f}" y1="{TOP}" x2="{X(back):.1f}" y2="{h - BOTTOM}" '
                 f'stroke="{color}" stroke-dasharray="4,3"/>')
        e += _legend(Series(name, color, []), w - right + 12, ly)
        ly += 20
    e.append(f'<text x="{w - right + 12}" y="{ly + 8}" font-size="11">dashed: the server</text>')
    e.append(f'<text x="{w - right + 12}" y="{ly + 22}" font-size="11">is back</text>')
    e.append("</svg>")
    Path(path).write_text("\n".join(e) + "\n")
