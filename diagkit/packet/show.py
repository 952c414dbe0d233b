"""Rendering a packet for people: terminal, Markdown (ticket-ready tables), self-contained HTML, JSON.

Also renders summary.md at build time, so the summary inside a packet and `packet show --markdown`
read the same. Everything shown comes from a verified packet, and even so every string in it is made
visible first (control, bidi and format characters as `\x1b`, `\u202e`; see diagkit/visible.py): a signed
packet is only as honest as its signer. HTML escapes every value on top of that.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from diagkit.findings import Finding, ProbeResult, Severity

_BADGE = {Severity.FAIL: "🔴 FAIL", Severity.ERROR: "🟣 ERROR", Severity.WARN: "🟡 WARN",
          Severity.INFO: "🔵 INFO", Severity.PASS: "🟢 PASS"}


@dataclass
class PacketView:
    """What is shown of a packet; built from a VerifiedPacket, or from build inputs for summary.md."""

    case: dict[str, Any]
    results: list[ProbeResult]
    evidence: list[dict[str, Any]]            # name, size, sha256, media_type, note
    checklist: str | None = None
    readiness: dict[str, Any] | None = None
    packet_id: str | None = None
    created_at: str | None = None
    tool_version: str | None = None
    signer: dict[str, Any] | None = None      # key_id, pinned, trusted_by
    encrypted_to: list[str] = field(default_factory=list)
    environment: dict[str, Any] | None = None
    redaction: dict[str, Any] | None = None
    findings_summary: dict[str, Any] | None = None

    def findings(self) -> list[tuple[ProbeResult, Finding]]:
        """Every finding with its result, worst first, stable within a severity."""
        rows = [(r, f) for r in self.results for f in r.findings]
        return sorted(rows, key=lambda rf: -rf[1].severity.rank)


def view_of(packet: Any) -> PacketView:
    """A PacketView of a VerifiedPacket (diagkit.packet.verify)."""
    from diagkit.packet import format as fmt

    pred = packet.predicate
    sizes = {m.get("name"): m for m in pred.get("members") or [] if isinstance(m, dict)}
    digests = {s["name"]: s["digest"]["sha256"] for s in packet.manifest["subject"]}
    evidence = [{"name": n, "size": len(packet.members[n]), "sha256": digests[n],
                 "media_type": str(sizes.get(n, {}).get("media_type", "")), "note": str(sizes.get(n, {}).get("note", ""))}
                for n in sorted(digests) if n.startswith(fmt.EVIDENCE_DIR)]
    return PacketView(
        case=dict(pred.get("case") or {}),
        results=packet.results(),
        evidence=evidence,
        checklist=pred.get("checklist"),
        readiness=pred.get("readiness"),
        packet_id=packet.packet_id,
        created_at=pred.get("created_at"),
        tool_version=(pred.get("tool") or {}).get("version"),
        signer={"key_id": packet.signer.key_id, "pinned": packet.pinned, "trusted_by": packet.trusted_by,
                "public_key": packet.signer.line(comment=False)},
        encrypted_to=list(packet.recipients),
        environment=pred.get("environment"),
        redaction=pred.get("redaction"),
        findings_summary=pred.get("findings"),
    )


def visible_view(view: PacketView) -> PacketView:
    """A copy of `view` whose every string is safe to print; a finding's detail keeps its newlines."""
    from dataclasses import replace

    from diagkit.findings import parse_results_document
    from diagkit.visible import visible, visible_tree

    def opt(value: Any) -> Any:
        return None if value is None else visible(value)

    results = parse_results_document(
        {"results": [visible_tree(r.to_dict(), multiline_keys=frozenset({"detail"})) for r in view.results]})
    return replace(view, case=visible_tree(view.case), results=results, evidence=visible_tree(view.evidence),
                   checklist=opt(view.checklist), readiness=visible_tree(view.readiness), packet_id=opt(view.packet_id),
                   created_at=opt(view.created_at), tool_version=opt(view.tool_version),
                   signer=visible_tree(view.signer), encrypted_to=visible_tree(view.encrypted_to),
                   environment=visible_tree(view.environment), redaction=visible_tree(view.redaction),
                   findings_summary=visible_tree(view.findings_summary))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _signer_text(signer: dict[str, Any]) -> str:
    if signer.get("pinned"):
        return f"{signer['key_id']} (pinned via {signer.get('trusted_by')})"
    return f"{signer['key_id']} (not pinned: confirm this key id with the sender)"


_READINESS_LABELS = {"ready": "Ready", "score": "Score", "missing_answers": "Missing answers",
                     "missing_evidence": "Missing evidence", "skipped_probes": "Skipped probes"}


def _readiness_value(key: str, value: Any) -> str:
    """Readable text for the readiness shapes `collect` writes; anything else falls back to JSON-ish text."""
    if key == "ready" and isinstance(value, bool):
        return "yes" if value else "no"
    if key == "score" and isinstance(value, int):
        return f"{value}%"
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        if not value:
            return "none"
        parts = []
        for item in value:
            name = item.get("name") or item.get("probe") or "?"
            if "target" in item:
                name = f"{name} {item['target']}"
            missing = item.get("missing_answers") or []
            why = item.get("prompt") or item.get("reason") or (
                ", ".join(map(_text, missing)) if isinstance(missing, list) else _text(missing))
            parts.append(f"{name} ({why})" if why else str(name))
        return "; ".join(parts)
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else "none"
    return _text(value)


def _readiness_items(readiness: dict[str, Any] | None) -> list[tuple[str, str]]:
    order = list(_READINESS_LABELS)
    items = sorted((readiness or {}).items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 99, kv[0]))
    return [(_READINESS_LABELS.get(k, str(k)), _readiness_value(k, v)) for k, v in items]


# ---------------------------------------------------------------- markdown
def _md(value: Any) -> str:
    """One table cell: no pipes, no newlines, no raw HTML (GitHub and Jira render both)."""
    text = " ".join(_text(value).split())
    return (html.escape(text, quote=False).replace("|", "\\|").replace("`", "\\`")
            .replace("[", "\\[").replace("]", "\\]")) or " "


def render_markdown(view: PacketView, *, summary: bool = False) -> str:
    """Ticket-ready Markdown; `summary=True` leaves out what changes per build (id, time, signer)."""
    view = visible_view(view)
    out = ["## Escalation packet" if summary else f"## Escalation packet {_md(view.packet_id or '')}", ""]
    if not summary:
        if view.signer:
            out.append(f"- **Signature:** valid, signer `{view.signer['key_id']}` "
                       f"({'pinned' if view.signer.get('pinned') else 'not pinned'})")
        if view.created_at:
            out.append(f"- **Created:** {_md(view.created_at)} by diagkit {_md(view.tool_version or '?')}")
        if view.encrypted_to:
            out.append(f"- **Encrypted to:** {_md(', '.join(view.encrypted_to))}")
    if view.checklist:
        out.append(f"- **Checklist:** {_md(view.checklist)}")
    rows = view.findings()
    counts = {s: sum(1 for _, f in rows if f.severity is s) for s in Severity}
    out.append("- **Findings:** " + (", ".join(f"{counts[s]} {s.value}" for s in sorted(Severity, key=lambda s: -s.rank)
                                               if counts[s]) or "none"))
    out.append("")
    out += ["### Case", ""]
    if view.case:
        out += ["| Field | Value |", "|---|---|"]
        out += [f"| {_md(k)} | {_md(v)} |" for k, v in sorted(view.case.items())]
    else:
        out.append("_No case fields._")
    if view.readiness:
        out += ["", "### Readiness", "", "| Item | Value |", "|---|---|"]
        out += [f"| {_md(k)} | {_md(v)} |" for k, v in _readiness_items(view.readiness)]
    out += ["", "### Findings (worst first)", ""]
    if rows:
        out += ["| Severity | Finding | Id | Probe | Target |", "|---|---|---|---|---|"]
        out += [f"| {_BADGE[f.severity]} | {_md(f.title)} | `{_md(f.id)}` | {_md(r.probe)} | {_md(r.target)} |"
                for r, f in rows]
        details = [(r, f) for r, f in rows if f.severity in (Severity.FAIL, Severity.ERROR, Severity.WARN)
                   and (f.detail or f.remediation)]
        if details:
            out += ["", "#### What to do", ""]
            for _r, f in details:
                line = f"- **{_md(f.title)}** (`{_md(f.id)}`)"
                if f.detail:
                    line += f": {_md(f.detail)}"
                if f.remediation:
                    line += f" Fix: {_md(f.remediation)}"
                out.append(line)
    else:
        out.append("_No findings._")
    out += ["", "### Evidence", ""]
    if view.evidence:
        out += ["| File | Size | SHA-256 | Note |", "|---|---|---|---|"]
        out += [f"| `{_md(e['name'])}` | {_size(int(e['size']))} | `{e['sha256'][:16]}…` | {_md(e.get('note') or '')} |"
                for e in view.evidence]
    else:
        out.append("_No evidence files._")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- terminal
def render_terminal(view: PacketView, source: str) -> str:
    import click

    from diagkit.render import render_finding
    from diagkit.visible import visible

    view, source = visible_view(view), visible(source)

    out = [click.style("packet ", bold=True) + f"{source}  {view.packet_id or ''}"]
    if view.signer:
        out.append(f"  signature  valid, signer {_signer_text(view.signer)}")
    if view.created_at:
        out.append(f"  created    {view.created_at} by diagkit {view.tool_version or '?'}")
    if view.encrypted_to:
        out.append(f"  encrypted  to {', '.join(view.encrypted_to)}")
    if view.checklist:
        out.append(f"  checklist  {view.checklist}")
    out.append(click.style("case", bold=True))
    out += [f"  {k}: {_text(v)}" for k, v in sorted(view.case.items())] or ["  (no case fields)"]
    if view.readiness:
        out.append(click.style("readiness", bold=True))
        out += [f"  {k}: {v}" for k, v in _readiness_items(view.readiness)]
    out.append(click.style("findings (worst first)", bold=True))
    rows = view.findings()
    for result, finding in rows:
        lines = render_finding(finding)
        lines[0] += click.style(f"  {result.probe} {result.target}", dim=True)
        out += lines
    if not rows:
        out.append("  (no findings)")
    out.append(click.style("evidence", bold=True))
    out += [f"  {e['name']}  {_size(int(e['size']))}  sha256:{e['sha256']}" + (f"  ({e['note']})" if e.get("note") else "")
            for e in view.evidence] or ["  (no evidence files)"]
    return "\n".join(out)


# ---------------------------------------------------------------- json
def to_json(view: PacketView, source: str) -> dict[str, Any]:
    return {
        "packet": {"path": source, "packet_id": view.packet_id, "created_at": view.created_at,
                   "tool_version": view.tool_version, "signer": view.signer, "encrypted_to": view.encrypted_to,
                   "checklist": view.checklist},
        "case": view.case,
        "readiness": view.readiness,
        "environment": view.environment,
        "redaction": view.redaction,
        "findings_summary": view.findings_summary,
        "results": [r.to_dict() for r in view.results],
        "findings": [{"probe": r.probe, "target": r.target, **f.to_dict()} for r, f in view.findings()],
        "evidence": view.evidence,
    }


# ---------------------------------------------------------------- html
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:72rem;color:#1d2330;padding:0 1rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #dde}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eef;vertical-align:top}
th{background:#f5f6fa}code{font:12px ui-monospace,Menlo,monospace;word-break:break-all}
.sev{font-weight:600;border-radius:3px;padding:0 .4rem;color:#fff;white-space:nowrap}
.fail{background:#c62828}.error{background:#7b1fa2}.warn{background:#b7791f}.info{background:#1565c0}.pass{background:#2e7d32}
.meta td:first-child{width:10rem;color:#556}.muted{color:#667}
"""


def render_html(view: PacketView, source: str) -> str:
    from diagkit.visible import visible

    view, source = visible_view(view), visible(source)
    e = html.escape

    def cell(value: Any) -> str:
        return e(_text(value))

    meta = [("Packet", view.packet_id or ""), ("File", source)]
    if view.signer:
        meta.append(("Signature", f"valid, signer {_signer_text(view.signer)}"))
    if view.created_at:
        meta.append(("Created", f"{view.created_at} by diagkit {view.tool_version or '?'}"))
    if view.encrypted_to:
        meta.append(("Encrypted to", ", ".join(view.encrypted_to)))
    if view.checklist:
        meta.append(("Checklist", view.checklist))
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             # No scripts, no remote content: the page is only ever a document.
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
             f"<title>Escalation packet {e(view.packet_id or '')}</title><style>{_CSS}</style></head><body>",
             f"<h1>Escalation packet <code>{e(view.packet_id or '')}</code></h1>", '<table class="meta">']
    parts += [f"<tr><td>{e(k)}</td><td>{cell(v)}</td></tr>" for k, v in meta]
    parts += ["</table>", "<h2>Case</h2>"]
    if view.case:
        parts.append("<table><tr><th>Field</th><th>Value</th></tr>")
        parts += [f"<tr><td>{cell(k)}</td><td>{cell(v)}</td></tr>" for k, v in sorted(view.case.items())]
        parts.append("</table>")
    else:
        parts.append('<p class="muted">No case fields.</p>')
    if view.readiness:
        parts.append("<h2>Readiness</h2><table><tr><th>Item</th><th>Value</th></tr>")
        parts += [f"<tr><td>{cell(k)}</td><td>{cell(v)}</td></tr>" for k, v in _readiness_items(view.readiness)]
        parts.append("</table>")
    parts.append("<h2>Findings (worst first)</h2>")
    rows = view.findings()
    if rows:
        parts.append("<table><tr><th>Severity</th><th>Finding</th><th>Probe</th><th>Target</th></tr>")
        for r, f in rows:
            sev = f.severity.value
            body = f"<strong>{cell(f.title)}</strong><br><code>{cell(f.id)}</code>"
            if f.detail:
                body += f"<br>{cell(f.detail)}"
            if f.evidence:
                body += f'<br><span class="muted">{cell(f.evidence)}</span>'
            if f.remediation and f.severity in (Severity.FAIL, Severity.ERROR, Severity.WARN):
                body += f"<br><em>Fix:</em> {cell(f.remediation)}"
            parts.append(f'<tr><td><span class="sev {sev}">{e(sev.upper())}</span></td><td>{body}</td>'
                         f"<td>{cell(r.probe)}</td><td>{cell(r.target)}</td></tr>")
        parts.append("</table>")
    else:
        parts.append('<p class="muted">No findings.</p>')
    parts.append("<h2>Evidence</h2>")
    if view.evidence:
        parts.append("<table><tr><th>File</th><th>Size</th><th>SHA-256</th><th>Note</th></tr>")
        parts += [f"<tr><td><code>{cell(x['name'])}</code></td><td>{e(_size(int(x['size'])))}</td>"
                  f"<td><code>{cell(x['sha256'])}</code></td><td>{cell(x.get('note') or '')}</td></tr>"
                  for x in view.evidence]
        parts.append("</table>")
    else:
        parts.append('<p class="muted">No evidence files.</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
