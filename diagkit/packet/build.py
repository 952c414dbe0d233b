"""Building a packet: findings, case, summary and redacted evidence, an in-toto manifest signed with DSSE.

The caller (packet build, collect) redacts evidence before it gets here; this module only lays it out,
hashes it, signs the manifest and optionally encrypts the signed ZIP.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import mimetypes
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diagkit import __version__
from diagkit.errors import InputError
from diagkit.findings import ProbeResult, Severity, format_time, worst_severity
from diagkit.fsutil import write_atomic
from diagkit.packet import canonjson, dsse
from diagkit.packet import format as fmt


@dataclass
class Evidence:
    name: str            # member path, e.g. "evidence/session.har"; "session.har" is put under evidence/
    data: bytes          # ALREADY redacted by the caller
    media_type: str = "application/octet-stream"
    note: str = ""       # e.g. "redacted HAR (412 values replaced)"


@dataclass
class PacketInfo:
    path: Path
    packet_id: str
    key_id: str
    encrypted: bool
    members: list[dict] = field(default_factory=list)  # name, size, sha256


def evidence_member_name(name: str) -> str:
    """`evidence/<name>`, made usable on Windows and macOS, refusing anything that could escape an
    extraction folder."""
    clean = name if name.startswith(fmt.EVIDENCE_DIR) else fmt.EVIDENCE_DIR + name
    clean = fmt.windows_safe_name(clean)
    reason = fmt.unsafe_name_reason(clean)
    if reason or clean == fmt.EVIDENCE_DIR:
        raise InputError(f"evidence name {name!r} is not a safe relative path ({reason or 'empty name'})")
    return clean


def guess_media_type(name: str) -> str:
    if name.lower().endswith(".har"):
        return "application/har+json"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def findings_summary(results: Sequence[ProbeResult]) -> dict[str, Any]:
    findings = [f for r in results for f in r.findings]
    counts = {s.value: 0 for s in Severity}
    for finding in findings:
        counts[finding.severity.value] += 1
    return {
        "counts": counts,
        "worst": worst_severity(findings).value if findings else None,
        "ids": sorted({f.id for f in findings}),
        "results": len(results),
        "probes": [{"probe": r.probe, "target": r.target, "worst": r.worst.value} for r in results],
    }


def _case_yaml(case: dict[str, Any]) -> bytes:
    import yaml

    if not case:
        return b"{}\n"
    return yaml.safe_dump(case, sort_keys=True, allow_unicode=True, default_flow_style=False).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_packet(
    out_path: str | Path,
    *,
    results: list[ProbeResult],
    evidence: Sequence[Evidence] = (),
    case: dict[str, Any] | None = None,
    checklist: str | None = None,
    readiness: dict | None = None,
    environment: dict | None = None,
    redaction_summary: dict | None = None,
    sign_key: str | Path | None = None,
    encrypt_to: Sequence[str | Path] = (),
    created_at: _dt.datetime | None = None,
) -> PacketInfo:
    """Write a signed (and, with encrypt_to, encrypted) packet atomically to out_path."""
    from diagkit.context import env_clock
    from diagkit.packet import crypto, keys, show, show_markdown, zipsafe

    if len(encrypt_to) > fmt.MAX_RECIPIENTS:
        raise InputError(f"at most {fmt.MAX_RECIPIENTS} --encrypt-to recipients are allowed, got {len(encrypt_to)}")
    recipients = [keys.load_public_key(p, keys.X25519, "recipient key") for p in encrypt_to]
    signing = keys.load_signing_key(sign_key if sign_key is not None else keys.default_signing_key())
    signer = keys.public_of(signing)
    created = created_at or env_clock()()
    case_fields = fmt.no_floats(dict(case or {}), "case")

    members: dict[str, bytes] = {
        fmt.FINDINGS: fmt.pretty_json({"results": [r.to_dict() for r in results]}),
        fmt.CASE: _case_yaml(case_fields),
        fmt.SIGNER: signer.pem().encode(),
    }
    notes: dict[str, tuple[str, str]] = {
        fmt.FINDINGS: ("application/json", "probe results"),
        fmt.CASE: ("application/yaml", "case fields"),
        fmt.SIGNER: ("application/x-pem-file", "signer public key (PEM SubjectPublicKeyInfo)"),
        fmt.SUMMARY: ("text/markdown", "human summary"),
    }
    folded = {fmt.fold_name(n) for n in members}
    for item in evidence:
        name = evidence_member_name(item.name)
        if fmt.fold_name(name) in folded:
            raise InputError(f"two evidence files would both be stored as {name!r}; rename one")
        folded.add(fmt.fold_name(name))
        members[name] = bytes(item.data)
        notes[name] = (item.media_type or guess_media_type(name), item.note)

    evidence_rows = [{"name": n, "size": len(members[n]), "sha256": _sha256(members[n]),
                      "media_type": notes[n][0], "note": notes[n][1]}
                     for n in sorted(members) if n.startswith(fmt.EVIDENCE_DIR)]
    view = show.PacketView(case=case_fields, results=list(results), evidence=evidence_rows,
                           checklist=checklist, readiness=fmt.no_floats(readiness, "readiness"))
    members[fmt.SUMMARY] = show_markdown.render(view, summary=True).encode()

    packet_id = str(uuid.uuid4())
    statement = {
        "_type": fmt.STATEMENT_TYPE,
        "subject": [{"name": n, "digest": {"sha256": _sha256(members[n])}} for n in sorted(members)],
        "predicateType": fmt.PREDICATE_TYPE,
        "predicate": {
            "schema_version": fmt.SCHEMA_VERSION,
            "packet_id": packet_id,
            "created_at": format_time(created),
            "tool": {"name": "diagkit", "version": __version__},
            "signer": {"key_id": signer.key_id},
            "members": [{"name": n, "size": len(members[n]), "media_type": notes[n][0], "note": notes[n][1]}
                        for n in sorted(members)],
            "case": case_fields,
            "checklist": checklist,
            "readiness": fmt.no_floats(readiness, "readiness"),
            "environment": fmt.no_floats(environment, "environment"),
            "redaction": fmt.no_floats(redaction_summary, "redaction_summary"),
            "findings": fmt.no_floats(findings_summary(results)),
        },
    }
    manifest = canonjson.dumps(statement)
    members[fmt.MANIFEST] = manifest
    members[fmt.SIGNATURE] = dsse.sign(manifest, signing, signer.key_id)
    blob = zipsafe.write_zip(members)
    if recipients:
        blob = crypto.encrypt(blob, recipients)
    out = Path(out_path)
    write_atomic(out, blob)
    return PacketInfo(
        path=out, packet_id=packet_id, key_id=signer.key_id, encrypted=bool(recipients),
        members=[{"name": n, "size": len(members[n]), "sha256": _sha256(members[n])} for n in sorted(members)],
    )
