"""`packet show --html`: one self-contained page, in the engineer's reading order, with pictures.

Guarantees: no script and no external resource (a CSP meta tag forbids both: `default-src 'none'`, inline
styles only), so opening the page never touches the network; it reads without JavaScript and prints
(print CSS opens the folded facts). Every string from the packet went through `visible_view` (control and
bidi characters made visible) and is HTML-escaped here; SVG pictures escape theirs the same way (pictures/svg.py).
A picture that cannot be drawn from odd but valid contents is replaced by a note: the page is always written.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any

from diagkit.findings import Finding, ProbeResult, Severity
from diagkit.packet.show import (
    PacketView,
    counts_text,
    groups_of,
    readiness_items,
    signer_text,
    size_text,
    value_text,
    visible_view,
    worst_problem,
)

CSP = "default-src 'none'; style-src 'unsafe-inline'"
MAX_LIST, MAX_TABLE_ROWS, MAX_TABLE_COLUMNS, MAX_DEPTH = 50, 100, 6, 6

_CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5rem auto;max-width:74rem;color:#1d2330;padding:0 1rem}
h1{font-size:1.35rem;margin:.2rem 0}h2{font-size:1.15rem;margin-top:2rem;border-bottom:2px solid #dde3ee;padding-bottom:.2rem}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e6e9f2;vertical-align:top;overflow-wrap:anywhere}
th{background:#f3f5fa;font-weight:600}
code{font:12px ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.sev{display:inline-block;font-weight:700;font-size:11px;border-radius:3px;padding:1px 6px;color:#fff;white-space:nowrap;
 -webkit-print-color-adjust:exact;print-color-adjust:exact}
.fail{background:#c62828}.error{background:#7b1fa2}.warn{background:#b7791f}.info{background:#1565c0}.pass{background:#2e7d32}
.meta{color:#445;margin:.2rem 0 0;padding:0;list-style:none}.meta li{overflow-wrap:anywhere}
.muted{color:#667}.multi{white-space:pre-wrap}
nav{margin:.8rem 0;font-size:13px}nav a{margin-right:1rem;color:#1a4fa0}
.cause{border:1px solid #dde3ee;border-left:6px solid #78909c;border-radius:4px;padding:.6rem .8rem;margin:.6rem 0}
.cause.fail{border-left-color:#c62828;background:#fff7f7}.cause.error{border-left-color:#7b1fa2;background:#fbf6fd}
.cause.warn{border-left-color:#b7791f;background:#fffbf2}.cause.info{border-left-color:#1565c0;background:#f5f9ff}
.cause .what{font-size:1.05rem;font-weight:600;margin-left:.3rem}.cause .next{margin:.35rem 0 .2rem}
.cause .ids{font-size:12px;color:#556}
col.sevcol{width:6.5rem}col.wherecol{width:15rem}table.two th:first-child{width:14rem}
dl.kv{display:grid;grid-template-columns:minmax(6rem,max-content) 1fr;gap:.1rem .8rem;margin:.35rem 0;font-size:12.5px}
dl.kv dt{color:#556;overflow-wrap:anywhere}dl.kv dd{margin:0;overflow-wrap:anywhere}
.fix{margin-top:.3rem}.detail{margin:.2rem 0}
figure{margin:1rem 0;border:1px solid #dde3ee;border-radius:4px;padding:.6rem;break-inside:avoid;page-break-inside:avoid}
figcaption{font-weight:600;margin-bottom:.4rem;overflow-wrap:anywhere}
figure svg{display:block;width:100%;height:auto;max-width:100%}
details{margin:.4rem 0;border:1px solid #e6e9f2;border-radius:4px;padding:.3rem .6rem}
summary{cursor:pointer;font-weight:600;overflow-wrap:anywhere}
table.facts{font-size:12.5px;table-layout:auto}ol.records{padding-left:1.4rem;margin:.3rem 0}ol.records>li{border-bottom:1px solid #eef}table.facts td,table.facts th{padding:.2rem .4rem}
@page{margin:1.5cm}
@media print{
 body{margin:0;max-width:none;font-size:11pt}nav{display:none}
 details{border:none;padding:0}details::details-content{content-visibility:visible;display:contents}
 h2{break-after:avoid}tr,.cause{break-inside:avoid}a{color:inherit;text-decoration:none}
}
"""


def e(value: Any) -> str:
    """Escaped text of a value (strings were made visible by visible_view already)."""
    return html.escape(value_text(value), quote=True)


def _badge(severity: Severity | str) -> str:
    name = severity.value if isinstance(severity, Severity) else str(severity)
    return f'<span class="sev {e(name)}">{e(name.upper())}</span>'


def value_html(value: Any, depth: int = 0) -> str:
    """Facts and evidence as readable rows: dicts as key/value lists, lists of records as tables."""
    if value is None:
        return '<span class="muted">none</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str | int | float):
        return f'<span class="multi">{e(value)}</span>' if isinstance(value, str) and "\n" in value else e(value)
    if depth >= MAX_DEPTH:
        return f"<code>{e(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)[:2000])}</code>"
    if isinstance(value, dict):
        if not value:
            return '<span class="muted">none</span>'
        rows = "".join(f"<dt>{e(k)}</dt><dd>{value_html(v, depth + 1)}</dd>" for k, v in value.items())
        return f'<dl class="kv">{rows}</dl>'
    if isinstance(value, list | tuple):
        items = list(value)
        if not items:
            return '<span class="muted">none</span>'
        more = f' <span class="muted">… {len(items) - MAX_LIST} more</span>' if len(items) > MAX_LIST else ""
        if all(not isinstance(v, dict | list | tuple) for v in items):
            return ", ".join(value_html(v, depth + 1) for v in items[:MAX_LIST]) + more
        if all(isinstance(v, dict) for v in items):
            keys: list[str] = []
            for item in items[:MAX_TABLE_ROWS]:
                keys += [k for k in item if k not in keys]
            flat = all(not isinstance(v, dict | list) or not v for item in items for v in item.values())
            if len(keys) <= MAX_TABLE_COLUMNS and flat:  # records of a few plain fields read best as a table
                head = "".join(f"<th>{e(k)}</th>" for k in keys)
                body = "".join("<tr>" + "".join(f"<td>{value_html(item.get(k), depth + 1) if k in item else ''}</td>"
                                                for k in keys) + "</tr>" for item in items[:MAX_TABLE_ROWS])
                extra = (f'<p class="muted">… {len(items) - MAX_TABLE_ROWS} more rows</p>'
                         if len(items) > MAX_TABLE_ROWS else "")
                return f'<table class="facts"><tr>{head}</tr>{body}</table>{extra}'
            # wide or nested records (a certificate, a SAML message) as one key/value list each
            return ('<ol class="records">' + "".join(f"<li>{value_html(v, depth + 1)}</li>" for v in items[:MAX_LIST])
                    + "</ol>" + more)
        return "<ul>" + "".join(f"<li>{value_html(v, depth + 1)}</li>" for v in items[:MAX_LIST]) + "</ul>" + more
    return e(value)


def _finding_cell(finding: Finding) -> str:
    parts = [f"<strong>{e(finding.title)}</strong> <code>{e(finding.id)}</code>"]
    if finding.detail:
        parts.append(f'<div class="detail multi">{e(finding.detail)}</div>')
    if finding.evidence:
        parts.append(value_html(finding.evidence))
    if finding.remediation and finding.severity in (Severity.FAIL, Severity.ERROR, Severity.WARN):
        parts.append(f'<div class="fix"><em>Fix:</em> {e(finding.remediation)}</div>')
    return "".join(parts)


def _findings_table(rows: list[tuple[ProbeResult, Finding]]) -> str:
    out = ['<table><colgroup><col class="sevcol"><col><col class="wherecol"></colgroup>'
           "<tr><th>Severity</th><th>Finding</th><th>Probe and target</th></tr>"]
    out += [f"<tr><td>{_badge(f.severity)}</td><td>{_finding_cell(f)}</td>"
            f"<td>{e(r.probe)}<br><code>{e(r.target)}</code></td></tr>" for r, f in rows]
    return "".join(out) + "</table>"


def _har_bytes(view: PacketView, target: str) -> bytes | None:
    """The HAR evidence a har result read: the member named by its target, else the one with its file name."""
    if target in view.evidence_data:
        return view.evidence_data[target]
    base = os.path.basename(target.replace("\\", "/"))
    named = [n for n in sorted(view.evidence_data) if os.path.basename(n) == base]
    return view.evidence_data[named[0]] if named else None


def pictures(view: PacketView) -> list[tuple[str, str]]:
    """(caption, svg or a note) for each picture the packet's results and evidence allow."""
    from diagkit.formats import har as hf
    from diagkit.packet.pictures import chain, har_data, sso, waterfall

    out: list[tuple[str, str]] = []
    for result in view.results:
        try:
            if result.probe == "har":
                data = _har_bytes(view, result.target)
                if data is None:
                    continue
                try:
                    har = hf.parse_har_bytes(data, result.target)
                except Exception:  # noqa: BLE001 - any unreadable HAR: the har probe said so as a finding
                    continue
                rows = har_data.requests_of(har, result)
                total = len(har_data.entries_of(har))
                out.append((f"HAR waterfall: {result.target}", waterfall.waterfall_svg(rows, total_entries=total)))
                flow = har_data.sso_of(har, result)
                if flow is not None:
                    lanes, hops, count = flow
                    out.append((f"SSO flow: {result.target}", sso.sso_svg(lanes, hops, total_hops=count)))
            elif result.probe == "tls":
                certs = chain.certs_of(result.facts)
                if certs is not None:
                    trusted = result.facts.get("trusted")
                    out.append((f"Certificate chain: {result.target}",
                                chain.chain_svg(certs, result.started_at, trusted=trusted if isinstance(trusted, bool)
                                                else None, host=result.target)))
        except Exception as exc:  # noqa: BLE001 - a picture never stops the page (module docstring)
            out.append((f"{result.probe} {result.target}",
                        f'<p class="muted">This picture could not be drawn ({e(type(exc).__name__)}).</p>'))
    return out


def render(view: PacketView, source: str) -> str:
    from diagkit.visible import visible

    view, source = visible_view(view), visible(source)
    groups = groups_of(view)
    causes = [g.cause for g in groups if g.cause is not None]
    pics = pictures(view)

    meta = [("File", source)]
    if view.signer:
        meta.append(("Signature", f"valid, signer {signer_text(view.signer)}"))
    if view.created_at:
        meta.append(("Created", f"{view.created_at} by diagkit {view.tool_version or '?'}"))
    if view.encrypted_to:
        meta.append(("Encrypted to", ", ".join(view.encrypted_to)))
    if view.checklist:
        meta.append(("Checklist", view.checklist))
    meta.append(("Findings", counts_text(view.findings())))
    p = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         f"<title>Escalation packet {e(view.packet_id or '')}</title><style>{_CSS}</style></head><body>",
         f"<header><h1>Escalation packet <code>{e(view.packet_id or '')}</code></h1><ul class=\"meta\">"]
    p += [f"<li><strong>{e(k)}:</strong> {e(v)}</li>" for k, v in meta]
    p.append('</ul></header><nav><a href="#causes">Likely causes</a><a href="#findings">Findings</a>'
             '<a href="#readiness">Readiness and case</a><a href="#evidence">Evidence and pictures</a></nav>')

    p.append('<section id="causes"><h2>Likely causes (worst first)</h2>')
    for n, cause in enumerate(causes, 1):
        p.append(f'<div class="cause {e(cause.severity.value)}">{_badge(cause.severity)}'
                 f'<span class="what">{n}. {e(cause.cause)}</span>'
                 + (f'<div class="next"><strong>Next step:</strong> {e(cause.next_step)}</div>' if cause.next_step else "")
                 + '<div class="ids">Findings: ' + ", ".join(f"<code>{e(i)}</code>" for i in cause.findings)
                 + "</div></div>")
    if not causes:
        worst = worst_problem(view)
        if worst is None:
            p.append('<p class="muted">None: no finding is worse than info.</p>')
        else:
            f = worst[1]
            p.append(f'<div class="cause {e(f.severity.value)}">{_badge(f.severity)}<span class="what">'
                     f"{e(f.title)}</span><div class=\"ids\">No diagnosis rule ties these findings; this is the worst "
                     f"(<code>{e(f.id)}</code>).</div>"
                     + (f'<div class="next"><strong>Next step:</strong> {e(f.remediation)}</div>' if f.remediation else "")
                     + "</div>")
    p.append("</section>")

    p.append('<section id="findings"><h2>Findings by cause (worst first)</h2>')
    number = {id(c): n for n, c in enumerate(causes, 1)}
    for group in groups:
        if group.cause is not None:
            p.append(f"<h3>Cause {number[id(group.cause)]}: {e(group.cause.cause)}</h3>")
        else:
            p.append("<h3>Other findings</h3>" if causes else "<h3>All findings</h3>")
        p.append(_findings_table(group.rows) if group.rows else
                 '<p class="muted">Its findings are not in this packet\'s results.</p>')
    if not view.findings():
        p.append('<p class="muted">No findings.</p>')
    p.append("</section>")

    p.append('<section id="readiness"><h2>Readiness and case</h2>')
    if view.readiness:
        p.append('<h3>Readiness</h3><table class="two"><tr><th>Item</th><th>Value</th></tr>')
        p += [f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in readiness_items(view.readiness)]
        p.append("</table>")
    p.append("<h3>Case</h3>")
    if view.case:
        p.append('<table class="two"><tr><th>Field</th><th>Value</th></tr>')
        p += [f'<tr><td>{e(k)}</td><td class="multi">{e(v)}</td></tr>' for k, v in sorted(view.case.items())]
        p.append("</table>")
    else:
        p.append('<p class="muted">No case fields.</p>')
    p.append("</section>")

    p.append('<section id="evidence"><h2>Evidence</h2>')
    for caption, svg in pics:
        p.append(f"<figure><figcaption>{e(caption)}</figcaption>{svg}</figure>")
    p.append("<h3>Facts</h3>")
    for result in view.results:
        p.append(f"<details><summary>{e(result.probe)} <code>{e(result.target)}</code> "
                 f'<span class="muted">({e(result.started_at.isoformat())}, {e(result.duration_ms)} ms)</span>'
                 f"</summary>{value_html(result.facts) if result.facts else '<p class=muted>No facts recorded.</p>'}"
                 "</details>")
    if not view.results:
        p.append('<p class="muted">No probe results.</p>')
    p.append("<h3>Files</h3>")
    if view.evidence:
        p.append("<table><tr><th>File</th><th>Size</th><th>SHA-256</th><th>Note</th></tr>")
        p += [f"<tr><td><code>{e(x['name'])}</code></td><td>{e(size_text(int(x['size'])))}</td>"
              f"<td><code>{e(x['sha256'])}</code></td><td>{e(x.get('note') or '')}</td></tr>" for x in view.evidence]
        p.append("</table>")
    else:
        p.append('<p class="muted">No evidence files.</p>')
    p.append("</section></body></html>")
    return "\n".join(p) + "\n"
