"""Loads the finding catalogue and makes findings from it by id.

The catalogue is `catalogue.yaml` (the runner's ids), one `findings.yaml` beside each probe family in
`collectors/` and one in `casework/`; plugins add theirs with `register`. An id defined twice is an error.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from diagkit.findings import Finding, Severity


@dataclass(frozen=True)
class Entry:
    id: str
    severity: Severity
    title: str
    meaning: str
    remediation: str
    refs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity.value,
            "title": self.title,
            "meaning": self.meaning,
            "remediation": self.remediation,
            "refs": list(self.refs),
        }


def _entry(finding_id: str, spec: Mapping[str, Any]) -> Entry:
    return Entry(
        id=finding_id,
        severity=Severity.parse(spec["severity"]),
        title=str(spec["title"]),
        meaning=str(spec.get("meaning", "")),
        remediation=str(spec.get("remediation", "")),
        refs=tuple(spec.get("refs") or ()),
    )


def _catalogue_files() -> list[Traversable]:
    package = resources.files("diagkit")
    families = sorted(package.joinpath("collectors").iterdir(), key=lambda folder: folder.name)
    files = [package.joinpath("catalogue.yaml")]
    files += [folder.joinpath("findings.yaml") for folder in families if folder.joinpath("findings.yaml").is_file()]
    files.append(package.joinpath("casework", "findings.yaml"))
    return files


@functools.cache
def load() -> dict[str, Entry]:
    """The built-in catalogue plus ids registered by plugins loaded so far."""
    import yaml  # only when findings are made, not at CLI start-up

    entries: dict[str, Entry] = {}
    for source in _catalogue_files():
        raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        for finding_id, spec in raw.items():
            if finding_id in entries:
                raise ValueError(f"finding id {finding_id!r} is defined twice (again in {source.name})")
            entries[finding_id] = _entry(finding_id, spec)
    return entries


def register(source: str, specs: Mapping[str, Mapping[str, Any]]) -> None:
    """Add a plugin's own finding ids; a plugin may not redefine an id it does not own."""
    entries = load()
    for finding_id, spec in specs.items():
        new = _entry(finding_id, spec)
        if finding_id in entries and entries[finding_id] != new:
            raise ValueError(f"{source} redefines finding id {finding_id!r}")
        entries[finding_id] = new


def entry(finding_id: str) -> Entry:
    try:
        return load()[finding_id]
    except KeyError:
        # A programming error: every id must be catalogued (tests/test_catalogue.py).
        raise KeyError(f"finding id {finding_id!r} is in no finding catalogue (diagkit/catalogue.yaml, collectors/*/findings.yaml)") from None


def make(
    finding_id: str,
    title: str | None = None,
    detail: str = "",
    evidence: dict[str, Any] | None = None,
    *,
    severity: Severity | str | None = None,
    remediation: str | None = None,
    refs: list[str] | None = None,
) -> Finding:
    """A Finding for a catalogued id; the catalogue supplies what the caller leaves out."""
    spec = entry(finding_id)
    return Finding(
        id=finding_id,
        severity=Severity.parse(severity) if severity is not None else spec.severity,
        title=title or spec.title,
        detail=detail or spec.meaning,
        evidence=dict(evidence or {}),
        remediation=remediation if remediation is not None else spec.remediation,
        refs=list(refs) if refs is not None else list(spec.refs),
    )
