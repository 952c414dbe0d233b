"""Verifying a packet: decrypt if needed, read the ZIP strictly, check trust and signature, then every member.

Order matters: cheap refusals first (layout, names, at most MAX_SIGNATURES signatures, a signer key
that is valid and trusted) before any signature is checked; nothing in manifest.json is read until
the DSSE signature over its exact bytes verifies; the manifest must then be canonical JSON of the
documented shape before the subject digests are compared with the members.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diagkit import schemas
from diagkit.errors import InputError, KeyFileError
from diagkit.findings import ProbeResult, parse_results_document
from diagkit.packet import dsse
from diagkit.packet import format as fmt
from diagkit.packet.errors import (
    BadSignature,
    EncryptedPacket,
    ExtraMember,
    MalformedManifest,
    MissingMember,
    MissingSignature,
    NotAPacket,
    TamperedMember,
    UntrustedSigner,
)
from diagkit.packet.keys import ED25519, PublicKey
from diagkit.visible import visible


@dataclass
class VerifiedPacket:
    """A packet whose signature and members have been checked; everything here may be shown."""

    source: str
    members: dict[str, bytes]
    manifest: dict[str, Any]
    signer: PublicKey
    pinned: bool
    trusted_by: str | None          # "--trusted-key", "trusted_keys file" or None (not pinned)
    encrypted: bool = False
    recipients: list[str] = field(default_factory=list)

    @property
    def predicate(self) -> dict[str, Any]:
        return self.manifest.get("predicate") or {}

    @property
    def packet_id(self) -> str:
        return str(self.predicate.get("packet_id", ""))

    def results(self) -> list[ProbeResult]:
        """The probe results in findings.json; verify_packet has already checked that they parse."""
        data = self.members.get(fmt.FINDINGS)
        if data is None:
            return []
        try:
            return parse_results_document(fmt.loads_strict(data))
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, UnicodeDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MalformedManifest(f"malformed packet: findings.json in packet '{self.source}' is not a diagkit "
                                    f"result document ({visible(first[:200])})") from None

    def signer_status(self) -> str:
        return f"pinned via {self.trusted_by}" if self.pinned else "not pinned"


def read_packet_bytes(path: str | Path, identity: str | Path | None) -> tuple[bytes, bool, list[str]]:
    """The signed ZIP bytes of a packet file, decrypting with `identity` when it is encrypted."""
    from diagkit.errors import read_input_bytes
    from diagkit.packet import crypto, keys

    source = str(path)
    data = read_input_bytes(source, "packet", limit=fmt.MAX_PACKET_BYTES)
    if not crypto.is_encrypted(data):
        return data, False, []
    recipients = [f"x25519:{tag}" for tag in crypto.recipients_of(data, source)]
    if identity is None:
        raise EncryptedPacket(f"packet '{source}' is encrypted; pass --identity with your encryption.key "
                              f"(it is encrypted to {', '.join(recipients)})")
    private = keys.load_identity(identity)
    return crypto.decrypt(data, private, source, f"identity '{identity}'"), True, recipients


def _trust_set(trusted_keys: Sequence[str | Path], use_trust_file: bool) -> list[tuple[PublicKey, str]]:
    """The keys a signer must be one of: --trusted-key when given (it replaces the trust file for the
    run), else the trusted_keys file. A file line that is not an Ed25519 key raises, never skips."""
    from diagkit.packet import keys

    if trusted_keys:
        return [(keys.load_public_key(k, ED25519, "trusted key"), "--trusted-key") for k in trusted_keys]
    if use_trust_file:
        return [(k, "trusted_keys file") for k in keys.load_trusted_keys()]
    return []


def _signer_key(members: dict[str, bytes], source: str) -> PublicKey:
    from diagkit.packet import keys

    if fmt.SIGNER not in members:
        raise BadSignature(f"bad signature: packet '{source}' does not carry its signer's public key ({fmt.SIGNER})")
    try:
        text = members[fmt.SIGNER].decode("utf-8")
        signer = keys.parse_public_text(text, f"{fmt.SIGNER} in '{source}'")
    except UnicodeDecodeError:
        raise BadSignature(f"bad signature: {fmt.SIGNER} in packet '{source}' is not a public key") from None
    except KeyFileError as exc:
        raise BadSignature(f"bad signature: {exc.message}") from None
    if signer.kind != ED25519:
        raise BadSignature(f"bad signature: {fmt.SIGNER} in packet '{source}' is not an Ed25519 key")
    return signer


def _check_signature(members: dict[str, bytes], source: str,
                     trust: list[tuple[PublicKey, str]]) -> tuple[PublicKey, str | None]:
    """The signer and how it is trusted; the trust decision comes before any signature is checked."""
    if fmt.MANIFEST not in members:
        raise NotAPacket(f"'{source}' is not a diagkit packet: it has no manifest.json")
    if fmt.SIGNATURE not in members:
        raise MissingSignature(f"missing signature: packet '{source}' is not signed (manifest.sig is missing)")
    if len(members[fmt.SIGNATURE]) > fmt.MAX_SIGNATURE_BYTES:
        raise BadSignature(f"bad signature: manifest.sig in packet '{source}' is larger than "
                           f"{fmt.MAX_SIGNATURE_BYTES} bytes")
    try:
        envelope = dsse.parse(members[fmt.SIGNATURE])
    except dsse.EnvelopeError as exc:
        raise BadSignature(f"bad signature: manifest.sig in packet '{source}' is not a DSSE envelope ({exc})") from None
    if not envelope.signatures:
        raise MissingSignature(f"missing signature: packet '{source}' is not signed (manifest.sig holds no "
                               "signatures)")
    if envelope.payload_type != fmt.PAYLOAD_TYPE:
        raise BadSignature(f"bad signature: manifest.sig in packet '{source}' has payloadType "
                           f"'{visible(envelope.payload_type[:80])}', expected '{fmt.PAYLOAD_TYPE}'")
    signer = _signer_key(members, source)
    trusted_by = next((how for key, how in trust if key.raw == signer.raw), None)
    if trust and trusted_by is None:
        where = trust[0][1] if trust[0][1] == "--trusted-key" else "the trusted_keys file"
        raise UntrustedSigner(f"untrusted signer: packet '{source}' is signed by {signer.key_id}, "
                              f"which is not in {where}")
    if not dsse.verify(envelope, signer.ed25519()):
        raise BadSignature(f"bad signature: manifest.sig in packet '{source}' does not verify under the signer key "
                           f"{signer.key_id} (signature altered, or signed by another key)")
    if envelope.payload != members[fmt.MANIFEST]:
        raise BadSignature(f"bad signature: manifest.json in packet '{source}' is not the signed payload "
                           "(manifest edited after signing, or signature swapped from another packet)")
    return signer, trusted_by


def schema_problem(document: Any, schema: str) -> str | None:
    """The first way `document` breaks diagkit/schemas/<schema>.schema.json, or None."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schemas.load(schema))
    error = next(iter(sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))), None)
    if error is None:
        return None
    where = "/".join(visible(str(p)[:60]) for p in error.absolute_path) or "top level"
    return f"{where}: {error.validator} check failed"


def _parse_manifest(data: bytes, source: str) -> dict[str, Any]:
    from diagkit.packet import canonjson

    where = f"manifest.json in packet '{source}'"
    if len(data) > fmt.MAX_MANIFEST_BYTES:
        raise MalformedManifest(f"malformed manifest: {where} is larger than {fmt.MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = canonjson.loads(data)
    except canonjson.CanonicalError as exc:
        raise MalformedManifest(f"malformed manifest: {where} is not canonical JSON: {exc}") from None
    problem = None
    if not isinstance(manifest, dict) or manifest.get("_type") != fmt.STATEMENT_TYPE:
        problem = "not an in-toto Statement v1"
    elif manifest.get("predicateType") != fmt.PREDICATE_TYPE:
        problem = f"predicateType is not {fmt.PREDICATE_TYPE}"
    else:
        problem = schema_problem(manifest, "manifest") or _pattern_problem(manifest["predicate"])
    if problem:
        raise MalformedManifest(f"malformed manifest: {where} is not a diagkit manifest: {problem}")
    return manifest


# The fields shown on a terminal line, matched whole: JSON Schema's `^...$` is run by Python's
# re.search, where `$` also matches before a final newline ("<uuid>\n" would pass the schema).
_WHOLE = {
    ("packet_id",): r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ("created_at",): r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z",
    ("tool", "version"): r"[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?(\+[a-z0-9]+(\.[a-z0-9]+)*)?",
    ("signer", "key_id"): r"ed25519:[0-9a-f]{16}",
}


def _pattern_problem(predicate: dict[str, Any]) -> str | None:
    import re

    for path, pattern in _WHOLE.items():
        value: Any = predicate
        for key in path:
            value = value[key]
        if not re.fullmatch(pattern, value, re.ASCII):
            return f"predicate/{'/'.join(path)}: pattern check failed"
    return None


def _check_members(members: dict[str, bytes], manifest: dict[str, Any], source: str) -> None:
    expected: dict[str, str] = {}
    for item in manifest["subject"]:
        name = item["name"]
        if name in expected or name in (fmt.MANIFEST, fmt.SIGNATURE):
            raise MalformedManifest(f"malformed manifest: manifest.json in packet '{source}' lists "
                                    f"'{visible(name)}' twice or lists itself")
        expected[name] = item["digest"]["sha256"]
    present = set(members) - {fmt.MANIFEST, fmt.SIGNATURE}
    tampered = sorted(n for n in expected.keys() & present
                      if hashlib.sha256(members[n]).hexdigest() != expected[n])
    missing = sorted(expected.keys() - present)
    extra = sorted(present - expected.keys())
    problems: list[tuple[type, str]] = []
    problems += [(TamperedMember, f"tampered member '{visible(n)}' (sha256 does not match the manifest)")
                 for n in tampered]
    problems += [(MissingMember, f"missing member '{visible(n)}' (listed in the manifest, not in the archive)")
                 for n in missing]
    problems += [(ExtraMember, f"extra member '{visible(n)}' (in the archive, not in the manifest)") for n in extra]
    if problems:
        cls = problems[0][0]
        raise cls(f"packet '{source}' does not match its signed manifest: " + "; ".join(p for _, p in problems))
    listed = [(item["name"], item["size"]) for item in manifest["predicate"]["members"]]
    actual = [(name, len(members[name])) for name in sorted(expected)]
    if sorted(listed) != actual:
        raise MalformedManifest(f"malformed manifest: manifest.json in packet '{source}' lists member names or "
                                "sizes in predicate.members that differ from the archive")


def verify_packet(path: str | Path, *, trusted_keys: Sequence[str | Path] = (), identity: str | Path | None = None,
                  use_trust_file: bool = True) -> VerifiedPacket:
    """Verify everything or raise a PacketError subclass whose one-line message says what is wrong.

    Trust: the signer must be one of --trusted-key or the trusted_keys file when either names any key;
    with neither, the packet's own key is used and reported as not pinned.
    """
    from diagkit.packet import zipsafe

    source = visible(str(path))
    trust = _trust_set(trusted_keys, use_trust_file)
    data, encrypted, recipients = read_packet_bytes(path, identity)
    archive = zipsafe.open_archive(data, source)
    # Only the three members that decide trust are inflated before the signer is known to be trusted.
    head = {name: archive.read(name) for name in (fmt.MANIFEST, fmt.SIGNATURE, fmt.SIGNER) if name in archive.names}
    signer, trusted_by = _check_signature(head, source, trust)
    manifest = _parse_manifest(head[fmt.MANIFEST], source)
    claimed = manifest["predicate"]["signer"]["key_id"]
    if claimed != signer.key_id:
        raise BadSignature(f"bad signature: manifest.json in packet '{source}' names signer {claimed}, "
                           f"but it is signed by {signer.key_id}")
    members = archive.read_all()
    _check_members(members, manifest, source)
    packet = VerifiedPacket(source=source, members=members, manifest=manifest, signer=signer,
                            pinned=trusted_by is not None, trusted_by=trusted_by, encrypted=encrypted,
                            recipients=recipients)
    packet.results()  # findings.json must parse, so that show cannot fail on a packet that verified
    return packet


def extract_packet(packet: VerifiedPacket, directory: str | Path, *, force: bool = False) -> list[Path]:
    """Write every member under `directory` (created if needed), never outside it, never through a symlink."""
    import os

    from diagkit.fsutil import write_atomic

    dest = Path(directory)
    if dest.is_symlink():
        # Someone else may have planted it (a shared /tmp): write only where the user can see they asked.
        raise InputError(f"cannot extract into '{dest}': it is a symlink (to '{os.readlink(dest)}')",
                         hint="give the real folder path")
    if dest.exists() and not dest.is_dir():
        raise InputError(f"cannot extract into '{dest}': it exists and is not a folder")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot extract into '{dest}': {exc.strerror or exc}") from None
    root = dest.resolve()
    plan: list[tuple[str, Path]] = []
    conflicts: list[str] = []
    for name in sorted(packet.members):
        target = root.joinpath(*name.split("/"))
        # Any existing component that is a symlink could point outside DIR: refuse, even with --force.
        probe = root
        parts = name.split("/")
        for depth, part in enumerate(parts, 1):
            probe = probe / part
            if probe.is_symlink():
                raise InputError(f"cannot extract '{name}' into '{dest}': '{probe}' is a symlink")
            if depth < len(parts) and probe.exists() and not probe.is_dir():
                conflicts.append(name)
        if not os.path.realpath(target).startswith(str(root) + os.sep):
            raise InputError(f"cannot extract '{name}': it would land outside '{dest}'")
        if target.exists():
            if target.is_dir() or not force:
                conflicts.append(name)
        plan.append((name, target))
    if conflicts:
        raise InputError(f"'{dest}' already holds {', '.join(conflicts[:5])}"
                         f"{' and more' if len(conflicts) > 5 else ''}; nothing was extracted",
                         hint="extract into an empty folder, or pass --force to overwrite files")
    written: list[Path] = []
    created: list[Path] = []  # new files and folders, removed again if the extraction does not finish
    try:
        for name, target in plan:
            missing = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
            target.parent.mkdir(parents=True, exist_ok=True)
            created += reversed(missing)
            fresh = not target.exists()
            write_atomic(target, packet.members[name])
            written.append(target)
            if fresh:
                created.append(target)
    except BaseException:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() else path.unlink()
        raise
    return written
