"""HAR waterfall: each request's phases (blocked, dns, connect, ssl, send, wait, receive) on one time axis.

Failed requests (status 0 or >= 400) are drawn with a red label and a red outline, slow phases with a
hatched bar and a "slow" mark; each row's hover text (<title>) names the entry, URL, status, timings and
request ids. Junk timings (negative, NaN, missing) draw as zero: the picture never fails on a HAR that
the probe read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from diagkit.packet.pictures.svg import SEVERITY_COLOUR, document, esc, finite, ms_label, shorten, text, ticks

PHASES = ("blocked", "dns", "connect", "ssl", "send", "wait", "receive")
PHASE_COLOUR = {"blocked": "#b0bec5", "dns": "#26a69a", "connect": "#ef6c00", "ssl": "#8e24aa",
                "send": "#1e88e5", "wait": "#43a047", "receive": "#3949ab"}
MAX_ROWS = 200

LABEL_W, BAR_X, WIDTH, ROW_H, TOP = 330, 340, 980, 20, 52


@dataclass
class Request:
    """One HAR entry as drawn: start offset from the first request and exclusive phase durations, in ms."""

    index: int
    label: str                      # e.g. "GET https://api.example.com/v2/orders?customer&page"
    start_ms: float
    phases: dict[str, float]
    total_ms: float
    status: int
    failed: bool = False
    error: str = ""
    slow_phases: set[str] = field(default_factory=set)
    request_ids: list[str] = field(default_factory=list)
    findings: list[tuple[str, str, str]] = field(default_factory=list)   # (severity, finding id, title)


def _row_tip(r: Request) -> str:
    parts = [f"entry {r.index}: {r.label}", f"status {r.status or 'failed'}" + (f" ({r.error})" if r.error else ""),
             f"start +{ms_label(finite(r.start_ms))}, total {ms_label(finite(r.total_ms))}"]
    timed = [f"{p} {ms_label(finite(r.phases.get(p)))}" for p in PHASES if finite(r.phases.get(p)) > 0]
    if timed:
        parts.append(", ".join(timed))
    parts += [f"request id {rid}" for rid in r.request_ids]
    parts += [f"{sev.upper()} {fid}: {title}" for sev, fid, title in r.findings]
    return "\n".join(parts)


def waterfall_svg(requests: list[Request], *, total_entries: int | None = None) -> str:
    """The waterfall of `requests` (at most MAX_ROWS drawn; `total_entries` says how many the HAR had)."""
    rows = requests[:MAX_ROWS]
    total_entries = len(requests) if total_entries is None else total_entries
    span = max((finite(r.start_ms) + max(finite(r.total_ms), sum(finite(v) for v in r.phases.values()))
                for r in rows), default=0.0)
    axis = ticks(span)
    end = axis[-1] if axis[-1] > 0 else 1.0
    scale = (WIDTH - BAR_X - 20) / end
    height = TOP + max(1, len(rows)) * ROW_H + 46
    body: list[str] = [text(8, 18, f"{total_entries} request{'s' if total_entries != 1 else ''}, "
                                   f"{ms_label(span)} from the first start to the last end"
                                   + (f" (first {len(rows)} drawn)" if total_entries > len(rows) else ""),
                            size=13, weight="600")]
    for t in axis:  # the time axis: a light line and a label per tick
        x = BAR_X + t * scale
        body.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{TOP + len(rows) * ROW_H}" '
                    'stroke="#e3e6ee" stroke-width="1"/>')
        body.append(text(x, TOP - 10, ms_label(t), size=10, anchor="middle", fill="#556"))
    if not rows:
        body.append(text(BAR_X, TOP + 14, "No requests in this recording.", fill="#556"))
    for n, r in enumerate(rows):
        y = TOP + n * ROW_H
        colour = SEVERITY_COLOUR["fail"] if r.failed else "#1d2330"
        label = f"#{r.index} {r.status or 'ERR'} {r.label}"
        body.append(f'<g class="req"><title>{esc(_row_tip(r))}</title>')
        if r.failed or n % 2:  # failed requests get a red row as well as a red label
            body.append(f'<rect x="0" y="{y}" width="{WIDTH}" height="{ROW_H}" fill="{"#fdecea" if r.failed else "#f7f8fb"}"/>')
        body.append(text(8, y + 14, shorten(label, 52), size=11, fill=colour, weight="600" if r.failed else "normal"))
        x = BAR_X + finite(r.start_ms) * scale
        drawn = 0.0
        for phase in PHASES:
            width = finite(r.phases.get(phase)) * scale
            if width <= 0:
                continue
            slow = phase in r.slow_phases
            body.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{max(width, 1):.1f}" height="{ROW_H - 8}" '
                        f'fill="{PHASE_COLOUR[phase]}"' + (' stroke="#c62828" stroke-width="2"' if slow else "")
                        + f'><title>{esc(phase)} {esc(ms_label(finite(r.phases.get(phase))))}'
                        + (" (slow)" if slow else "") + "</title></rect>")
            x += width
            drawn += width
        rest = finite(r.total_ms) * scale - drawn
        if rest > 0.5 or drawn == 0:  # time the HAR gave no phase for (or a request with no timings)
            body.append(f'<rect x="{x:.1f}" y="{y + 6}" width="{max(rest, 2):.1f}" height="{ROW_H - 12}" '
                        f'fill="#cfd8dc"/>')
            x += max(rest, 2)
        note = ms_label(finite(r.total_ms))
        if r.slow_phases:
            note += " slow: " + ", ".join(p for p in PHASES if p in r.slow_phases)
        if r.error:
            note += f" {r.error}"
        start = BAR_X + finite(r.start_ms) * scale
        plate = 0.0
        if x <= WIDTH - 170:  # the label after the bar
            anchor, nx = "start", x + 4
        elif start - BAR_X > 6.2 * len(shorten(note, 40)) + 8:  # else before it, when there is room
            anchor, nx = "end", start - 4
        else:  # else inside the bar's end, on a light plate so it stays readable
            anchor, nx = "end", x - 4
            plate = 6.2 * len(shorten(note, 40)) + 4
        fill = SEVERITY_COLOUR["fail"] if r.failed or r.slow_phases else "#556"
        if plate:
            body.append(f'<rect x="{nx - plate + 2:.1f}" y="{y + 3}" width="{plate:.1f}" height="{ROW_H - 6}" '
                        'fill="#fff" opacity=".85"/>')
        body.append(text(nx, y + 14, shorten(note, 40), size=10, anchor=anchor, fill=fill))
        body.append("</g>")
    legend_y = TOP + max(1, len(rows)) * ROW_H + 26
    lx = 8.0
    for phase in PHASES:
        body.append(f'<rect x="{lx}" y="{legend_y - 10}" width="12" height="12" fill="{PHASE_COLOUR[phase]}"/>')
        body.append(text(lx + 16, legend_y, phase, size=11))
        lx += 24 + 7 * len(phase) + 14
    body.append(f'<rect x="{lx}" y="{legend_y - 10}" width="12" height="12" fill="#fff" stroke="#c62828" '
                'stroke-width="2"/>')
    body.append(text(lx + 16, legend_y, "slow phase", size=11))
    lx += 100
    body.append(f'<rect x="{lx}" y="{legend_y - 10}" width="12" height="12" fill="#fdecea"/>')
    body.append(text(lx + 16, legend_y, "failed request (status 0 or ≥ 400)", size=11, fill=SEVERITY_COLOUR["fail"]))
    return document(WIDTH, height, "HAR waterfall: each request's timing phases", body)
