"""What a packet shows people, as plain data: PacketView and the texts every view shares, plus JSON.

The views: Markdown (show_markdown), self-contained HTML (show_html) and the terminal (diagkit/cli/
packet_view.py, the only one with styles). Every view reads in the engineer's order (diagkit/packet/
causes.py): likely causes with their next steps, the findings grouped under them, then readiness and
case, then the evidence. Also renders summary.md at build time, so the summary inside a packet and
`packet show --markdown` read the same. Everything shown comes from a verified packet, and even so every
string in it is made visible first (control, bidi and format characters as `\x1b`, `\u202e`; see
diagkit/visible.py): a signed packet is only as honest as its signer. HTML escapes every value on top of that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from diagkit.findings import Finding, ProbeResult, Severity
from diagkit.packet.causes import Group, group_findings


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
    # Evidence members' bytes (name -> data) for the HTML pictures; never printed as they are.
    evidence_data: dict[str, bytes] = field(default_factory=dict)

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
        evidence_data={n: packet.members[n] for n in digests if n.startswith(fmt.EVIDENCE_DIR)},
    )


def visible_view(view: PacketView) -> PacketView:
    """A copy of `view` whose every string is safe to print; a finding's detail keeps its newlines."""
    from dataclasses import replace

    from diagkit.findings import parse_results_document
    from diagkit.visible import visible, visible_all, visible_tree

    def opt(value: Any) -> Any:
        return None if value is None else visible(value)

    results = parse_results_document(
        {"results": [visible_tree(r.to_dict(), multiline_keys=frozenset({"detail"})) for r in view.results]})
    # Case fields are the customer's answers: multi-line answers keep their lines (each view lays them out).
    return replace(view, case=visible_all(view.case), results=results, evidence=visible_tree(view.evidence),
                   checklist=opt(view.checklist), readiness=visible_tree(view.readiness), packet_id=opt(view.packet_id),
                   created_at=opt(view.created_at), tool_version=opt(view.tool_version),
                   signer=visible_tree(view.signer), encrypted_to=visible_tree(view.encrypted_to),
                   environment=visible_tree(view.environment), redaction=visible_tree(view.redaction),
                   findings_summary=visible_tree(view.findings_summary))


def value_text(value: Any) -> str:
    """A string as it is; any other value as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def size_text(n: float) -> str:
    """e.g. "512 B", "12.0 KiB"."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def signer_text(signer: dict[str, Any]) -> str:
    """The signer's key id and whether it is pinned (a key the reader trusts) or still to be confirmed."""
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
                ", ".join(map(value_text, missing)) if isinstance(missing, list) else value_text(missing))
            parts.append(f"{name} ({why})" if why else str(name))
        return "; ".join(parts)
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else "none"
    return value_text(value)


def readiness_items(readiness: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(label, text) rows of the readiness collect wrote, known keys first in a fixed order."""
    order = list(_READINESS_LABELS)
    items = sorted((readiness or {}).items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 99, kv[0]))
    return [(_READINESS_LABELS.get(k, str(k)), _readiness_value(k, v)) for k, v in items]


def counts_text(rows: list[tuple[ProbeResult, Finding]]) -> str:
    """e.g. "4 fail, 1 warn", worst first; "none" without findings."""
    counts = {s: sum(1 for _, f in rows if f.severity is s) for s in Severity}
    return ", ".join(f"{counts[s]} {s.value}" for s in sorted(Severity, key=lambda s: -s.rank) if counts[s]) or "none"


def groups_of(view: PacketView) -> list[Group]:
    """The findings in reading order (causes worst first, then other findings); see causes.py."""
    return group_findings(view.results)


def worst_problem(view: PacketView) -> tuple[ProbeResult, Finding] | None:
    """The worst finding above info, for the "what to do" line when no diagnosis rule names a cause."""
    rows = [rf for rf in view.findings() if rf[1].severity in (Severity.FAIL, Severity.ERROR, Severity.WARN)]
    return rows[0] if rows else None


# ---------------------------------------------------------------- json
def to_json(view: PacketView, source: str) -> dict[str, Any]:
    """The packet as data: `causes` and `findings_by_cause` in reading order, `findings` worst first."""
    groups = groups_of(view)
    causes = [g.cause for g in groups if g.cause is not None]
    return {
        "packet": {"path": source, "packet_id": view.packet_id, "created_at": view.created_at,
                   "tool_version": view.tool_version, "signer": view.signer, "encrypted_to": view.encrypted_to,
                   "checklist": view.checklist},
        "case": view.case,
        "readiness": view.readiness,
        "environment": view.environment,
        "redaction": view.redaction,
        "findings_summary": view.findings_summary,
        "causes": [c.to_dict() for c in causes],
        "findings_by_cause": [{"cause": None if g.cause is None else causes.index(g.cause),
                               "findings": [{"probe": r.probe, "target": r.target, **f.to_dict()} for r, f in g.rows]}
                              for g in groups],
        "results": [r.to_dict() for r in view.results],
        "findings": [{"probe": r.probe, "target": r.target, **f.to_dict()} for r, f in view.findings()],
        "evidence": view.evidence,
    }
