"""SSO flow as a sequence diagram: the browser's hops to the SP and the IdP, read from a HAR.

A lifeline per party (Browser first, then the SP's and the IdP's hosts); per hop a request arrow from
the browser to the host with the method, path and the SAML/OIDC message it carried, a dashed answer
arrow with the status, and the findings that hop caused beside it, in their severity's colour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from diagkit.packet.pictures.svg import SEVERITY_COLOUR, SEVERITY_RANK, document, esc, shorten, text

WIDTH, TOP, HOP_H, MAX_HOPS = 980, 70, 74, 60
BROWSER = " browser"  # a lane key no host name can be (host names hold no space)


@dataclass
class Lane:
    key: str          # host, or BROWSER
    role: str         # "Browser", "SP", "IdP" or "other"


@dataclass
class Hop:
    index: int                      # HAR entry
    lane: str                       # Lane.key of the host called
    request: str                    # e.g. "GET /sso"
    message: str = ""               # e.g. "SAMLRequest (HTTP-Redirect)", "OIDC authorization request"
    status: int = 0
    answer: str = ""                # e.g. "302 to idp.example.net"
    findings: list[tuple[str, str, str]] = field(default_factory=list)   # (severity, id, title)


def sso_svg(lanes: list[Lane], hops: list[Hop], *, total_hops: int | None = None) -> str:
    """The sequence diagram; lanes are drawn in the order given (the browser's first)."""
    hops = hops[:MAX_HOPS]
    total_hops = len(hops) if total_hops is None else total_hops
    lanes = lanes or [Lane(BROWSER, "Browser")]
    box = min(220.0, (WIDTH - 16) / len(lanes) - 10)   # lane headers never overlap nor leave the picture
    first, last = box / 2 + 8, WIDTH - box / 2 - 8
    step = (last - first) / (len(lanes) - 1) if len(lanes) > 1 else 0
    xs = {lane.key: first + i * step for i, lane in enumerate(lanes)}
    height = TOP + max(1, len(hops)) * HOP_H + 30
    body: list[str] = [text(8, 16, f"SSO flow: {total_hops} hop{'s' if total_hops != 1 else ''}"
                                   + (f" (first {len(hops)} drawn)" if total_hops > len(hops) else ""),
                            size=13, weight="600")]
    width_each = box
    chars = max(8, int(width_each / 7))
    for lane in lanes:
        x = xs[lane.key]
        name = lane.key
        body.append(f'<rect x="{x - width_each / 2:.1f}" y="24" width="{width_each:.1f}" height="34" rx="5" '
                    f'fill="#eef1f8" stroke="#90a4ae"/>')
        if lane.key == BROWSER:
            body.append(text(x, 46, "Browser", size=12, anchor="middle", weight="600"))
        else:
            body.append(text(x, 38, lane.role, size=10, anchor="middle", fill="#556", weight="600"))
            body.append(text(x, 52, shorten(name, chars), size=11, anchor="middle", tip=name))
        body.append(f'<line x1="{x:.1f}" y1="58" x2="{x:.1f}" y2="{height - 8}" stroke="#b0bec5" '
                    'stroke-dasharray="4 4"/>')
    body.append('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
                'orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="#37474f"/></marker></defs>')
    if not hops:
        body.append(text(80, TOP + 20, "No SSO hops in this recording.", fill="#556"))
    browser = xs.get(BROWSER, first)
    for n, hop in enumerate(hops):
        y = TOP + n * HOP_H + 14
        x = xs.get(hop.lane, browser)
        worst = max((f[0] for f in hop.findings), key=lambda s: SEVERITY_RANK.get(s, 0), default="")
        colour = SEVERITY_COLOUR.get(worst, "#37474f") if worst in ("fail", "error", "warn") else "#37474f"
        left, right = min(browser, x), max(browser, x)
        label_x = (left + right) / 2 if right - left > 40 else right + 8
        anchor = "middle" if right - left > 40 else "start"
        room = max(16, int(max(right - left, 200) / 6.6))
        tip = "\n".join([f"entry {hop.index}: {hop.request}", hop.message, hop.answer]
                        + [f"{s.upper()} {i}: {t}" for s, i, t in hop.findings])
        body.append(f"<g><title>{esc(tip)}</title>")
        body.append(text(label_x, y - 4, shorten(f"{hop.index}: {hop.request}", room), size=11, anchor=anchor))
        body.append(f'<line x1="{browser:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="{colour}" '
                    'stroke-width="1.6" marker-end="url(#arrow)"/>')
        if hop.message:
            body.append(text(label_x, y + 13, shorten(hop.message, room), size=11, anchor=anchor,
                             weight="600", fill="#6a1b9a"))
        ay = y + 22
        body.append(f'<line x1="{x:.1f}" y1="{ay:.1f}" x2="{browser:.1f}" y2="{ay:.1f}" stroke="{colour}" '
                    'stroke-width="1.2" stroke-dasharray="5 3" marker-end="url(#arrow)"/>')
        body.append(text(label_x, ay + 12, shorten(hop.answer or str(hop.status or "no response"), room), size=10,
                         anchor=anchor, fill=colour if colour != "#37474f" else "#556"))
        if hop.findings:  # the finding this hop caused, worst first, on its own line under the answer
            sev, what, _title = max(hop.findings, key=lambda f: SEVERITY_RANK.get(f[0], 0))
            more = f" (+{len(hop.findings) - 1} more)" if len(hop.findings) > 1 else ""
            body.append(text(label_x, ay + 26, shorten(f"{sev.upper()} {what}", room - len(more)) + more, size=11,
                             anchor=anchor, weight="600", fill=SEVERITY_COLOUR.get(sev, "#37474f")))
        body.append("</g>")
    return document(WIDTH, height, "SSO flow as a sequence diagram", body)
