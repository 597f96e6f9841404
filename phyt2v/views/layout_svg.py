"""A layout drawn as an SVG strip: one panel per keyframe (its time above it), each object's box in its own colour
with its name, the prompt above the strip and the background keyword below. No dependency: plain SVG text."""

from __future__ import annotations

from xml.sax.saxutils import escape

from ..schemas import Layout

COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990",
          "#808000")
PAD, GAP, HEAD, FOOT, FONT = 12, 10, 36, 26, 11


def _text(x: float, y: float, s: str, size: int = FONT, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}"{extra}>{escape(s)}</text>'


def layout_svg(layout: Layout, *, title: str = "", aspect: float = 1.0, panel_width: int = 200) -> str:
    """The SVG document of ``layout``: panels ``panel_width`` wide, ``aspect`` = frame width / height."""
    n = max(1, len(layout.keyframes))
    pw = panel_width
    ph = round(pw / aspect) if aspect > 0 else pw
    width = 2 * PAD + n * pw + (n - 1) * GAP
    height = HEAD + ph + FOOT + PAD
    title = title if len(title) <= 140 else title[:137] + "..."
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           _text(PAD, 16, title, 13, font_weight="bold")]
    for k, kf in enumerate(layout.keyframes):
        x0, y0 = PAD + k * (pw + GAP), HEAD
        out.append(_text(x0, y0 - 5, f"t = {kf.t:g} s", fill="#555"))
        out.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="#f4f4f4" stroke="#999"/>')
        out.append(f'<svg x="{x0}" y="{y0}" width="{pw}" height="{ph}" overflow="hidden">')
        for o in kf.objects:
            color = COLORS[o.id % len(COLORS)]
            bx0, by0, bx1, by1 = o.box
            x, y, w, h = bx0 * pw, by0 * ph, max(0.0, bx1 - bx0) * pw, max(0.0, by1 - by0) * ph
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{color}" '
                       f'fill-opacity="0.15" stroke="{color}" stroke-width="2"/>')
            ty = y + FONT + 1 if y < FONT + 2 else y - 3
            out.append(_text(max(1.0, x + 2), ty, f"{o.id}: {o.name}", fill=color, stroke="white",
                             stroke_width="3", paint_order="stroke"))
        out.append("</svg>")
    if layout.background:
        out.append(_text(PAD, HEAD + ph + 18, f"background: {layout.background}", fill="#555"))
    out.append("</svg>")
    return "\n".join(out) + "\n"
