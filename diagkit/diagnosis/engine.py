"""Matches the rule table against findings and facts: one plain loop, most specific rule first.

Guarantees: only findings worse than `pass` count as evidence; a rule whose required findings are all
explained by an earlier (more specific) rule adds nothing, so one 401 reads as one cause, not three;
a cause's severity is its rule's, never worse than the worst finding it ties; causes come out worst
severity first, table order within a severity.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from diagkit.diagnosis.rules import Condition, Rule, table
from diagkit.findings import Cause, Finding, Severity, worst_severity


def _matching(patterns: Sequence[str], findings: Sequence[Finding]) -> list[Finding]:
    """Findings whose id matches one of the patterns, in pattern order (the rule's most telling first)."""
    out: list[Finding] = []
    for pattern in patterns:
        out.extend(f for f in findings if fnmatch.fnmatchcase(f.id, pattern) and f not in out)
    return out


def _strings(value: Any, path: Sequence[str]) -> Iterator[str]:
    """String values under a dotted path (every one when the path is empty); lists are walked."""
    if isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, path)
    elif isinstance(value, Mapping):
        if path:
            if path[0] in value:
                yield from _strings(value[path[0]], path[1:])
        else:
            for item in value.values():
                yield from _strings(item, path)
    elif not path and value is not None and not isinstance(value, bool):
        yield str(value)


def _values(condition: Condition, evidence: Sequence[Finding], facts: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    paths = [key.split(".") for key in condition.keys] or [[]]
    sources: list[Any] = list(facts) if condition.source == "facts" else [f.evidence for f in evidence]
    if condition.source == "evidence" and not condition.keys:
        sources = [text for f in evidence for text in (f.title, f.detail)] + sources
    for source in sources:
        for path in paths:
            yield from _strings(source, path)


def _where(rule: Rule, evidence: Sequence[Finding], facts: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    """The named values the conditions captured, or None when one condition matches nothing."""
    captured: dict[str, str] = {}
    for condition in rule.where:
        hit = None
        for value in _values(condition, evidence, facts):
            match = condition.pattern.search(value)
            if match:
                hit = value if condition.keys else match.group(0)
                break
        if hit is None:
            return None
        if condition.name:
            captured[condition.name] = hit
    return captured


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _text(template: str, captured: Mapping[str, str], tied: Sequence[Finding]) -> str:
    """The cause text with `{name}` filled from `where` captures, then the tied findings' evidence."""
    fields = _Fields(captured)
    for finding in tied:
        for key, value in finding.evidence.items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                fields.setdefault(key, str(value))
    try:
        return template.format_map(fields)
    except (ValueError, IndexError, AttributeError):  # a stray brace in a plugin's text: show it as written
        return template


def evaluate(findings: Sequence[Finding], facts: Sequence[Mapping[str, Any]] = (),
             rules: Sequence[Rule] | None = None) -> list[Cause]:
    """The likely causes behind these findings, most likely first (see the module docstring)."""
    present = [f for f in findings if f.severity is not Severity.PASS]
    explained: set[str] = set()
    causes: list[Cause] = []
    for rule in table() if rules is None else rules:
        if any(not _matching(item, present) for item in rule.all) or (rule.any and not _matching(rule.any, present)):
            continue
        required = _matching(rule.required(), present)
        if _matching(rule.unless, present):
            continue
        captured = _where(rule, required, facts)
        if captured is None:
            continue
        if {f.id for f in required} <= explained:
            continue  # a more specific rule already named the cause of this evidence
        tied = _matching(rule.ids(), present)
        ids = list(dict.fromkeys(f.id for f in tied))
        explained.update(ids)
        # A cause is never worse than the evidence it stands on (a probe may lower a finding to warn).
        severity = min(rule.severity, worst_severity(tied), key=lambda s: s.rank)
        causes.append(Cause(cause=_text(rule.cause, captured, tied), severity=severity, findings=ids,
                            next_step=_text(rule.next_step, captured, tied), rule=rule.id))
    return sorted(causes, key=lambda c: -c.severity.rank)
