"""Packet encryption: X25519 recipients wrap a random file key; the signed ZIP is sealed in STREAM chunks.

Layout (all integers big-endian; see docs/packet-format.md):
  header  = MAGIC (12) | version u8 | recipient count u8 | count x stanza | payload salt (16) | header MAC (32)
  stanza  = recipient key id (8) | ephemeral X25519 public key (32) | wrapped file key (32 + 16 tag)
  payload = chunks of ChaCha20-Poly1305(payload key, nonce = counter u88 | last-flag u8, chunk)
The header MAC (HMAC-SHA256 under a key derived from the file key) authenticates the whole header;
the counter and last-chunk flag in each nonce detect reordered, dropped and truncated chunks.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from diagkit.packet.errors import DecryptionFailed, NotAPacket
from diagkit.packet.format import MAX_RECIPIENTS
from diagkit.packet.keys import PublicKey, public_of

MAGIC = b"DIAGKIT-ENC\x00"
VERSION = 1
CHUNK = 64 * 1024
_TAG = 16
_STANZA = 8 + 32 + 32 + _TAG
_WRAP_INFO = b"diagkit-packet/v1 x25519 wrap"
_HEADER_INFO = b"diagkit-packet/v1 header"
_PAYLOAD_INFO = b"diagkit-packet/v1 payload"


def is_encrypted(data: bytes) -> bool:
    return data.startswith(MAGIC)


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret)


def _recipient_tag(raw_public: bytes) -> bytes:
    return hashlib.sha256(raw_public).digest()[:8]


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def encrypt(plaintext: bytes, recipients: list[PublicKey]) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    if not recipients:
        raise ValueError("at least one recipient is needed")
    if len(recipients) > MAX_RECIPIENTS:
        raise ValueError(f"at most {MAX_RECIPIENTS} recipients")
    file_key = os.urandom(32)
    header = bytearray(MAGIC + bytes([VERSION, len(recipients)]))
    for recipient in recipients:
        ephemeral = X25519PrivateKey.generate()
        eph_raw = public_of(ephemeral).raw
        shared = ephemeral.exchange(recipient.x25519())
        wrap_key = _hkdf(shared, eph_raw + recipient.raw, _WRAP_INFO)
        # The wrap key is single-use (fresh ephemeral key), so a zero nonce is safe.
        header += _recipient_tag(recipient.raw) + eph_raw + ChaCha20Poly1305(wrap_key).encrypt(b"\0" * 12, file_key, None)
    salt = os.urandom(16)
    header += salt
    header += hmac.new(_hkdf(file_key, b"", _HEADER_INFO), bytes(header), hashlib.sha256).digest()
    aead = ChaCha20Poly1305(_hkdf(file_key, salt, _PAYLOAD_INFO))
    out = [bytes(header)]
    count = max(1, -(-len(plaintext) // CHUNK))
    for index in range(count):
        chunk = plaintext[index * CHUNK:(index + 1) * CHUNK]
        out.append(aead.encrypt(_nonce(index, index == count - 1), chunk, None))
    return b"".join(out)


def recipients_of(data: bytes, source: str) -> list[str]:
    """Key ids (`x25519:` + 16 hex of the tag) the packet is encrypted to, as far as the header says."""
    count, _ = _parse_header(data, source)
    return [data[14 + i * _STANZA:14 + i * _STANZA + 8].hex() for i in range(count)]


def _parse_header(data: bytes, source: str) -> tuple[int, int]:
    if not data.startswith(MAGIC):
        raise NotAPacket(f"'{source}' is not an encrypted diagkit packet")
    if len(data) < len(MAGIC) + 2:
        raise DecryptionFailed(f"encrypted packet '{source}' is truncated (header)")
    version, count = data[len(MAGIC)], data[len(MAGIC) + 1]
    if version != VERSION:
        raise DecryptionFailed(f"encrypted packet '{source}' uses format version {version}; this diagkit reads {VERSION}")
    if not 1 <= count <= MAX_RECIPIENTS:
        raise DecryptionFailed(f"encrypted packet '{source}' has an invalid recipient count ({count})")
    header_end = len(MAGIC) + 2 + count * _STANZA + 16 + 32
    if len(data) < header_end:
        raise DecryptionFailed(f"encrypted packet '{source}' is truncated (header)")
    return count, header_end


def decrypt(data: bytes, identity: Any, source: str, identity_name: str = "identity") -> bytes:
    """The signed ZIP inside; one-line DecryptionFailed for a wrong identity, tampering or truncation."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    count, header_end = _parse_header(data, source)
    me = public_of(identity)
    tag = _recipient_tag(me.raw)
    file_key = None
    base = len(MAGIC) + 2
    for i in range(count):
        stanza = data[base + i * _STANZA: base + (i + 1) * _STANZA]
        if not hmac.compare_digest(stanza[:8], tag):
            continue
        eph_raw, wrapped = stanza[8:40], stanza[40:]
        try:
            from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

            shared = identity.exchange(X25519PublicKey.from_public_bytes(eph_raw))
            file_key = ChaCha20Poly1305(_hkdf(shared, eph_raw + me.raw, _WRAP_INFO)).decrypt(b"\0" * 12, wrapped, None)
            break
        except (InvalidTag, ValueError):
            continue
    if file_key is None:
        ids = ", ".join(f"x25519:{data[base + i * _STANZA:base + i * _STANZA + 8].hex()}" for i in range(count))
        raise DecryptionFailed(f"{identity_name} ({me.key_id}) cannot open encrypted packet '{source}'; "
                               f"it is encrypted to {ids}")
    mac_at = header_end - 32
    expected = hmac.new(_hkdf(file_key, b"", _HEADER_INFO), data[:mac_at], hashlib.sha256).digest()
    if not hmac.compare_digest(expected, data[mac_at:header_end]):
        raise DecryptionFailed(f"encrypted packet '{source}' has a tampered header (MAC mismatch)")
    aead = ChaCha20Poly1305(_hkdf(file_key, data[mac_at - 16:mac_at], _PAYLOAD_INFO))
    body = data[header_end:]
    if not body:
        raise DecryptionFailed(f"encrypted packet '{source}' is truncated (no payload after the header)")
    sealed = CHUNK + _TAG
    count_chunks = max(1, -(-len(body) // sealed))
    plain = []
    for index in range(count_chunks):
        piece = body[index * sealed:(index + 1) * sealed]
        last = index == count_chunks - 1
        try:
            plain.append(aead.decrypt(_nonce(index, last), piece, None))
        except InvalidTag:
            if last and _opens(aead, index, piece):
                raise DecryptionFailed(f"encrypted packet '{source}' is truncated (the last chunk is missing)") from None
            raise DecryptionFailed(f"encrypted packet '{source}' chunk {index} failed authentication "
                                   "(tampered, corrupt or truncated)") from None
    return b"".join(plain)


def _opens(aead: Any, index: int, piece: bytes) -> bool:
    from cryptography.exceptions import InvalidTag

    try:
        aead.decrypt(_nonce(index, False), piece, None)
        return True
    except InvalidTag:
        return False
