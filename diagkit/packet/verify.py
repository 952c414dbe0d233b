"""Verifying a packet: decrypt if needed, read the ZIP safely, check the signature, then every member.

Order matters: nothing in manifest.json is trusted until the DSSE signature over its exact bytes
verifies; only then are the subject digests compared with the members.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diagkit.errors import InputError, KeyFileError
from diagkit.findings import ProbeResult, parse_results_document
from diagkit.packet import dsse
from diagkit.packet import format as fmt
from diagkit.packet.errors import (
    BadSignature,
    EncryptedPacket,
    ExtraMember,
    MissingMember,
    MissingSignature,
    NotAPacket,
    TamperedMember,
    UntrustedSigner,
)
from diagkit.packet.keys import ED25519, PublicKey


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
        data = self.members.get(fmt.FINDINGS)
        if data is None:
            return []
        try:
            return parse_results_document(json.loads(data))
        except RecursionError:
            raise NotAPacket(f"findings.json in packet '{self.source}' is nested too deeply") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise NotAPacket(f"findings.json in packet '{self.source}' is not a diagkit result document ({exc})") from None

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
    from diagkit.packet import keys

    out = [(keys.load_public_key(k, ED25519, "trusted key"), "--trusted-key") for k in trusted_keys]
    if use_trust_file:
        out += [(k, "trusted_keys file") for k in keys.load_trusted_keys() if k.kind == ED25519]
    return out


def _check_signature(members: dict[str, bytes], source: str) -> PublicKey:
    from diagkit.packet import keys

    if fmt.MANIFEST not in members:
        raise NotAPacket(f"'{source}' is not a diagkit packet: it has no manifest.json")
    if fmt.SIGNATURE not in members:
        raise MissingSignature(f"packet '{source}' is not signed: manifest.sig is missing")
    if len(members[fmt.SIGNATURE]) > fmt.MAX_SIGNATURE_BYTES:
        raise BadSignature(f"manifest.sig in packet '{source}' is larger than {fmt.MAX_SIGNATURE_BYTES} bytes; "
                           "refused")
    try:
        envelope = dsse.parse(members[fmt.SIGNATURE])
    except dsse.EnvelopeError as exc:
        raise BadSignature(f"manifest.sig in packet '{source}' is not a DSSE envelope ({exc})") from None
    if not envelope.signatures:
        raise MissingSignature(f"packet '{source}' is not signed: manifest.sig holds no signatures")
    if envelope.payload_type != fmt.PAYLOAD_TYPE:
        raise BadSignature(f"manifest.sig in packet '{source}' has payloadType {envelope.payload_type!r}, "
                           f"expected {fmt.PAYLOAD_TYPE!r}")
    if fmt.SIGNER not in members:
        raise BadSignature(f"packet '{source}' does not carry its signer's public key ({fmt.SIGNER})")
    try:
        signer = keys.parse_public_line(members[fmt.SIGNER].decode("utf-8", "replace"), f"{fmt.SIGNER} in '{source}'")
    except KeyFileError as exc:
        raise BadSignature(f"packet '{source}': {exc.message}") from None
    if signer.kind != ED25519:
        raise BadSignature(f"packet '{source}': {fmt.SIGNER} is not an Ed25519 key")
    if not dsse.verify(envelope, signer.ed25519()):
        raise BadSignature(f"bad signature: manifest.sig in packet '{source}' does not verify under the signer key "
                           f"{signer.key_id} (signature altered, or signed by another key)")
    if envelope.payload != members[fmt.MANIFEST]:
        raise BadSignature(f"bad signature: manifest.json in packet '{source}' is not the signed payload "
                           "(manifest edited after signing, or signature swapped from another packet)")
    return signer


def schema_problem(document: Any, schema: str) -> str | None:
    """The first way `document` breaks diagkit/schemas/<schema>.schema.json, or None."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema(schema))
    error = next(iter(sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "top level"
    return f"{where}: {error.validator} check failed"


@functools.cache
def _schema(name: str) -> dict[str, Any]:
    from importlib import resources

    return json.loads(resources.files("diagkit").joinpath("schemas", f"{name}.schema.json").read_text("utf-8"))


def _parse_manifest(data: bytes, source: str) -> dict[str, Any]:
    if len(data) > fmt.MAX_MANIFEST_BYTES:
        raise NotAPacket(f"manifest.json in packet '{source}' is larger than {fmt.MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = fmt.loads_strict(data)
    except fmt.DuplicateKeyError as exc:
        raise NotAPacket(f"manifest.json in packet '{source}' is ambiguous: {exc} (refused: readers could "
                         "disagree on which one was signed)") from None
    except (ValueError, UnicodeDecodeError):
        raise NotAPacket(f"manifest.json in packet '{source}' is not JSON") from None
    problem = None
    if not isinstance(manifest, dict) or manifest.get("_type") != fmt.STATEMENT_TYPE:
        problem = "not an in-toto Statement v1"
    elif manifest.get("predicateType") != fmt.PREDICATE_TYPE:
        problem = f"predicateType {manifest.get('predicateType')!r} is not {fmt.PREDICATE_TYPE}"
    else:
        problem = schema_problem(manifest, "manifest")
    if problem:
        raise NotAPacket(f"manifest.json in packet '{source}' is not a diagkit manifest: {problem}")
    return manifest


def _check_members(members: dict[str, bytes], manifest: dict[str, Any], source: str) -> None:
    expected: dict[str, str] = {}
    for item in manifest["subject"]:
        name = item["name"]
        if name in expected or name in (fmt.MANIFEST, fmt.SIGNATURE):
            raise NotAPacket(f"manifest.json in packet '{source}' lists {name!r} twice or lists itself")
        expected[name] = item["digest"]["sha256"]
    present = set(members) - {fmt.MANIFEST, fmt.SIGNATURE}
    tampered = sorted(n for n in expected.keys() & present
                      if hashlib.sha256(members[n]).hexdigest() != expected[n])
    missing = sorted(expected.keys() - present)
    extra = sorted(present - expected.keys())
    problems: list[tuple[type, str]] = []
    problems += [(TamperedMember, f"tampered member {n!r} (sha256 does not match the manifest)") for n in tampered]
    problems += [(MissingMember, f"missing member {n!r} (listed in the manifest, not in the archive)") for n in missing]
    problems += [(ExtraMember, f"extra member {n!r} (in the archive, not in the manifest)") for n in extra]
    if problems:
        cls = problems[0][0]
        raise cls(f"packet '{source}' does not match its signed manifest: " + "; ".join(p for _, p in problems))


def verify_packet(path: str | Path, *, trusted_keys: Sequence[str | Path] = (), identity: str | Path | None = None,
                  use_trust_file: bool = True) -> VerifiedPacket:
    """Verify everything or raise a PacketError subclass whose one-line message says what is wrong.

    Trust: the signer must be one of --trusted-key or the trusted_keys file when either names any key;
    with neither, the packet's own key is used and reported as not pinned.
    """
    from diagkit.packet import zipsafe

    source = str(path)
    trust = _trust_set(trusted_keys, use_trust_file)
    data, encrypted, recipients = read_packet_bytes(path, identity)
    members = zipsafe.read_members(data, source)
    signer = _check_signature(members, source)
    trusted_by = next((how for key, how in trust if key.raw == signer.raw), None)
    if trust and trusted_by is None:
        where = "--trusted-key" if trusted_keys else "the trusted_keys file"
        raise UntrustedSigner(f"untrusted signer: packet '{source}' is validly signed by {signer.key_id}, "
                              f"which is not in {where}")
    manifest = _parse_manifest(members[fmt.MANIFEST], source)
    claimed = (manifest["predicate"].get("signer") or {}).get("key_id")
    if claimed not in (None, signer.key_id):
        raise BadSignature(f"bad signature: manifest.json in packet '{source}' names signer {claimed}, "
                           f"but it is signed by {signer.key_id}")
    _check_members(members, manifest, source)
    return VerifiedPacket(source=source, members=members, manifest=manifest, signer=signer,
                          pinned=trusted_by is not None, trusted_by=trusted_by, encrypted=encrypted,
                          recipients=recipients)


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
