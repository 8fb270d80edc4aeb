"""Tiny inline-SVG charts for the offline report pages (no CDN, no JavaScript, no fonts).

Every label is escaped here; the functions return ``markupsafe.Markup`` so templates can
embed the chart as-is. Numbers are formatted by the caller or with ``_fmt``.
"""
from __future__ import annotations

from typing import Sequence

from markupsafe import Markup, escape

_AXIS = "#8c959f"
_C1, _C2, _C3 = "#0969da", "#8c959f", "#d1242f"


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 0.05 else f"{v:.1f}"


def line_chart(points: Sequence[tuple[str, float | None, int]], *, title: str,
               y_min: float = 0.0, y_max: float = 100.0, ref: Sequence[float | None] | None = None,
               width: int = 560, height: int = 200) -> Markup:
    """Mean score per period as a line (gaps where a period has no calls), call counts as
    light bars, and an optional reference line (e.g. the team) dashed.

    ``points``: (period label, value or None, call count).
    """
    pad_l, pad_r, pad_t, pad_b = 36, 12, 24, 34
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    n = max(len(points), 1)
    step = w / n
    max_n = max((c for _, _, c in points), default=1) or 1

    def x(i: int) -> float:
        return pad_l + step * (i + 0.5)

    def y(v: float) -> float:
        v = min(max(v, y_min), y_max)
        return pad_t + h - (v - y_min) / ((y_max - y_min) or 1) * h

    out = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
           f'<text x="{pad_l}" y="14" font-size="12" fill="#1f2328">{escape(title)}</text>']
    for g in (y_min, (y_min + y_max) / 2, y_max):
        out.append(f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{y(g):.1f}" y2="{y(g):.1f}" stroke="#eaeef2"/>'
                   f'<text x="{pad_l - 4}" y="{y(g) + 4:.1f}" font-size="10" text-anchor="end" fill="{_AXIS}">{_fmt(g)}</text>')
    for i, (label, _, cnt) in enumerate(points):
        bh = cnt / max_n * h * 0.35
        out.append(f'<rect x="{x(i) - step * 0.3:.1f}" y="{pad_t + h - bh:.1f}" width="{step * 0.6:.1f}" '
                   f'height="{bh:.1f}" fill="#eaeef2"><title>{escape(label)}: {cnt}</title></rect>')
        if n <= 16 or i % max(1, n // 8) == 0:
            out.append(f'<text x="{x(i):.1f}" y="{height - 18}" font-size="10" text-anchor="middle" '
                       f'fill="{_AXIS}">{escape(label[-5:] if len(label) > 7 else label)}</text>')

    def path(vals: Sequence[float | None], color: str, dash: str = "") -> None:
        seg: list[str] = []
        for i, v in enumerate(vals):
            if v is None:
                seg.append("")
                continue
            seg.append(f"{'L' if seg and seg[-1] else 'M'}{x(i):.1f},{y(v):.1f}")
        d = " ".join(s for s in seg if s)
        if d:
            out.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"'
                       f'{f" stroke-dasharray={chr(34)}{dash}{chr(34)}" if dash else ""}/>')

    if ref is not None:
        path(list(ref), _C2, "4 3")
    path([v for _, v, _ in points], _C1)
    for i, (label, v, cnt) in enumerate(points):
        if v is not None:
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{_C1}">'
                       f'<title>{escape(label)}: {_fmt(v)} ({cnt})</title></circle>')
    out.append("</svg>")
    return Markup("".join(out))


def bar_pairs(rows: Sequence[tuple[str, float | None, float | None]], *, title: str,
              labels: tuple[str, str] = ("", ""), width: int = 560) -> Markup:
    """Horizontal bars in 0..1: one dark (this agent) and one light (the team) per row."""
    row_h, pad_l, pad_r, pad_t = 26, 170, 48, 30
    height = pad_t + row_h * max(len(rows), 1) + 8
    w = width - pad_l - pad_r
    out = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
           f'<text x="4" y="14" font-size="12" fill="#1f2328">{escape(title)}</text>']
    if labels[0]:
        out.append(f'<rect x="{pad_l}" y="19" width="10" height="8" fill="{_C1}"/>'
                   f'<text x="{pad_l + 14}" y="27" font-size="10" fill="{_AXIS}">{escape(labels[0])}</text>')
    if labels[1]:
        out.append(f'<rect x="{pad_l + 120}" y="19" width="10" height="8" fill="#afb8c1"/>'
                   f'<text x="{pad_l + 134}" y="27" font-size="10" fill="{_AXIS}">{escape(labels[1])}</text>')
    for i, (label, a, b) in enumerate(rows):
        y0 = pad_t + i * row_h
        short = label if len(label) <= 14 else label[:13] + "…"
        out.append(f'<text x="{pad_l - 6}" y="{y0 + 15}" font-size="11" text-anchor="end" fill="#1f2328">'
                   f'<title>{escape(label)}</title>{escape(short)}</text>')
        if a is not None:
            color = _C3 if b is not None and a < b - 0.1 else _C1
            out.append(f'<rect x="{pad_l}" y="{y0 + 3}" width="{max(a, 0.002) * w:.1f}" height="10" fill="{color}">'
                       f'<title>{escape(label)}: {a * 100:.0f}%</title></rect>'
                       f'<text x="{pad_l + max(a, 0) * w + 4:.1f}" y="{y0 + 12}" font-size="10" fill="#1f2328">{a * 100:.0f}%</text>')
        if b is not None:
            out.append(f'<rect x="{pad_l}" y="{y0 + 14}" width="{max(b, 0.002) * w:.1f}" height="6" fill="#afb8c1">'
                       f'<title>{escape(labels[1] or "ref")}: {b * 100:.0f}%</title></rect>')
    out.append("</svg>")
    return Markup("".join(out))


def histogram(counts: Sequence[tuple[str, int]], *, title: str, width: int = 300, height: int = 160) -> Markup:
    """Vertical bars, one per category (grade distribution)."""
    pad_l, pad_t, pad_b = 10, 24, 22
    n = max(len(counts), 1)
    step = (width - 2 * pad_l) / n
    top = max((c for _, c in counts), default=0) or 1
    h = height - pad_t - pad_b
    out = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
           f'<text x="{pad_l}" y="14" font-size="12" fill="#1f2328">{escape(title)}</text>']
    for i, (label, c) in enumerate(counts):
        bh = c / top * (h - 12)
        x0 = pad_l + i * step
        out.append(f'<rect x="{x0 + step * 0.15:.1f}" y="{pad_t + h - bh:.1f}" width="{step * 0.7:.1f}" '
                   f'height="{bh:.1f}" fill="{_C1}"><title>{escape(label)}: {c}</title></rect>'
                   f'<text x="{x0 + step / 2:.1f}" y="{pad_t + h - bh - 2:.1f}" font-size="10" text-anchor="middle">{c}</text>'
                   f'<text x="{x0 + step / 2:.1f}" y="{height - 6}" font-size="11" text-anchor="middle" '
                   f'fill="{_AXIS}">{escape(label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))
