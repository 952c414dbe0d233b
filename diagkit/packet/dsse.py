"""DSSE envelopes (https://github.com/secure-systems-lab/dsse): PAE, Ed25519 sign and verify.

The signature covers PAE(payloadType, payload) over the exact manifest bytes; a verifier compares
those bytes with the manifest member, never a re-serialisation.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from diagkit.packet.format import MAX_SIGNATURES, PAYLOAD_TYPE


def pae(payload_type: str, payload: bytes) -> bytes:
    """Pre-Authentication Encoding: `DSSEv1 <len type> <type> <len body> <body>`, lengths in ASCII decimal bytes."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def sign(payload: bytes, private_key: Any, keyid: str, payload_type: str = PAYLOAD_TYPE) -> bytes:
    """The envelope as deterministic JSON bytes (Ed25519 signatures are deterministic too)."""
    signature = private_key.sign(pae(payload_type, payload))
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode()}],
    }
    return (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode()


class EnvelopeError(ValueError):
    """The envelope is not DSSE JSON (distinct from a signature that does not verify)."""


@dataclass
class Envelope:
    payload_type: str
    payload: bytes
    signatures: list[tuple[str, bytes]]  # (keyid, raw signature)


def _b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise EnvelopeError("base64 field is not a string")
    try:
        # DSSE allows standard or URL-safe base64, padded or not.
        cleaned = text.replace("-", "+").replace("_", "/")
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("invalid base64") from None


def parse(data: bytes) -> Envelope:
    from diagkit.packet.format import DuplicateKeyError, loads_strict

    try:
        doc = loads_strict(data)
    except DuplicateKeyError as exc:
        raise EnvelopeError(f"ambiguous JSON: {exc}") from None
    except (ValueError, UnicodeDecodeError):
        raise EnvelopeError("not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("payloadType"), str) or "payload" not in doc:
        raise EnvelopeError("no payloadType/payload")
    raw_sigs = doc.get("signatures")
    if not isinstance(raw_sigs, list):
        raise EnvelopeError("no signatures list")
    if len(raw_sigs) > MAX_SIGNATURES:
        # Refused before any is decoded or checked: each costs a public-key operation.
        raise EnvelopeError(f"{len(raw_sigs)} signatures, more than the {MAX_SIGNATURES} diagkit considers")
    signatures = []
    for item in raw_sigs:
        if not isinstance(item, dict) or "sig" not in item:
            raise EnvelopeError("signature entry without 'sig'")
        signature = _b64(item["sig"])
        if len(signature) != 64:
            raise EnvelopeError("a signature that is not 64 bytes (Ed25519)")
        signatures.append((str(item.get("keyid", "")), signature))
    return Envelope(doc["payloadType"], _b64(doc["payload"]), signatures)


def verify(envelope: Envelope, public_key: Any) -> bool:
    """True when at least one signature verifies under `public_key` (an Ed25519PublicKey)."""
    from cryptography.exceptions import InvalidSignature

    message = pae(envelope.payload_type, envelope.payload)
    for _keyid, signature in envelope.signatures:
        try:
            public_key.verify(signature, message)
            return True
        except InvalidSignature:
            continue
    return False
