"""Diagnosis: the likely causes behind a result's findings, and across the results of one run.

Public functions:
- `diagnose_findings(findings, facts)`: the rule table over a findings list (what the tests feed).
- `diagnose_result(result)`: one result's causes (the runner sets `result.diagnosis` with it).
- `diagnose(results)`: the run's causes, deduplicated, most likely first (for `packet show` and summaries).
- `apply(results)`: sets each result's `diagnosis` from the run-wide view, so a problem seen by several
  probes of the same host (DNS, TLS, HTTP) is one cause listed on each of them.
The rules are data: diagkit/diagnosis/rules.yaml, and `Probe(diagnosis=[...])` for plugins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from diagkit.diagnosis.engine import evaluate
from diagkit.diagnosis.rules import Rule, parse_rule, register, table
from diagkit.findings import Cause, Finding, ProbeResult
from diagkit.formats.urls import host_of

__all__ = ["Cause", "Rule", "apply", "diagnose", "diagnose_findings", "diagnose_result", "host_of", "parse_rule",
           "register", "table"]


def diagnose_findings(findings: Sequence[Finding], facts: Sequence[Mapping[str, Any]] | Mapping[str, Any] = (),
                      rules: Sequence[Rule] | None = None) -> list[Cause]:
    """Causes behind these findings (facts: one result's facts, or a list of several results' facts)."""
    fact_sets = [facts] if isinstance(facts, Mapping) else list(facts)
    return evaluate(findings, fact_sets, rules)


def diagnose_result(result: ProbeResult) -> list[Cause]:
    return evaluate(result.findings, [result.facts])




def host_groups(results: Sequence[ProbeResult]) -> list[list[int]]:
    """Result indices grouped as causes are tied across results: by the host a target names, else each alone."""
    by_host: dict[str, list[int]] = {}
    alone: list[list[int]] = []
    for index, result in enumerate(results):
        host = host_of(result.target)
        if host is None:
            alone.append([index])
        else:
            by_host.setdefault(host, []).append(index)
    return [*by_host.values(), *alone]


def _groups(results: Sequence[ProbeResult]) -> list[list[ProbeResult]]:
    return [[results[i] for i in indices] for indices in host_groups(results)]


def _group_causes(group: Sequence[ProbeResult]) -> list[Cause]:
    findings = [f for r in group for f in r.findings]
    return evaluate(findings, [r.facts for r in group])


def apply(results: Sequence[ProbeResult]) -> None:
    """Set each result's `diagnosis`: the causes of its host's results that tie in one of its findings."""
    for group in _groups(results):
        causes = _group_causes(group)
        for result in group:
            own = {f.id for f in result.findings}
            result.diagnosis = [c for c in causes if own & set(c.findings)]


def diagnose(results: Sequence[ProbeResult]) -> list[Cause]:
    """The run's likely causes, each once, worst first: what `packet show` leads with."""
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    causes: list[Cause] = []
    for group in _groups(results):
        for cause in _group_causes(group):
            key = (cause.rule, cause.cause, tuple(cause.findings))
            if key not in seen:
                seen.add(key)
                causes.append(cause)
    return sorted(causes, key=lambda c: -c.severity.rank)
