"""Small SVG helpers shared by the pictures: escaped text, shortening, time labels, colours.

`esc` is the only way a packet's string reaches an SVG: `diagkit.visible.visible` first (control and
bidi characters become `\\x1b`, `\\u202e`), then XML escaping with quotes, so it is safe in text and in
attribute values alike.
"""

from __future__ import annotations

import html
import math
from typing import Any

from diagkit.visible import visible

SEVERITY_COLOUR = {"fail": "#c62828", "error": "#7b1fa2", "warn": "#b7791f", "info": "#1565c0", "pass": "#2e7d32"}
SEVERITY_RANK = {"pass": 0, "info": 1, "warn": 2, "error": 3, "fail": 4}
FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"


def esc(value: Any) -> str:
    """Text safe inside an SVG/HTML element or a quoted attribute."""
    return html.escape(visible(value if isinstance(value, str) else str(value)), quote=True)


def shorten(value: Any, limit: int) -> str:
    """At most `limit` characters, an ellipsis in the middle so both the host and the end stay readable."""
    text = visible(value if isinstance(value, str) else str(value))
    if len(text) <= limit:
        return text
    head = max(1, (limit - 1) * 2 // 3)
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def finite(value: Any, default: float = 0.0) -> float:
    """A non-negative finite float from anything (timings in a packet may be junk)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else default


def ms_label(ms: float) -> str:
    if ms >= 10_000:
        return f"{ms / 1000:.0f} s"
    if ms >= 1000:
        return f"{ms / 1000:.1f} s".replace(".0 s", " s")
    return f"{ms:.0f} ms"


def ticks(span: float, most: int = 8) -> list[float]:
    """Round tick positions from 0 to at least `span` (1, 2, 5 x 10^k steps), at most `most` + 1 of them."""
    span = span if span > 0 else 1.0
    step = 10 ** math.floor(math.log10(span / most))
    for factor in (1, 2, 5, 10):
        if span / (step * factor) <= most:
            step *= factor
            break
    count = int(math.ceil(span / step - 1e-9))
    return [i * step for i in range(count + 1)]


def document(width: int, height: int, label: str, body: list[str]) -> str:
    """An <svg> that scales to its container (viewBox) and names itself for screen readers."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{esc(label)}" style="{FONT}">'
            f"<title>{esc(label)}</title>" + "".join(body) + "</svg>")


def text(x: float, y: float, value: Any, *, size: int = 12, anchor: str = "start", weight: str = "normal",
         fill: str = "#1d2330", tip: Any = None) -> str:
    """One line of text; `tip` (e.g. the full value of a shortened label) shows on hover."""
    hover = f"<title>{esc(tip)}</title>" if tip else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'fill="{fill}">{hover}{esc(value)}</text>')
