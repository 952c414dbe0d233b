"""Certificates as the TLS probe judges them: descriptions, weak keys and signatures, the system trust
store, path building with AIA fetches and Web PKI checks, and host-name matching (RFC 6125)."""

from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diagkit.context import Context
from diagkit.errors import InputError
from diagkit.findings import format_time
from diagkit.formats.certs import load_pem_bundle

if TYPE_CHECKING:
    from cryptography import x509


# ---------------------------------------------------------------- certificates


def time_text(moment: _dt.datetime) -> str:
    return format_time(moment)


def describe(cert: x509.Certificate) -> dict[str, Any]:
    """Facts about one certificate, the way an engineer would read them out of `openssl x509 -text`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [f"DNS:{n}" for n in san_ext.get_values_for_type(x509.DNSName)]
        sans += [f"IP:{ip}" for ip in san_ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        sans = []
    key_type, key_size = key_info(cert)
    sig_hash = cert.signature_hash_algorithm
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "sans": sans,
        "serial": format(cert.serial_number, "x"),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        "not_before": time_text(cert.not_valid_before_utc),
        "not_after": time_text(cert.not_valid_after_utc),
        "key_type": key_type,
        "key_size": key_size,
        "signature_algorithm": (sig_hash.name if sig_hash else "none") + "-" + _sig_family(cert),
        "self_signed": is_self_issued(cert),
        "aia_ca_issuers": aia_urls(cert),
    }


def key_info(cert: x509.Certificate) -> tuple[str, int | None]:
    from diagkit.formats.certs import key_description

    return key_description(cert)


def _sig_family(cert: x509.Certificate) -> str:
    name = cert.signature_algorithm_oid._name  # e.g. sha256WithRSAEncryption
    return "RSA" if "RSA" in name else "ECDSA" if "ecdsa" in name.lower() else "DSA" if "dsa" in name.lower() else name


def aia_urls(cert: x509.Certificate) -> list[str]:
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID

    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [d.access_location.value for d in aia
            if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except ValueError:
        # cryptography refuses SHA-1/MD5 here; such a chain is still a chain (tls.key.weak says the rest).
        return _legacy_signature_ok(cert, issuer)
    except Exception:  # noqa: BLE001 - any failure (bad signature, unsupported key) means "not this issuer"
        return False
    return True


def _legacy_signature_ok(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    key, algorithm = issuer.public_key(), cert.signature_hash_algorithm
    if algorithm is None:
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except Exception:  # noqa: BLE001 - a bad or unsupported signature: not this issuer
        return False
    return True


def is_self_issued(cert: x509.Certificate) -> bool:
    return issued_by(cert, cert)


def weak_reasons(cert: x509.Certificate, *, check_signature: bool) -> list[str]:
    from cryptography.hazmat.primitives import hashes

    key_type, size = key_info(cert)
    reasons = []
    if key_type in ("RSA", "DSA") and size is not None and size < 2048:
        reasons.append(f"{key_type} key of {size} bits (< 2048)")
    if key_type.startswith("EC ") and size is not None and size < 224:
        reasons.append(f"EC key of {size} bits (< 224)")
    sig_hash = cert.signature_hash_algorithm
    if check_signature and isinstance(sig_hash, hashes.SHA1 | hashes.MD5):
        reasons.append(f"{sig_hash.name.upper()} signature")
    return reasons


def system_roots() -> list[x509.Certificate]:
    """The system trust store OpenSSL would use (cafile, then the hashed directory).

    Cached per location, not once per process: SSL_CERT_FILE / SSL_CERT_DIR may change between runs in one
    process (collect, tests), and a stale store would silently trust or distrust the wrong roots.
    """
    import os

    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get(paths.openssl_cafile_env), paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            roots = _bundle_roots(candidate, os.stat(candidate).st_mtime_ns)
            if roots is not None:
                return roots
    capath = os.environ.get(paths.openssl_capath_env) or paths.capath
    if capath and os.path.isdir(capath):
        return _dir_roots(capath, os.stat(capath).st_mtime_ns)
    return []


@functools.cache
def _bundle_roots(path: str, mtime_ns: int) -> list[x509.Certificate] | None:
    from pathlib import Path

    try:
        return load_pem_bundle(Path(path).read_bytes(), path)
    except (InputError, OSError):
        return None


@functools.cache
def _dir_roots(capath: str, mtime_ns: int) -> list[x509.Certificate]:
    from pathlib import Path

    roots: list[x509.Certificate] = []
    for entry in sorted(Path(capath).glob("*.0")):
        try:
            roots.extend(load_pem_bundle(entry.read_bytes(), str(entry)))
        except (InputError, OSError):
            continue
    return roots


# ---------------------------------------------------------------- chain building


@dataclass
class Path_:
    certs: list[Any]  # leaf first
    anchored: bool = False  # ends at a trust-store certificate
    untrusted_root: Any = None  # ends at a self-signed certificate not in the store
    missing_issuer: str | None = None  # the issuer name nobody sent and the store does not hold
    fetched: list[str] = field(default_factory=list)  # AIA URLs that supplied a missing certificate


def build_path(leaf: Any, sent: list[Any], store: list[Any]) -> Path_:
    from cryptography.hazmat.primitives import hashes

    trusted = {c.fingerprint(hashes.SHA256()) for c in store}
    path = Path_([leaf])
    current = leaf
    for _ in range(10):
        if current.fingerprint(hashes.SHA256()) in trusted:
            path.anchored = True
            return path
        # Prefer a trust anchor over a sent copy, as OpenSSL's X509_V_FLAG_TRUSTED_FIRST does.
        issuer = next((c for c in store if issued_by(current, c)), None)
        if issuer is None:
            issuer = next((c for c in sent if c is not current and c not in path.certs and issued_by(current, c)), None)
        if issuer is None:
            if is_self_issued(current):
                path.untrusted_root = current
            else:
                path.missing_issuer = current.issuer.rfc4514_string()
            return path
        path.certs.append(issuer)
        current = issuer
    path.missing_issuer = current.issuer.rfc4514_string()  # absurdly long chain: treat as unfinished
    return path


def fetch_aia(ctx: Context, url: str) -> list[Any]:
    """Download a caIssuers certificate (DER, PEM or PKCS#7), bounded by the timeout."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs7

    if not url.lower().startswith(("http://", "https://")):
        return []
    try:
        with ctx.http_client(follow_redirects=True) as client:
            response = client.get(url)
    except Exception:  # noqa: BLE001 - any network trouble just means "could not fetch"
        return []
    if response.status_code != 200:
        return []
    body = response.content[:200_000]
    for loader in (lambda b: [x509.load_der_x509_certificate(b)], x509.load_pem_x509_certificates,
                   pkcs7.load_der_pkcs7_certificates, pkcs7.load_pem_pkcs7_certificates):
        try:
            return list(loader(body))
        except ValueError:
            continue
    return []


def webpki_problem(leaf: Any, intermediates: list[Any], anchor_store: list[Any], at: _dt.datetime) -> str | None:
    """What cryptography's WebPKI verifier objects to in an otherwise anchored chain (None: nothing)."""
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    subject: Any
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None  # reported as a host-name problem; nothing to ask the verifier
    # The host name is judged separately; here only the chain matters, so use a name the leaf covers.
    dns_names = san.get_values_for_type(x509.DNSName)
    ips = san.get_values_for_type(x509.IPAddress)
    if dns_names:
        first = dns_names[0]
        subject = x509.DNSName("x" + first[1:] if first.startswith("*.") else first)
    elif ips:
        subject = x509.IPAddress(ips[0])
    else:
        return None
    try:
        verifier = PolicyBuilder().store(Store(anchor_store)).time(at).build_server_verifier(subject)
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - e.g. an unparsable extension: still an answer, not a crash
        return f"{type(exc).__name__}: {exc}"
    return None


# ---------------------------------------------------------------- host name


def hostname_matches(cert: Any, name: str) -> tuple[bool, list[str]]:
    """RFC 6125/9525: DNS SANs (left-most full wildcard label only), IP SANs for IP targets; no CN fallback."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False, []
    dns_names = san.get_values_for_type(x509.DNSName)
    ips = san.get_values_for_type(x509.IPAddress)
    presented = [f"DNS:{n}" for n in dns_names] + [f"IP:{ip}" for ip in ips]
    try:
        wanted_ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        wanted_ip = None
    if wanted_ip is not None:
        return any(ip == wanted_ip for ip in ips), presented
    wanted = name.rstrip(".").lower()
    try:
        wanted = wanted.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    for pattern in dns_names:
        pattern = pattern.rstrip(".").lower()
        if pattern == wanted:
            return True, presented
        if pattern.startswith("*.") and "*" not in pattern[2:]:
            head, _, rest = wanted.partition(".")
            if head and rest == pattern[2:] and rest.count(".") >= 1:
                return True, presented
    return False, presented
