"""The finding model: severities, findings, probe results, the exit-code rule and JSON shape.

This is the one data shape every probe, the packet and the renderers agree on (see docs/commands.md).
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from diagkit import __version__


class Severity(enum.Enum):
    PASS = "pass"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """Badness for sorting "worst first": fail, error, warn, info, pass."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown severity {value!r}; expected one of pass, info, warn, fail, error") from None


_RANK = {Severity.PASS: 0, Severity.INFO: 1, Severity.WARN: 2, Severity.ERROR: 3, Severity.FAIL: 4}


class ExitStatus(enum.IntEnum):
    """Process exit codes of every command that reports findings (docs/commands.md)."""

    OK = 0
    ERROR = 1  # diagkit could not do what was asked
    USAGE = 2  # the command line's own usage errors exit with it too
    FAIL = 3
    WARN = 4
    CHECK_ERROR = 5
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


@dataclass
class Finding:
    id: str
    severity: Severity
    title: str
    detail: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    remediation: str = ""
    refs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity.value,
            "title": self.title,
            "detail": self.detail,
            "evidence": self.evidence,
            "remediation": self.remediation,
            "refs": list(self.refs),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            id=str(data["id"]),
            severity=Severity.parse(data["severity"]),
            title=str(data.get("title", "")),
            detail=str(data.get("detail", "") or ""),
            evidence=dict(data.get("evidence") or {}),
            remediation=str(data.get("remediation", "") or ""),
            refs=[str(r) for r in data.get("refs") or []],
        )


@dataclass
class Cause:
    """One likely cause: the findings one underlying problem produced, tied together (CONTRACT.md `diagnosis`).

    `findings` holds ids, most telling first; `rule` names the diagnosis rule that matched (diagkit/diagnosis/).
    """

    cause: str
    severity: Severity
    findings: list[str]
    next_step: str
    rule: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "severity": self.severity.value, "findings": list(self.findings),
                "next_step": self.next_step, "rule": self.rule}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cause:
        return cls(cause=str(data.get("cause", "")), severity=Severity.parse(data.get("severity", "info")),
                   findings=[str(i) for i in data.get("findings") or []],
                   next_step=str(data.get("next_step", "") or ""), rule=str(data.get("rule", "") or ""))


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def format_time(moment: _dt.datetime) -> str:
    """RFC 3339 UTC with a Z, second precision: what the contract shows."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds: float) -> str:
    """A duration as findings say it, rounded down: "45 s", "12 min", "5 h", "3 days" (the sign dropped)."""
    seconds = abs(int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


@dataclass
class ProbeResult:
    probe: str
    target: str
    started_at: _dt.datetime
    duration_ms: int
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    diagkit_version: str = __version__
    # The run's options as probe.recorded_options keeps them (secrets never), so `packet replay` can
    # re-run it; None for results that are not a probe run (environment) or predate the field.
    options: dict[str, Any] | None = None
    # Likely causes, most likely first; written to JSON only when there is one.
    diagnosis: list[Cause] = field(default_factory=list)

    @property
    def worst(self) -> Severity:
        return worst_severity(self.findings)

    def sorted_findings(self) -> list[Finding]:
        """Worst first; stable within one severity so probes keep their own order."""
        return sorted(self.findings, key=lambda f: -f.severity.rank)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "diagkit_version": self.diagkit_version,
            "probe": self.probe,
            "target": self.target,
            "started_at": format_time(self.started_at),
            "duration_ms": int(self.duration_ms),
        }
        if self.diagnosis:
            data["diagnosis"] = [c.to_dict() for c in self.diagnosis]
        data["findings"] = [f.to_dict() for f in self.findings]
        data["facts"] = self.facts
        if self.options is not None:
            data["options"] = self.options
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResult:
        started = _dt.datetime.fromisoformat(str(data["started_at"]).replace("Z", "+00:00"))
        return cls(
            probe=str(data["probe"]),
            target=str(data.get("target", "")),
            started_at=started,
            duration_ms=int(data.get("duration_ms", 0)),
            findings=[Finding.from_dict(f) for f in data.get("findings") or []],
            facts=dict(data.get("facts") or {}),
            diagkit_version=str(data.get("diagkit_version", __version__)),
            options=dict(data["options"]) if isinstance(data.get("options"), dict) else None,
            diagnosis=[Cause.from_dict(c) for c in data.get("diagnosis") or [] if isinstance(c, dict)],
        )


def worst_severity(findings: Iterable[Finding]) -> Severity:
    worst = Severity.PASS
    for finding in findings:
        if finding.severity.rank > worst.rank:
            worst = finding.severity
    return worst


def exit_status(results: Iterable[ProbeResult]) -> ExitStatus:
    """fail beats error beats warn (exit codes 3, 5, 4 in docs/commands.md)."""
    seen = {f.severity for r in results for f in r.findings}
    if Severity.FAIL in seen:
        return ExitStatus.FAIL
    if Severity.ERROR in seen:
        return ExitStatus.CHECK_ERROR
    if Severity.WARN in seen:
        return ExitStatus.WARN
    return ExitStatus.OK


def results_document(results: list[ProbeResult]) -> dict[str, Any]:
    """One result prints as itself; several as {"results": [...]} (docs/commands.md)."""
    if len(results) == 1:
        return results[0].to_dict()
    return {"results": [r.to_dict() for r in results]}


def parse_results_document(data: Any) -> list[ProbeResult]:
    """Inverse of results_document; accepts a single result, {"results": [...]} or a list."""
    if isinstance(data, dict) and "results" in data and isinstance(data["results"], list):
        items = data["results"]
    elif isinstance(data, list):
        items = data
    elif isinstance(data, dict):
        items = [data]
    else:
        raise ValueError("not a diagkit result document")
    results = []
    for item in items:
        if not isinstance(item, dict) or "probe" not in item or "findings" not in item:
            raise ValueError("not a diagkit result document (no 'probe' and 'findings')")
        results.append(ProbeResult.from_dict(item))
    return results
