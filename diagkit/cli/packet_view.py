"""`packet show` on a terminal: the packet view (diagkit/packet/show.py) as styled text, likely causes first.

Styles are ANSI codes that click drops when the output is not a terminal or NO_COLOR is set, so the
text is the same with and without colour. Every string is made visible first (packet.show.visible_view).
"""

from __future__ import annotations

from typing import Any

import click

from diagkit.cli.render import render_finding, severity_label
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


def _lines(value: Any, indent: str) -> str:
    """A value on one line, or its lines with the continuation lines indented (multi-line answers)."""
    return ("\n" + indent).join(value_text(value).splitlines() or [""])


def render_packet(view: PacketView, source: str) -> str:
    from diagkit.visible import visible

    view, source = visible_view(view), visible(source)
    groups = groups_of(view)
    causes = [g.cause for g in groups if g.cause is not None]

    out = [click.style("packet ", bold=True) + f"{source}  {view.packet_id or ''}"]
    if view.signer:
        out.append(f"  signature  valid, signer {signer_text(view.signer)}")
    if view.created_at:
        out.append(f"  created    {view.created_at} by diagkit {view.tool_version or '?'}")
    if view.encrypted_to:
        out.append(f"  encrypted  to {', '.join(view.encrypted_to)}")
    if view.checklist:
        out.append(f"  checklist  {view.checklist}")
    out.append(f"  findings   {counts_text(view.findings())}")
    # First screen: what is most likely wrong and what to do next.
    out.append(click.style("likely causes (worst first)", bold=True))
    for n, cause in enumerate(causes, 1):
        out.append(f"  {n}. {severity_label(cause.severity)} {cause.cause}"
                   + (click.style(f"  [{cause.rule}]", dim=True) if cause.rule else ""))
        if cause.next_step:
            out.append("        " + click.style("next step: ", bold=True) + cause.next_step)
        out.append(click.style("        findings: " + ", ".join(cause.findings), dim=True))
    if not causes:
        worst = worst_problem(view)
        if worst is None:
            out.append("  none: no finding is worse than info")
        else:
            out.append("  no diagnosis rule ties these findings; the worst one:")
            out.append(f"  {severity_label(worst[1].severity)} {worst[1].title}  [{worst[1].id}]")
            if worst[1].remediation:
                out.append("        " + click.style("next step: ", bold=True) + worst[1].remediation)
    out.append(click.style("findings by cause (worst first)", bold=True))
    number = {id(c): n for n, c in enumerate(causes, 1)}
    for group in groups:
        if group.cause is not None:
            out.append(click.style(f"  cause {number[id(group.cause)]}: {group.cause.cause}", bold=True))
        elif causes:
            out.append(click.style("  other findings", bold=True))
        for result, finding in group.rows:
            lines = render_finding(finding, indent="  " if causes else "")
            lines[0] += click.style(f"  {result.probe} {result.target}", dim=True)
            out += lines
    if not view.findings():
        out.append("  (no findings)")
    if view.readiness:
        out.append(click.style("readiness", bold=True))
        out += [f"  {k}: {v}" for k, v in readiness_items(view.readiness)]
    out.append(click.style("case", bold=True))
    out += [f"  {k}: {_lines(v, '    ')}" for k, v in sorted(view.case.items())] or ["  (no case fields)"]
    out.append(click.style("evidence", bold=True))
    out += [f"  {e['name']}  {size_text(int(e['size']))}  sha256:{e['sha256']}" + (f"  ({e['note']})" if e.get("note") else "")
            for e in view.evidence] or ["  (no evidence files)"]
    return "\n".join(out)
