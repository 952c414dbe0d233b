"""Redaction of everything a packet holds (probe results, answers, environment, evidence files) by one
Redactor, so a value gets the same pseudonym in every member; server addresses are kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diagkit.findings import ProbeResult


class Redaction:
    """One Redactor for the whole packet, so a value gets the same pseudonym in every member."""

    def __init__(self, key: bytes | None = None, terms: Sequence[str] = ()) -> None:
        from diagkit.redact.engine import Redactor

        self.redactor = Redactor(key=key, terms=list(terms))
        self.per_member: dict[str, int] = {}
        self.kinds: dict[str, dict[str, int]] = {}  # member -> {rule: count}, for the preview

    def _count(self) -> int:
        return int(self.redactor.report.total)

    def _track(self, member: str, before: int) -> None:
        self.per_member[member] = self.per_member.get(member, 0) + self._count() - before

    def results(self, results: Sequence[ProbeResult]) -> list[ProbeResult]:
        from diagkit import catalogue, diagnosis
        from diagkit.findings import ProbeResult

        before = self._count()
        servers = server_addresses(results)
        entries = catalogue.load()
        templates = {rule.id: rule.cause for rule in diagnosis.table()}
        redacted = []
        for result in results:
            doc = self.redactor.redact_obj(result.to_dict())
            # Addresses of the servers the probes asked or reached are what an engineer compares (split
            # DNS, a VPN), not personal data: they are put back. A client's own address is not among them.
            restore = {p: o for p, o in self.redactor.mapping.items() if o in servers}
            if restore:
                doc = _put_back(doc, restore)
            # Ids, severities, refs and the catalogue's and diagnosis rules' own wording are diagkit's text,
            # never user data; redacting them only mangled them (a section number such as "RFC 5280
            # §4.1.2.5" looks like an IP address, "SNI" like a person's name). Text filled in from what a
            # probe saw stays redacted.
            for original, finding in zip(result.findings, doc["findings"], strict=True):
                finding.update(id=original.id, severity=original.severity.value, refs=list(original.refs))
                entry = entries.get(original.id)
                if entry is not None and original.remediation == entry.remediation:
                    finding["remediation"] = original.remediation
            for original_cause, cause in zip(result.diagnosis, doc.get("diagnosis") or [], strict=True):
                cause.update(severity=original_cause.severity.value, findings=list(original_cause.findings),
                             rule=original_cause.rule, next_step=original_cause.next_step)
                if "{" not in templates.get(original_cause.rule, "{"):
                    cause["cause"] = original_cause.cause
            doc.update(probe=result.probe, diagkit_version=result.diagkit_version)
            redacted.append(ProbeResult.from_dict(doc))
        self._track("findings.json", before)
        return redacted

    def obj(self, value: Any, member: str) -> Any:
        before = self._count()
        out = self.redactor.redact_obj(value)
        self._track(member, before)
        return out

    def answer(self, value: Any, sensitive: bool) -> Any:
        """Sensitive answers never appear, whatever they look like; others lose what looks personal or secret."""
        before = self._count()
        if sensitive:
            out: Any = self.pseudonym(str(value))
        elif isinstance(value, str):
            out = self.redactor.redact_text(value)
        else:
            out = value
        self._track("case.yaml", before)
        return out

    def pseudonym(self, value: str) -> str:
        """Same key as the redactor, so the pseudonym matches wherever else the redactor meets the value."""
        from diagkit.redact.pseudonym import Pseudonymizer

        self.redactor.report.add("sensitive_answer", "case.yaml")
        return Pseudonymizer(self.redactor.key)("SECRET", value)

    def file(self, data: bytes, name: str, fmt: str) -> tuple[bytes, str, int]:
        before = self._count()
        result = self.redactor.redact_bytes(data, name=name, fmt=fmt)
        self._track("evidence/" + name, before)
        self.kinds["evidence/" + name] = dict(result.report.by_rule)
        return result.data, result.format, self.per_member["evidence/" + name]

    def forget(self, member: str) -> None:
        """A member that was not packed after all is not counted in the packet's summary."""
        self.per_member.pop(member, None)
        self.kinds.pop(member, None)

    def summary(self) -> dict[str, Any]:
        summary = dict(self.redactor.report.to_dict())
        summary["by_member"] = dict(sorted(self.per_member.items()))
        return summary


def server_addresses(results: Sequence[ProbeResult]) -> set[str]:
    """IP addresses that name servers in these results: every address a DNS probe recorded (answers,
    resolvers, the OS lookup) and every target given as an IP address."""
    import ipaddress

    from diagkit.formats.urls import host_of

    def address(text: str) -> str | None:
        host = host_of(text)  # URL, HOST:PORT, [v6]:port or a bare address
        try:
            return str(ipaddress.ip_address(host)) if host else None
        except ValueError:
            return None

    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list | tuple):
            for item in value:
                yield from strings(item)

    found: set[str] = set()
    for result in results:
        texts = [result.target]
        if result.probe == "dns":
            texts += list(strings(result.facts)) + list(strings(result.options or {}))
        found.update(a for a in map(address, texts) if a)
    return found


def _put_back(value: Any, originals: Mapping[str, str]) -> Any:
    """`value` with each pseudonym in `originals` replaced by its original, in every string."""
    if isinstance(value, str):
        for pseudonym, original in originals.items():
            value = value.replace(pseudonym, original)
        return value
    if isinstance(value, dict):
        return {k: _put_back(v, originals) for k, v in value.items()}
    if isinstance(value, list):
        return [_put_back(v, originals) for v in value]
    return value
