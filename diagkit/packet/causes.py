"""A packet's findings in the order an engineer reads them: likely causes, each with the findings it ties.

One home for that order, shared by the terminal, Markdown, HTML and JSON views of `packet show`.
Causes are the run's (`diagkit.diagnosis`, computed again from the results with the rules this diagkit
has) plus any a result carries that those rules do not give (a plugin's rule; a cause worded by another
version of the table over findings already tied is not repeated): each cause once, worst first. Every finding worse than `pass` that a cause names is shown under the
first (worst) cause that names it and only there; the rest go to "other findings", worst first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from diagkit.findings import Cause, Finding, ProbeResult, Severity


@dataclass
class Group:
    """One cause (None for "other findings") and its findings with their results, worst first."""

    cause: Cause | None
    rows: list[tuple[ProbeResult, Finding]] = field(default_factory=list)


def _key(cause: Cause) -> tuple[str, tuple[str, ...]]:
    return (cause.cause, tuple(cause.findings))


def causes_with_scope(results: list[ProbeResult]) -> list[tuple[Cause, set[int]]]:
    """Each likely cause once, worst first, with the indices of the results whose findings it may tie."""
    from diagkit.diagnosis import diagnose, host_groups

    found: dict[tuple[str, tuple[str, ...]], tuple[Cause, set[int]]] = {}
    for indices in host_groups(results):
        for cause in diagnose([results[i] for i in indices]):
            found.setdefault(_key(cause), (cause, set()))[1].update(indices)
    tied = {(i, f) for cause, scope in found.values() for i in scope for f in cause.findings}
    for index, result in enumerate(results):
        for cause in result.diagnosis:  # what the packet itself says, when this diagkit's rules do not
            if _key(cause) not in found and all((index, f) in tied for f in cause.findings):
                continue  # the same evidence, worded by another version of the rules: shown once
            found.setdefault(_key(cause), (cause, set()))[1].add(index)
    # sorted() is stable: the diagnosis' own order stays within a severity.
    return sorted(found.values(), key=lambda cs: -cs[0].severity.rank)


def group_findings(results: list[ProbeResult]) -> list[Group]:
    """Causes worst first, each with its findings (worst first), then "other findings" (cause None)."""
    groups: list[Group] = []
    shown: set[int] = set()  # by identity: two equal findings in two results are two rows
    for cause, scope in causes_with_scope(results):
        group = Group(cause)
        for finding_id in cause.findings:
            for index in sorted(scope):
                for finding in results[index].findings:
                    if finding.id == finding_id and finding.severity is not Severity.PASS and id(finding) not in shown:
                        shown.add(id(finding))
                        group.rows.append((results[index], finding))
        group.rows.sort(key=lambda rf: -rf[1].severity.rank)
        groups.append(group)
    rest = [(r, f) for r in results for f in r.findings if id(f) not in shown]
    if rest:
        groups.append(Group(None, sorted(rest, key=lambda rf: -rf[1].severity.rank)))
    return groups
