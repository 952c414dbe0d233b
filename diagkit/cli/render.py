"""Terminal rendering of probe results: worst findings first, colour only on a terminal."""

from __future__ import annotations

import json
from typing import Any

import click

from diagkit.findings import Finding, ProbeResult, Severity

_COLOURS = {
    Severity.FAIL: "red",
    Severity.ERROR: "magenta",
    Severity.WARN: "yellow",
    Severity.INFO: "cyan",
    Severity.PASS: "green",
}


def severity_label(severity: Severity) -> str:
    return click.style(f"{severity.value.upper():<5}", fg=_COLOURS[severity], bold=severity is Severity.FAIL)


def _fact_value(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        return str(value)
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 160 else text[:157] + "..."


def visible(text: str) -> str:
    """Untrusted text for the terminal (diagkit.visible), keeping its line breaks: the caller indents them."""
    from diagkit.visible import visible as shown

    return shown(text, multiline=True)


def render_finding(finding: Finding, indent: str = "") -> list[str]:
    lines = [f"  {severity_label(finding.severity)} {finding.title}  " + click.style(f"[{finding.id}]", dim=True)]
    if finding.detail and finding.severity is not Severity.PASS:
        lines.extend(f"        {line}" for line in finding.detail.splitlines())
    if finding.evidence and finding.severity is not Severity.PASS:
        for key, value in finding.evidence.items():
            lines.append(f"        {key}: {_fact_value(value)}")
    if finding.remediation and finding.severity in (Severity.WARN, Severity.FAIL, Severity.ERROR):
        lines.append("        " + click.style("fix: ", bold=True) + finding.remediation)
    return [indent + line for line in lines]


def render_diagnosis(result: ProbeResult) -> tuple[list[str], list[Finding]]:
    """The result's likely causes, each with its supporting findings under it (each finding shown once),
    and the findings no cause ties in, worst first."""
    lines = [click.style("  likely cause" + ("s" if len(result.diagnosis) > 1 else ""), bold=True)]
    shown: set[int] = set()  # by identity: two equal findings (one per HAR entry group) are both shown
    for cause in result.diagnosis:
        lines.append(f"  {severity_label(cause.severity)} {visible(cause.cause)}  " + click.style(f"[{cause.rule}]", dim=True))
        lines.append("        " + click.style("next step: ", bold=True) + visible(cause.next_step))
        elsewhere = []
        for finding_id in cause.findings:
            mine = [f for f in result.sorted_findings() if f.id == finding_id]
            fresh = [f for f in mine if id(f) not in shown]
            if not mine:
                elsewhere.append(finding_id)
            elif not fresh:
                lines.append(f"        also: [{finding_id}] (above)")
            for finding in fresh:
                shown.add(id(finding))
                lines.extend(render_finding(finding, indent="    "))
        if elsewhere:
            lines.append("        seen by another probe of this host: " + ", ".join(f"[{i}]" for i in elsewhere))
    rest = [f for f in result.sorted_findings() if id(f) not in shown]
    if rest:
        lines.append(click.style("  other findings", bold=True))
    return lines, rest


def render_result(result: ProbeResult, *, facts: bool = True) -> str:
    head = click.style(f"{result.probe} ", bold=True) + f"{result.target}  ({result.duration_ms} ms)"
    lines = [head]
    rest = result.sorted_findings()
    if result.diagnosis:
        cause_lines, rest = render_diagnosis(result)
        lines.extend(cause_lines)
    for finding in rest:
        lines.extend(render_finding(finding))
    if facts and result.facts:
        lines.append(click.style("  facts", dim=True))
        for key, value in result.facts.items():
            lines.append(f"    {key}: {_fact_value(value)}")
    return "\n".join(lines)


def render_results(results: list[ProbeResult]) -> str:
    blocks = [render_result(r) for r in results]
    counts: dict[Severity, int] = {}
    for r in results:
        for f in r.findings:
            counts[f.severity] = counts.get(f.severity, 0) + 1
    summary = ", ".join(f"{counts[s]} {s.value}" for s in sorted(counts, key=lambda s: -s.rank))
    return "\n\n".join(blocks) + f"\n\nsummary: {summary or 'no findings'}"
