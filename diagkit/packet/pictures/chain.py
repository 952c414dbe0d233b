"""Certificate chain as the server presented it, each certificate's validity against the capture time.

One box per certificate, in the order sent (server first), an "issued by" arrow between neighbours
(marked when a certificate's issuer is not the next one's subject: an out-of-order or incomplete chain),
and per certificate a validity bar from notBefore to notAfter with the capture time marked on it:
green when valid then, amber when it expires within 30 days of it, red when expired or not yet valid.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from diagkit.packet.pictures.svg import SEVERITY_COLOUR, document, esc, shorten, text

SOON = _dt.timedelta(days=30)
WIDTH, BOX_H, GAP, TOP = 980, 96, 34, 40


@dataclass
class Cert:
    subject: str
    issuer: str
    not_before: _dt.datetime | None
    not_after: _dt.datetime | None
    key: str = ""
    fingerprint: str = ""
    self_signed: bool = False


def parse_time(value: object) -> _dt.datetime | None:
    """An RFC 3339 time from the facts, or None (the picture says "unknown" rather than failing)."""
    from diagkit.context import parse_time as parse

    if not isinstance(value, str):
        return None
    try:
        return parse(value)
    except ValueError:
        return None


def _cn(name: str) -> str:
    """The CN of an RFC 4514 name when it has one, else the whole name."""
    for part in name.split(","):
        key, _, value = part.partition("=")
        if key.strip().upper() == "CN" and value:
            return value
    return name


def _days(delta: _dt.timedelta) -> str:
    days = abs(delta.days if delta.days >= 0 else (-delta).days)
    if days >= 730:
        return f"{days // 365} years"
    return f"{days} day{'s' if days != 1 else ''}" if days else f"{int(abs(delta.total_seconds()) // 3600)} h"


def status(cert: Cert, at: _dt.datetime | None) -> tuple[str, str]:
    """(severity, words) of the certificate's validity at the capture time."""
    if at is None or cert.not_before is None or cert.not_after is None:
        return "info", "validity unknown"
    if at < cert.not_before:
        return "fail", f"not yet valid at capture (starts in {_days(cert.not_before - at)})"
    if at > cert.not_after:
        return "fail", f"expired {_days(at - cert.not_after)} before capture"
    if cert.not_after - at <= SOON:
        return "warn", f"valid at capture, expires {_days(cert.not_after - at)} later"
    return "pass", f"valid at capture ({_days(cert.not_after - at)} left)"


def _bar(cert: Cert, at: _dt.datetime | None, x: float, y: float, width: float, colour: str) -> list[str]:
    """The validity period as a bar with the capture time on it; the scale spans both, so `at` is visible."""
    if cert.not_before is None or cert.not_after is None:
        return [text(x, y + 10, "validity dates missing", size=11, fill="#556")]
    points = [cert.not_before, cert.not_after] + ([at] if at else [])
    lo, hi = min(points), max(points)
    pad = max((hi - lo) * 0.04, _dt.timedelta(days=1))
    lo, hi = lo - pad, hi + pad
    scale = width / max((hi - lo).total_seconds(), 1.0)

    def pos(moment: _dt.datetime) -> float:
        return x + (moment - lo).total_seconds() * scale

    out = [f'<rect x="{x}" y="{y + 4}" width="{width}" height="6" fill="#eceff4" rx="3"/>',
           f'<rect x="{pos(cert.not_before):.1f}" y="{y + 1}" width="{max(pos(cert.not_after) - pos(cert.not_before), 2):.1f}" '
           f'height="12" fill="{colour}" opacity=".75" rx="3"><title>{esc(_iso(cert.not_before))} to '
           f"{esc(_iso(cert.not_after))}</title></rect>",
           text(pos(cert.not_before), y + 28, _iso(cert.not_before)[:10], size=10, anchor="start", fill="#556"),
           text(pos(cert.not_after), y + 28, _iso(cert.not_after)[:10], size=10, anchor="end", fill="#556")]
    if at is not None:
        ax = pos(at)
        out.append(f'<line x1="{ax:.1f}" y1="{y - 4}" x2="{ax:.1f}" y2="{y + 18}" stroke="#1d2330" stroke-width="2">'
                   f"<title>capture time {esc(_iso(at))}</title></line>")
        out.append(text(ax, y - 7, "capture", size=10, anchor="middle", weight="600"))
    return out


def _iso(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def chain_svg(certs: list[Cert], captured_at: _dt.datetime | None, *, trusted: bool | None = None,
              host: str = "") -> str:
    """The chain picture; an empty chain draws one line saying the server sent no certificate."""
    height = TOP + max(1, len(certs)) * (BOX_H + GAP) + 10
    title = f"Certificate chain presented by {host}" if host else "Certificate chain as presented"
    trust = {True: "the chain validates to a trusted root", False: "the chain does not validate to a trusted root",
             None: "trust not recorded"}[trusted]
    body = [text(8, 20, shorten(f"{title}: {len(certs)} certificate{'s' if len(certs) != 1 else ''}; {trust}", 120),
                 size=13, weight="600", fill=SEVERITY_COLOUR["fail"] if trusted is False else "#1d2330")]
    if not certs:
        body.append(text(8, TOP + 20, "The server sent no certificate.", fill="#556"))
    for n, cert in enumerate(certs):
        y = TOP + n * (BOX_H + GAP)
        sev, words = status(cert, captured_at)
        colour = SEVERITY_COLOUR[sev] if sev != "info" else "#78909c"
        role = "server (leaf)" if n == 0 else ("self-signed root" if cert.self_signed else "intermediate")
        tip = "\n".join(x for x in (f"subject: {cert.subject}", f"issuer: {cert.issuer}", cert.key and f"key: {cert.key}",
                                    cert.fingerprint and f"SHA-256: {cert.fingerprint}") if x)
        body.append(f"<g><title>{esc(tip)}</title>")
        body.append(f'<rect x="4" y="{y}" width="{WIDTH - 8}" height="{BOX_H}" rx="6" fill="#fff" '
                    f'stroke="{colour}" stroke-width="2"/>')
        body.append(f'<rect x="4" y="{y}" width="8" height="{BOX_H}" rx="3" fill="{colour}"/>')
        body.append(text(22, y + 22, f"#{n} {role}", size=11, fill="#556"))
        body.append(text(22, y + 42, shorten(_cn(cert.subject), 60), size=15, weight="600"))
        body.append(text(22, y + 62, shorten(f"issued by {_cn(cert.issuer)}", 70), size=12, fill="#445"))
        body.append(text(22, y + 82, shorten(f"{words}" + (f" · {cert.key}" if cert.key else ""), 70), size=12,
                         fill=colour if sev in ("fail", "warn") else "#2e7d32" if sev == "pass" else "#556",
                         weight="600" if sev in ("fail", "warn") else "normal"))
        body += _bar(cert, captured_at, 560, y + 40, WIDTH - 600, colour)
        body.append("</g>")
        if n + 1 < len(certs):
            linked = certs[n + 1].subject == cert.issuer
            ax, ay = 60, y + BOX_H
            stroke = "#556" if linked else SEVERITY_COLOUR["fail"]
            body.append(f'<line x1="{ax}" y1="{ay + 4}" x2="{ax}" y2="{ay + GAP - 6}" stroke="{stroke}" stroke-width="2"/>')
            body.append(f'<path d="M{ax - 5} {ay + GAP - 11} L{ax} {ay + GAP - 3} L{ax + 5} {ay + GAP - 11}" '
                        f'fill="none" stroke="{stroke}" stroke-width="2"/>')
            body.append(text(ax + 12, ay + GAP / 2 + 4, "issued by the next certificate" if linked else
                             "issuer is NOT the next certificate (out of order or missing intermediate)",
                             size=11, fill=stroke))
    if certs and not certs[-1].self_signed:
        y = TOP + len(certs) * (BOX_H + GAP) - GAP + 16
        body.append(text(22, y, shorten(f"root not sent: {_cn(certs[-1].issuer)} (clients must already trust it)", 110),
                         size=11, fill="#556"))
    return document(WIDTH, height, title, body)


def certs_of(facts: dict) -> list[Cert] | None:
    """The chain the tls probe recorded (facts["chain"], server first), or None when it recorded none."""
    chain = facts.get("chain") if isinstance(facts, dict) else None
    if not isinstance(chain, list):
        return None
    out = []
    for item in chain:
        item = item if isinstance(item, dict) else {}
        # The tls probe writes key_type/key_size/sha256; certs.describe (SSO probes) key/fingerprint_sha256.
        key = item.get("key") or " ".join(str(item[k]) for k in ("key_type", "key_size") if item.get(k))
        out.append(Cert(subject=str(item.get("subject") or "?"), issuer=str(item.get("issuer") or "?"),
                        not_before=parse_time(item.get("not_before")), not_after=parse_time(item.get("not_after")),
                        key=str(key or ""), fingerprint=str(item.get("sha256") or item.get("fingerprint_sha256") or ""),
                        self_signed=item.get("self_signed") is True))
    return out
