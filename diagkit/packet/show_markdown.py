"""`packet show --markdown` and summary.md: ticket-ready Markdown that is also plain-text safe.

Plain-text safe: no HTML entities anywhere (a ticket system that prints Markdown as text shows what it
says), so a title with `&` or `<` reads as written. Still safe when rendered: Markdown metacharacters
that could change the page are backslash-escaped instead (`|` cannot break a table, `[`/`]` cannot make
a link or an image that loads something, `<` before a tag name or autolink cannot make raw HTML, `&`
before an entity name cannot become a character), and multi-line values go in fenced blocks whose fence
is longer than any backtick run inside, so nothing in them is interpreted and their lines stay.
"""

from __future__ import annotations

import re
from typing import Any

from diagkit.findings import Finding, ProbeResult, Severity
from diagkit.packet.show import (
    PacketView,
    counts_text,
    groups_of,
    readiness_items,
    size_text,
    value_text,
    visible_view,
    worst_problem,
)

BADGE = {Severity.FAIL: "🔴 FAIL", Severity.ERROR: "🟣 ERROR", Severity.WARN: "🟡 WARN",
         Severity.INFO: "🔵 INFO", Severity.PASS: "🟢 PASS"}

# A backslash only escapes ASCII punctuation (CommonMark §2.4), so it is doubled only there.
_BACKSLASH = re.compile(r"\\(?=[!-/:-@\[-`{-~])")
_ALWAYS = re.compile(r"([`*\[\]|])")
_TAG = re.compile(r"<(?=[A-Za-z/!?])")              # raw HTML and autolinks start like this
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")        # &amp; &#60; &#x3c; would become a character
_STRIKE = re.compile(r"~(?=~)")


def inline(value: Any) -> str:
    """One line of text for a table cell or a list item: whitespace collapsed, metacharacters escaped."""
    text = " ".join(value_text(value).split())
    text = _BACKSLASH.sub(r"\\\\", text)
    text = _ALWAYS.sub(r"\\\1", text)
    text = _TAG.sub(r"\\<", text)
    text = _ENTITY.sub(r"\\&", text)
    return _STRIKE.sub(r"\\~", text) or " "


def code(value: Any) -> str:
    """An inline code span (ids, hashes): a fence longer than any backtick run; `|` escaped for tables."""
    text = " ".join(value_text(value).split())
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


def block(value: Any) -> list[str]:
    """A fenced block that keeps every line as written and interprets none of it."""
    text = value_text(value)
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return [fence + "text", *text.splitlines(), fence]


def _finding_row(result: ProbeResult, finding: Finding) -> str:
    return (f"| {BADGE[finding.severity]} | {inline(finding.title)} | {code(finding.id)} | "
            f"{inline(result.probe)} {inline(result.target)} |")


def _details(rows: list[tuple[ProbeResult, Finding]]) -> list[str]:
    """What each problem finding says and how to fix it; a multi-line detail keeps its lines."""
    out: list[str] = []
    for _result, finding in rows:
        if finding.severity not in (Severity.FAIL, Severity.ERROR, Severity.WARN):
            continue
        if not (finding.detail or finding.remediation):
            continue
        line = f"- **{inline(finding.title)}** ({code(finding.id)})"
        lines = finding.detail.splitlines()
        if len(lines) == 1:
            line += f": {inline(lines[0])}" + ("" if lines[0].rstrip().endswith((".", "!", "?")) else ".")
        if finding.remediation:
            line += f" Fix: {inline(finding.remediation)}"
        out.append(line)
        if len(lines) > 1:
            out += ["", *["  " + x for x in block(finding.detail)], ""]
    return out


def render(view: PacketView, *, summary: bool = False) -> str:
    """Ticket-ready Markdown; `summary=True` leaves out what changes per build (id, time, signer)."""
    view = visible_view(view)
    groups = groups_of(view)
    causes = [g.cause for g in groups if g.cause is not None]
    out = ["## Escalation packet" if summary else f"## Escalation packet {inline(view.packet_id or '')}", ""]
    if not summary:
        if view.signer:
            out.append(f"- **Signature:** valid, signer {code(view.signer['key_id'])} "
                       f"({'pinned' if view.signer.get('pinned') else 'not pinned'})")
        if view.created_at:
            out.append(f"- **Created:** {inline(view.created_at)} by diagkit {inline(view.tool_version or '?')}")
        if view.encrypted_to:
            out.append(f"- **Encrypted to:** {inline(', '.join(view.encrypted_to))}")
    if view.checklist:
        out.append(f"- **Checklist:** {inline(view.checklist)}")
    out.append(f"- **Findings:** {counts_text(view.findings())}")

    out += ["", "### Likely causes (worst first)", ""]
    for n, cause in enumerate(causes, 1):
        out.append(f"{n}. {BADGE[cause.severity]} **{inline(cause.cause)}**")
        if cause.next_step:
            out.append(f"   - Next step: {inline(cause.next_step)}")
        out.append("   - Findings: " + ", ".join(code(i) for i in cause.findings))
    if not causes:
        worst = worst_problem(view)
        if worst is None:
            out.append("_None: no finding is worse than info._")
        else:
            finding = worst[1]
            out.append(f"No diagnosis rule ties these findings. The worst: {BADGE[finding.severity]} "
                       f"**{inline(finding.title)}** ({code(finding.id)})"
                       + (f". Next step: {inline(finding.remediation)}" if finding.remediation else ""))

    out += ["", "### Findings by cause (worst first)"]
    number = {id(c): n for n, c in enumerate(causes, 1)}
    for group in groups:
        if group.cause is not None:
            out += ["", f"#### Cause {number[id(group.cause)]}: {inline(group.cause.cause)}", ""]
        else:
            out += ["", "#### Other findings" if causes else "#### All findings", ""]
        if not group.rows:
            out.append("_Its findings are not in this packet's results._")
            continue
        out += ["| Severity | Finding | Id | Probe and target |", "|---|---|---|---|"]
        out += [_finding_row(r, f) for r, f in group.rows]
    if not view.findings():
        out += ["", "_No findings._"]
    details = _details([rf for g in groups for rf in g.rows])
    if details:
        out += ["", "#### What the findings say", "", *details]

    if view.readiness:
        out += ["", "### Readiness", "", "| Item | Value |", "|---|---|"]
        out += [f"| {inline(k)} | {inline(v)} |" for k, v in readiness_items(view.readiness)]
    out += ["", "### Case", ""]
    single = {k: v for k, v in sorted(view.case.items()) if len(value_text(v).splitlines()) <= 1}
    multi = {k: v for k, v in sorted(view.case.items()) if k not in single}
    if single:
        out += ["| Field | Value |", "|---|---|"]
        out += [f"| {inline(k)} | {inline(v)} |" for k, v in single.items()]
    for key, value in multi.items():  # answers over several lines keep their lines
        out += ["", f"**{inline(key)}:**", "", *block(value)]
    if not view.case:
        out.append("_No case fields._")

    out += ["", "### Evidence", ""]
    if view.evidence:
        out += ["| File | Size | SHA-256 | Note |", "|---|---|---|---|"]
        out += [f"| {code(e['name'])} | {size_text(int(e['size']))} | {code(str(e['sha256'])[:16] + '…')} | "
                f"{inline(e.get('note') or '')} |" for e in view.evidence]
    else:
        out.append("_No evidence files._")
    return "\n".join(out) + "\n"
