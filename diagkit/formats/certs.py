"""Shared X.509 helpers for the SSO probes: load certificates as SAML/JWKS carry them, describe and judge them.

SAML metadata holds base64 DER in X509Certificate (sometimes wrapped, sometimes base64 of a whole PEM
block); a JWKS x5c holds standard base64 DER. The judgement (expired, expires soon, weak key, SHA-1
signature) is the same for both, so it lives here once.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from diagkit.findings import format_time, human_duration

if TYPE_CHECKING:
    from cryptography import x509

EXPIRES_SOON_DAYS = 30
MIN_RSA_BITS = 2048
MIN_EC_BITS = 224
WEAK_SIGNATURE_HASHES = {"sha1", "md5", "md2"}

# The body may not contain another BEGIN line: many BEGINs without an END then cost linear time,
# where ".+?" rescanned to the end of the input from every BEGIN (quadratic, ReDoS).
_PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----((?:(?!-----BEGIN ).)+?)-----END CERTIFICATE-----", re.S)


class CertificateError(ValueError):
    """The text is not a certificate; the message never contains the text itself."""


def _b64(text: str | bytes) -> bytes:
    raw = text.encode("ascii", "ignore") if isinstance(text, str) else text
    compact = re.sub(rb"\s+", b"", raw)
    compact += b"=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError("not base64") from None


def load_certificate(text: str | bytes) -> x509.Certificate:
    """A certificate from base64 DER, a PEM block, or base64 of a PEM block (double-encoded metadata)."""
    import warnings

    # Old IdP certificates often have negative serials; cryptography warns on stderr, we still read them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _load_certificate(text)


def _load_certificate(text: str | bytes) -> x509.Certificate:
    from cryptography import x509

    raw = text.encode("utf-8", "ignore") if isinstance(text, str) else text
    pem = _PEM_RE.search(raw)
    if pem is None:
        der = _b64(raw)
        # Some tools put base64(PEM) in X509Certificate: decode once more.
        pem = _PEM_RE.search(der)
        if pem is None:
            try:
                return x509.load_der_x509_certificate(der)
            except ValueError:
                raise CertificateError("not a DER X.509 certificate") from None
    try:
        return x509.load_der_x509_certificate(_b64(pem.group(1)))
    except ValueError:
        raise CertificateError("not a PEM X.509 certificate") from None


def key_description(cert: x509.Certificate) -> tuple[str, int | None]:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    try:
        key = cert.public_key()
    except (ValueError, TypeError):
        return "unknown", None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(key).__name__, None


def signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # noqa: BLE001 - unsupported algorithms (e.g. MD2) must not stop the check
        oid_name = getattr(cert.signature_algorithm_oid, "_name", "")
        return "md2" if "md2" in oid_name.lower() else None
    return algorithm.name if algorithm is not None else None


def fingerprints(cert: x509.Certificate) -> dict[str, str]:
    from cryptography.hazmat.primitives import hashes

    return {
        "sha256": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        "sha1": cert.fingerprint(hashes.SHA1()).hex(":").upper(),  # what IdP admin consoles often show
    }


def describe(cert: x509.Certificate) -> dict[str, Any]:
    """Public facts about a certificate (subjects of signing certificates are not personal data)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # negative serials of old IdP certificates
        serial = cert.serial_number
    key_type, bits = key_description(cert)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(serial, "x"),
        "not_before": format_time(cert.not_valid_before_utc),
        "not_after": format_time(cert.not_valid_after_utc),
        "key": f"{key_type} {bits}" if bits else key_type,
        "signature_hash": signature_hash(cert),
        "self_signed": cert.subject == cert.issuer,
        "fingerprint_sha256": fingerprints(cert)["sha256"],
        "fingerprint_sha1": fingerprints(cert)["sha1"],
    }


@dataclass(frozen=True)
class CertProblem:
    kind: str  # expired | not_yet_valid | expires_soon | weak_key | weak_signature
    message: str



def assess(cert: x509.Certificate, now: _dt.datetime, soon_days: int = EXPIRES_SOON_DAYS) -> list[CertProblem]:
    problems: list[CertProblem] = []
    not_after, not_before = cert.not_valid_after_utc, cert.not_valid_before_utc
    if not_after < now:
        problems.append(CertProblem("expired", f"expired {human_duration((now - not_after).total_seconds())} ago ({format_time(not_after)})"))
    elif not_before > now:
        problems.append(CertProblem("not_yet_valid", f"not valid before {format_time(not_before)}"))
    elif not_after - now < _dt.timedelta(days=soon_days):
        problems.append(CertProblem("expires_soon", f"expires in {human_duration((not_after - now).total_seconds())} ({format_time(not_after)})"))
    key_type, bits = key_description(cert)
    if bits is not None and ((key_type in ("RSA", "DSA") and bits < MIN_RSA_BITS)
                             or (key_type.startswith("EC") and bits < MIN_EC_BITS)):
        problems.append(CertProblem("weak_key", f"{key_type} key of {bits} bits (minimum {MIN_RSA_BITS} for RSA)"))
    digest = signature_hash(cert)
    if digest in WEAK_SIGNATURE_HASHES:
        problems.append(CertProblem("weak_signature", f"certificate signed with {digest.upper()}"))
    return problems


def load_pem_bundle(data: bytes, where: str) -> list[x509.Certificate]:
    """Every certificate of a PEM CA file; a file with none is an input error naming `where`."""
    import warnings

    from cryptography import x509

    from diagkit.errors import InputError

    try:
        with warnings.catch_warnings():
            # Some shipped roots have odd serials; they still work as anchors.
            warnings.simplefilter("ignore")
            return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise InputError(f"CA file '{where}' holds no PEM certificate") from None
