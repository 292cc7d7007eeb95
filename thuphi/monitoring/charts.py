"""Charts drawn on the server as inline SVG: no script, readable on a phone (viewBox scales), printable.

Each chart carries a <title> and <desc> for screen readers; the page shows the same figures in a table.
"""
from __future__ import annotations

from decimal import Decimal
from html import escape

from django.utils.safestring import SafeString, mark_safe

COLOURS = {"green": "#1a7f37", "amber": "#d4a72c", "red": "#b42318", "grey": "#8c959f", "none": "#8c959f"}
BRAND, LIGHT, INK, MUTED, GRID = "#0b6b50", "#cfe3dc", "#1d2733", "#5b6775", "#d9dee5"
STATUS_COLOUR = {"met": "green", "near": "amber", "behind": "red"}


def _pct(value) -> float | None:
    return None if value is None else float(value)


def _fmt_pct(value) -> str:
    from thuphi.core.formatting import format_percent

    return format_percent(None if value is None else Decimal(value))


def gauge(actual, targets: list, *, label: str = "") -> SafeString:
    """A 0–100 % bar: the actual share filled, a tick at each target, coloured by the worst status."""
    w, h = 200, 18
    a = _pct(actual)
    statuses = [t.status for t in targets if t.status in STATUS_COLOUR]
    order = ["behind", "near", "met"]
    colour = COLOURS[STATUS_COLOUR[min(statuses, key=order.index)]] if statuses else BRAND
    parts = [f'<svg class="gauge" viewBox="0 0 {w} {h + 8}" role="img" aria-label="{escape(label)}: '
             f'{escape(_fmt_pct(actual))}" preserveAspectRatio="none">',
             f'<rect x="0" y="4" width="{w}" height="{h}" rx="3" fill="#eef1f4"/>']
    if a is not None:
        parts.append(f'<rect x="0" y="4" width="{w * max(0.0, min(a, 100.0)) / 100:.1f}" height="{h}" rx="3" '
                     f'fill="{colour}"/>')
    for t in targets:
        x = w * float(t.target.value) / 100
        x = min(max(x, 1), w - 1)
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{h + 8}" stroke="{INK}" stroke-width="2">'
                     f'<title>{escape(t.plan.issuing_body)}: {escape(_fmt_pct(t.target.value))}</title></line>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def share_bar(value) -> SafeString:
    """A small inline bar for table cells."""
    v = _pct(value)
    if v is None:
        return mark_safe("")
    colour = COLOURS["green"] if v >= 50 else COLOURS["amber"] if v >= 40 else COLOURS["red"]
    return mark_safe(f'<svg class="minibar" viewBox="0 0 100 8" aria-hidden="true" preserveAspectRatio="none">'
                     f'<rect width="100" height="8" fill="#eef1f4"/><rect width="{max(0.0, min(v, 100.0)):.1f}" '
                     f'height="8" fill="{colour}"/></svg>')


def _nice_max(v: int) -> int:
    if v <= 0:
        return 1
    magnitude = 10 ** (len(str(int(v))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if v <= step * magnitude:
            return int(step * magnitude)
    return 10 * magnitude


def _short_money(v: int) -> str:
    if v >= 10**9:
        return f"{v / 10**9:.1f} tỷ".replace(".", ",")
    if v >= 10**6:
        return f"{v / 10**6:.1f} tr".replace(".", ",")
    if v >= 10**3:
        return f"{v / 10**3:.0f} N"
    return str(v)


def trend(points, *, title: str = "Xu hướng theo tháng") -> SafeString:
    """Bars: value received per month (cashless part dark). Lines: cashless share by count and by value."""
    W, H = 720, 280
    left, right, top, bottom = 58, 46, 16, 52
    pw, ph = W - left - right, H - top - bottom
    n = max(len(points), 1)
    vmax = _nice_max(max((p.figures.value for p in points), default=0))
    slot = pw / n
    bw = max(min(slot * 0.6, 48), 2)
    desc = "; ".join(f"{p.month.month}/{p.month.year}: {_short_money(p.figures.value)} đồng, không dùng tiền mặt "
                     f"{_fmt_pct(p.figures.share_value)} giá trị, {_fmt_pct(p.figures.share_count)} số lượng"
                     for p in points)
    out = [f'<svg class="chart trend" viewBox="0 0 {W} {H}" role="img" aria-labelledby="trend-title trend-desc">',
           f'<title id="trend-title">{escape(title)}</title><desc id="trend-desc">{escape(desc)}</desc>']
    for i in range(5):
        y = top + ph - ph * i / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" fill="{MUTED}">'
                   f'{escape(_short_money(int(vmax * i / 4)))}</text>')
        out.append(f'<text x="{left + pw + 6}" y="{y + 4:.1f}" font-size="12" fill="{MUTED}">{25 * i}%</text>')
    line_count, line_value = [], []
    every = max(1, n // 12)
    for i, p in enumerate(points):
        cx = left + slot * i + slot / 2
        f = p.figures
        h_total = ph * f.value / vmax
        h_cashless = ph * f.value_cashless / vmax
        out.append(f'<rect x="{cx - bw / 2:.1f}" y="{top + ph - h_total:.1f}" width="{bw:.1f}" '
                   f'height="{h_total:.1f}" fill="{LIGHT}"/>')
        out.append(f'<rect x="{cx - bw / 2:.1f}" y="{top + ph - h_cashless:.1f}" width="{bw:.1f}" '
                   f'height="{h_cashless:.1f}" fill="{BRAND}"><title>{p.month.month}/{p.month.year}: '
                   f'{escape(_fmt_pct(f.share_value))}</title></rect>')
        if f.share_count is not None:
            line_count.append((cx, top + ph - ph * float(f.share_count) / 100))
        if f.share_value is not None:
            line_value.append((cx, top + ph - ph * float(f.share_value) / 100))
        if i % every == 0:
            out.append(f'<text x="{cx:.1f}" y="{top + ph + 16}" text-anchor="middle" font-size="12" fill="{INK}">'
                       f'{p.month.month}/{str(p.month.year)[2:]}</text>')
    for pts, colour, dash in ((line_count, "#1f6feb", ""), (line_value, "#b42318", ' stroke-dasharray="6 3"')):
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}/>')
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>')
    ly = H - 14
    legend = [(BRAND, "Giá trị không dùng tiền mặt", "rect"), (LIGHT, "Giá trị tiền mặt", "rect"),
              ("#1f6feb", "Tỷ lệ theo số lượng", "line"), ("#b42318", "Tỷ lệ theo giá trị", "line")]
    x = left
    for colour, text, shape in legend:
        if shape == "rect":
            out.append(f'<rect x="{x}" y="{ly - 9}" width="12" height="10" fill="{colour}"/>')
        else:
            out.append(f'<line x1="{x}" y1="{ly - 4}" x2="{x + 12}" y2="{ly - 4}" stroke="{colour}" stroke-width="3"/>')
        out.append(f'<text x="{x + 16}" y="{ly}" font-size="12" fill="{INK}">{escape(text)}</text>')
        x += 24 + len(text) * 6
    out.append("</svg>")
    return mark_safe("".join(out))
