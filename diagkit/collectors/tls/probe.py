"""TLS probe: connect with SNI, capture the chain the server sends, and judge the certificate.

The handshake is done without verification so that even a broken chain can be inspected; the verdicts
(dates, host name, self-signed, incomplete or untrusted chain, weak keys) are then worked out one by one,
so each problem gets its own finding instead of OpenSSL's first error only.
"""

from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
import socket
import ssl
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diagkit.context import Context, parse_http_date
from diagkit.errors import InputError
from diagkit.findings import format_time, utc_now
from diagkit.formats.certs import load_pem_bundle
from diagkit.formats.urls import split_host_port
from diagkit.probe import Option, Probe, Report
from diagkit.scrub import scrub

if TYPE_CHECKING:
    from cryptography import x509

SOON = _dt.timedelta(days=30)
CLOCK_SKEW_LIMIT = 300  # seconds; beyond this, certificate dates seen from this machine are suspect
MAX_AIA_FETCHES = 3
# Handshake failures that mean "we could not agree on a protocol version": worth a legacy retry.
_VERSION_REASONS = {"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE",
                    "SSLV3_ALERT_HANDSHAKE_FAILURE", "NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE",
                    "TLSV1_ALERT_INSUFFICIENT_SECURITY", "UNSAFE_LEGACY_RENEGOTIATION_DISABLED"}




# ---------------------------------------------------------------- the handshake


@dataclass
class Session:
    chain: list[bytes]
    protocol: str | None
    cipher: str | None
    legacy: bool = False  # only a TLS 1.0/1.1 handshake worked
    http: dict[str, Any] = field(default_factory=dict)


class ConnectFailure(Exception):
    def __init__(self, stage: str, message: str, *, timed_out: bool = False, reason: str | None = None) -> None:
        super().__init__(message)
        self.stage, self.message, self.timed_out, self.reason = stage, message, timed_out, reason


def _inspecting_context(legacy: bool) -> ssl.SSLContext:
    """No verification and security level 0, so weak or broken certificates can still be captured."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    tls.set_ciphers("DEFAULT:@SECLEVEL=0")
    if legacy:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            tls.minimum_version = ssl.TLSVersion.TLSv1
    return tls


def _handshake(ctx: Context, host: str, port: int, sni: str | None, legacy: bool, *, http: bool = True) -> Session:
    started = time.monotonic()
    try:
        raw = socket.create_connection((host, port), timeout=ctx.timeout)
    except socket.gaierror as exc:
        raise ConnectFailure("dns", f"cannot resolve {host}: {exc.strerror or exc}") from None
    except TimeoutError:
        raise ConnectFailure("tcp", f"no TCP connection within {ctx.timeout:g} s", timed_out=True) from None
    except OSError as exc:
        raise ConnectFailure("tcp", f"TCP connection failed: {exc.strerror or exc}") from None
    try:
        raw.settimeout(ctx.timeout)
        try:
            conn = _inspecting_context(legacy).wrap_socket(raw, server_hostname=sni)
        except TimeoutError:
            raise ConnectFailure("tls", f"the TLS handshake did not complete within {ctx.timeout:g} s",
                                 timed_out=True) from None
        except ssl.SSLError as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            hint = " (the port does not speak TLS; plain HTTP?)" if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST") else ""
            raise ConnectFailure("tls", f"TLS handshake failed: {reason}{hint}", reason=reason) from None
        except OSError as exc:
            raise ConnectFailure("tls", f"TLS handshake failed: {exc.strerror or type(exc).__name__}") from None
        with conn:
            # get_unverified_chain: what the server really sent, in its order (Python 3.10+ private API).
            chain = [c.public_bytes(ssl._ssl.ENCODING_DER) for c in conn._sslobj.get_unverified_chain() or []]  # type: ignore[attr-defined]
            cipher = conn.cipher()
            session = Session(chain, conn.version(), cipher[0] if cipher else None, legacy)
            if http:
                session.http = _http_date(conn, sni or host, http_grace(ctx.timeout, time.monotonic() - started))
    finally:
        raw.close()
    return session


def http_grace(timeout: float, connect_s: float) -> float:
    """How long to wait for the HEAD's answer (the Date for the clock check, a bonus): a few round trips.

    TCP connect plus the handshake took `connect_s` (two or three round trips), and an HTTP server answers
    a HEAD within about one more. Waiting longer only delays the verdict on servers that do not speak HTTP
    (SMTP, LDAP, databases over TLS); the timeout stays the upper bound.
    """
    return min(timeout, max(0.5, 3 * connect_s))


def _http_date(conn: ssl.SSLSocket, host: str, timeout: float) -> dict[str, Any]:
    """A tiny HEAD over the established connection: the server's Date tells us whether our clock is off.

    Stops as soon as the first bytes are not "HTTP/" (a banner, a binary protocol) or the peer closes, so a
    server that does not speak HTTP costs at most `timeout` (see http_grace), usually nothing.
    """
    deadline = time.monotonic() + timeout
    try:
        conn.sendall(f"HEAD / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: diagkit\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 16384:
            if data and not (data[:5] == b"HTTP/"[: len(data[:5])]):
                break  # not an HTTP answer: no need to wait for the end of its head
            left = deadline - time.monotonic()
            if left <= 0:
                if not data:
                    return {"speaks_http": False, "waited_ms": int(timeout * 1000),
                            "note": "no answer to an HTTP HEAD request"}
                break
            conn.settimeout(left)
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        return {"speaks_http": False, "waited_ms": int(timeout * 1000), "note": "no answer to an HTTP HEAD request"}
    except (OSError, ssl.SSLError):
        return {"speaks_http": False}
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1", "replace").split("\r\n")
    if not head or not head[0].startswith("HTTP/"):
        first = "".join(ch if " " <= ch <= "~" else "." for ch in head[0][:40]) if head else ""
        return {"speaks_http": False, **({"first_bytes": scrub(first)} if first else {})}
    result: dict[str, Any] = {"speaks_http": True, "status_line": head[0][:80]}
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "date":
            moment = parse_http_date(value.strip(), assume_utc=False)
            if moment is not None:
                result["date"] = moment
            else:
                result["date_unparsable"] = value.strip()[:64]
    return result


# ---------------------------------------------------------------- SNI


# Alerts and abrupt closes with which servers refuse a ClientHello they cannot route: nginx
# `ssl_reject_handshake` and Python/OpenSSL servers send unrecognized_name, HAProxy `strict-sni` and CDNs
# handshake_failure, others internal_error/access_denied or a bare close.
# RFC 8446 §9.2 lets a TLS 1.3 server that requires SNI abort with missing_extension.
_SNI_REFUSALS = {"TLSV1_UNRECOGNIZED_NAME", "SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_ALERT_INTERNAL_ERROR",
                 "TLSV1_ALERT_ACCESS_DENIED", "TLSV13_ALERT_MISSING_EXTENSION", "TLSV1_ALERT_MISSING_EXTENSION",
                 "UNEXPECTED_EOF_WHILE_READING", "SSLEOFError", None}


def _reverse_name(ip: str, timeout: float) -> str | None:
    """The PTR name of an IP address (bounded by a thread: gethostbyaddr has no timeout of its own)."""
    import threading

    found: list[str] = []

    def work() -> None:
        try:
            found.append(socket.gethostbyaddr(ip)[0])
        except (OSError, UnicodeError):
            pass

    thread = threading.Thread(target=work, name="gethostbyaddr", daemon=True)
    thread.start()
    thread.join(timeout)
    name = found[0].rstrip(".") if found else None
    try:
        ipaddress.ip_address(name or "")
        return None
    except ValueError:
        return name


def explain_sni(ctx: Context, host: str, port: int, sni: str | None, failure: ConnectFailure) -> dict[str, Any] | None:
    """Why a handshake failure may be about SNI (RFC 6066 §3), checked by a retry where a name is known.

    Returns {"title", "detail", "evidence"} or None when SNI plays no part (TCP, timeouts, not TLS).
    """
    if failure.stage != "tls" or failure.timed_out or failure.reason not in _SNI_REFUSALS:
        return None
    alert = failure.reason or "connection closed"
    if sni is not None:
        if failure.reason != "TLSV1_UNRECOGNIZED_NAME":
            return None
        return {"title": f"the server does not serve the name '{sni}' sent as SNI",
                "detail": f" The server answered the SNI name '{sni}' with an unrecognized_name alert (RFC 6066 §3): "
                          "it has no virtual host or certificate for that name. Check the host name, or pass the "
                          "name the service is published under with --servername.",
                "evidence": {"sni_sent": True, "servername": sni, "alert": alert}}
    candidate = _reverse_name(host, min(ctx.timeout, 2.0))
    worked: Session | None = None
    if candidate:
        try:
            worked = _handshake(ctx, host, port, candidate, legacy=False, http=False)
        except ConnectFailure:
            worked = None
    evidence: dict[str, Any] = {"sni_sent": False, "alert": alert, "sni_required": "confirmed" if worked else "likely"}
    if worked is not None:
        evidence["works_with_sni"] = candidate
        return {"title": "the server refuses handshakes without SNI",
                "detail": f" No SNI was sent because the target is an IP address (SNI never carries one, RFC 6066 §3), "
                          f"and the server refused the handshake ({alert}). Retried with SNI '{candidate}' (the "
                          f"address's reverse DNS name), the handshake completes: the server needs SNI to pick a "
                          f"certificate. Connect by host name, or use --servername {candidate}.",
                "evidence": evidence}
    tried = f" A retry with SNI '{candidate}' (its reverse DNS name) failed too." if candidate else ""
    return {"title": "the server refused a handshake without SNI",
            "detail": f" No SNI was sent because the target is an IP address (SNI never carries one, RFC 6066 §3), "
                      f"and the server refused the handshake ({alert}). Servers that choose the certificate by name "
                      f"(nginx ssl_reject_handshake, HAProxy strict-sni, CDNs, Kubernetes ingresses) refuse such "
                      f"handshakes.{tried} Retry with --servername NAME (the host name clients use).",
            "evidence": evidence}


# ---------------------------------------------------------------- certificates


def _time(moment: _dt.datetime) -> str:
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
        "not_before": _time(cert.not_valid_before_utc),
        "not_after": _time(cert.not_valid_after_utc),
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


# ---------------------------------------------------------------- verdicts


def _days(delta: _dt.timedelta) -> str:
    days = delta.total_seconds() / 86400
    if abs(days) < 1:
        return f"{abs(delta.total_seconds()) / 3600:.0f} hours"
    return f"{abs(days):.0f} days"


def _check_dates(report: Report, certs: list[Any], labels: list[str], now: _dt.datetime, skew_note: str) -> None:
    for cert, label in zip(certs, labels, strict=True):
        before, after = cert.not_valid_before_utc, cert.not_valid_after_utc
        evidence = {"certificate": label, "subject": cert.subject.rfc4514_string(),
                    "not_before": _time(before), "not_after": _time(after), "checked_at": _time(now)}
        if after < now:
            report.add("tls.certificate.expired", f"The {label} certificate expired {_days(now - after)} ago",
                       detail=f"notAfter {_time(after)} is before {_time(now)}.{skew_note}", evidence=evidence)
        elif before > now:
            report.add("tls.certificate.not_yet_valid",
                       f"The {label} certificate is not valid for another {_days(before - now)}",
                       detail=f"notBefore {_time(before)} is after {_time(now)}.{skew_note}", evidence=evidence)
        else:
            # A 90-day certificate renewed at 60 days should not warn for a month: scale the window.
            window = min(SOON, (after - before) / 3)
            if after - now <= window:
                evidence["warn_window_days"] = round(window.total_seconds() / 86400, 1)
                report.add("tls.certificate.expires_soon", f"The {label} certificate expires in {_days(after - now)}",
                           detail=f"notAfter {_time(after)}; the warning window for a certificate valid "
                                  f"{_days(after - before)} is {_days(window)}.", evidence=evidence)


def _check_chain(ctx: Context, report: Report, leaf: Any, sent: list[Any], store: list[Any],
                 now: _dt.datetime, from_ca_file: bool) -> Path_:
    path = build_path(leaf, sent, store)
    if path.missing_issuer is not None:
        # What a browser would do: fetch the missing issuer from the AIA URL, then try again.
        extra: list[Any] = []
        top = path.certs[-1]
        for _ in range(MAX_AIA_FETCHES):
            urls = aia_urls(top)
            fetched = next((certs for url in urls[:2] if (certs := fetch_aia(ctx, url))), None)
            if not fetched:
                break
            path.fetched.append(urls[0])
            extra.extend(fetched)
            repaired = build_path(leaf, sent + extra, store)
            repaired.fetched = path.fetched
            if repaired.missing_issuer is None:
                break
            top = repaired.certs[-1]
        if extra:
            repaired = build_path(leaf, sent + extra, store)
            repaired.fetched = path.fetched
        else:
            repaired = path
        _report_missing(report, leaf, sent, path, repaired)
        return repaired
    if path.untrusted_root is not None:
        if path.untrusted_root is leaf:
            report.add("tls.certificate.self_signed", "The server's certificate is self-signed",
                       detail=f"'{leaf.subject.rfc4514_string()}' is its own issuer and is not in the trust store"
                              f"{' or --ca-file' if from_ca_file else ''}.",
                       evidence={"subject": leaf.subject.rfc4514_string(), "sha256": describe(leaf)["sha256"]})
        else:
            root = path.untrusted_root
            report.add("tls.chain.untrusted", "The chain ends at a root that is not trusted",
                       detail=f"The server's chain leads to '{root.subject.rfc4514_string()}', which is not in the "
                              f"system trust store{' nor --ca-file' if from_ca_file else ''}.",
                       evidence={"root": root.subject.rfc4514_string(), "root_sha256": describe(root)["sha256"],
                                 "root_sent_by_server": True})
    return path


def _report_missing(report: Report, leaf: Any, sent: list[Any], path: Path_, repaired: Path_) -> None:
    top = path.certs[-1]
    urls = aia_urls(top)
    evidence = {"missing_issuer": path.missing_issuer, "sent_count": len(sent), "aia_ca_issuers": urls,
                "aia_fetched": path.fetched}
    aia_note = (f" The certificate names its issuer's download URL (AIA caIssuers {urls[0]}), so browsers "
                "fetch it and work, while curl, Java, Python and most API clients fail." if urls else
                " The certificate has no AIA caIssuers URL, so no client can fetch the missing certificate.")
    if top is leaf or repaired.anchored:
        report.add("tls.chain.incomplete", "The server does not send the certificate that issued "
                   + ("its certificate" if top is leaf else f"'{top.subject.rfc4514_string()}'"),
                   detail=f"Missing: '{path.missing_issuer}'. It was not sent and is not a trusted root.{aia_note}",
                   evidence=evidence)
    if not repaired.anchored:
        end = repaired.untrusted_root
        where = (f"a root that is not trusted ('{end.subject.rfc4514_string()}')" if end is not None
                 else f"'{repaired.missing_issuer}', which is neither sent nor in the trust store")
        report.add("tls.chain.untrusted", "No path from the certificate to a trusted root",
                   detail=f"The chain ends at {where}." + ("" if top is leaf else aia_note),
                   evidence={"chain_ends_at": repaired.missing_issuer or (end.subject.rfc4514_string() if end else None),
                             "aia_fetched": repaired.fetched})


def _check_weak(report: Report, path_certs: list[Any], sent: list[Any]) -> None:
    seen: list[Any] = []
    for index, cert in enumerate([*sent, *[c for c in path_certs if c not in sent]]):
        if cert in seen:
            continue
        seen.append(cert)
        root = is_self_issued(cert) and index > 0
        # A root's self-signature is never checked by clients, so its hash does not matter; its key does.
        reasons = weak_reasons(cert, check_signature=not root)
        if reasons:
            label = "server" if index == 0 else "root" if root else "intermediate"
            report.add("tls.key.weak", f"The {label} certificate uses a weak key or signature: {', '.join(reasons)}",
                       detail=f"'{cert.subject.rfc4514_string()}': {', '.join(reasons)}.",
                       evidence={"certificate": label, "subject": cert.subject.rfc4514_string(),
                                 "key": " ".join(str(p) for p in key_info(cert)), "reasons": reasons})


def _validation_time(certs: list[Any], now: _dt.datetime) -> _dt.datetime | None:
    start = max(c.not_valid_before_utc for c in certs)
    end = min(c.not_valid_after_utc for c in certs)
    if start <= now <= end:
        return now
    return start if start <= end else None


# ---------------------------------------------------------------- the probe


def run(ctx: Context, report: Report, target: str, servername: str | None = None, ca_file: str | None = None) -> None:
    from cryptography import x509

    from diagkit.errors import read_input_bytes

    host, port = split_host_port(target)
    if not host:
        raise InputError(f"target '{target}' has no host name")
    name = servername or host
    try:
        ipaddress.ip_address(name)
        sni = None  # SNI never carries an IP address (RFC 6066 §3)
    except ValueError:
        sni = name
    extra_roots = load_pem_bundle(read_input_bytes(ca_file, "CA file", limit=16 << 20), ca_file) if ca_file else []
    report.facts.update({"host": host, "port": port, "servername": sni})

    try:
        session = _handshake(ctx, host, port, sni, legacy=False)
    except ConnectFailure as first:
        retried: Session | None = None
        if first.reason in _VERSION_REASONS:
            try:
                retried = _handshake(ctx, host, port, sni, legacy=True)
            except ConnectFailure:
                retried = None
        if retried is None:
            sni_note = explain_sni(ctx, host, port, sni, first)
            report.add("tls.connect.failed", f"TLS connection to {host}:{port} failed ({first.stage})"
                       + (f": {sni_note['title']}" if sni_note else ""),
                       detail=first.message + ("" if first.reason not in _VERSION_REASONS else
                                               " A retry allowing TLS 1.0/1.1 failed too.")
                       + ("." + sni_note["detail"] if sni_note else ""),
                       evidence={"host": host, "port": port, "stage": first.stage, "timed_out": first.timed_out,
                                 **({"reason": first.reason} if first.reason else {}),
                                 **(sni_note["evidence"] if sni_note else {})},
                       refs=["RFC 8446", "RFC 6066 §3"] if sni_note else None,
                       severity="error" if first.timed_out else None)
            return
        session = retried
    report.facts.update({"protocol": session.protocol, "cipher": session.cipher})
    if session.legacy:
        report.add("tls.protocol.outdated", f"{host}:{port} only speaks {session.protocol}",
                   detail=f"A TLS 1.2+ handshake failed; only {session.protocol} worked. Current clients refuse it.",
                   evidence={"protocol": session.protocol, "cipher": session.cipher})
    if not session.chain:
        report.add("tls.connect.failed", f"{host}:{port} sent no certificate",
                   detail="The handshake completed without a server certificate (anonymous or PSK cipher suite).",
                   evidence={"host": host, "port": port, "stage": "certificate"})
        return

    certs = [x509.load_der_x509_certificate(der) for der in session.chain]
    leaf, sent = certs[0], certs
    now = ctx.now()
    report.facts["chain"] = [describe(c) for c in certs]

    skew_note = _clock(report, session.http)
    store = system_roots() + extra_roots
    report.facts["trust_store"] = {"system_roots": len(store) - len(extra_roots), "ca_file_roots": len(extra_roots)}

    problems_before = len(report.problems())
    path = _check_chain(ctx, report, leaf, sent, store, now, bool(extra_roots))
    labels = ["server"] + ["root" if is_self_issued(c) else "intermediate" for c in path.certs[1:]]
    _check_dates(report, path.certs, labels, now, skew_note)

    matched, presented = hostname_matches(leaf, name)
    if not matched:
        report.add("tls.hostname.mismatch", f"The certificate does not cover '{name}'",
                   detail=(f"Names in the certificate: {', '.join(presented)}." if presented else
                           "The certificate has no subjectAltName; clients no longer use the subject CN.")
                   + (" IP addresses only match IP SANs." if sni is None else ""),
                   evidence={"expected": name, "presented": presented,
                             "subject_cn": [a.value for a in leaf.subject.get_attributes_for_oid(
                                 x509.oid.NameOID.COMMON_NAME)]})
    _check_weak(report, path.certs, sent)

    if path.anchored and len(report.problems()) == problems_before:
        at = _validation_time(path.certs, now)
        objection = webpki_problem(leaf, sent[1:] + [c for c in path.certs[1:] if c not in sent],
                                   [path.certs[-1]], at) if at else None
        if objection:
            # OpenSSL-based clients (curl, Python, most servers) accept such chains; strict WebPKI verifiers may not.
            report.add("tls.chain.policy", "The chain is trusted but breaks a WebPKI rule",
                       detail=f"A path to a trusted root exists; a strict verifier objects: {objection.split(' (encountered')[0]}",
                       evidence={"verifier": objection.split(" (encountered")[0]})
    report.facts["path"] = [c.subject.rfc4514_string() for c in path.certs]
    report.facts["trusted"] = path.anchored and not any(f.id == "tls.chain.untrusted" for f in report.findings)

    if not report.problems():
        root = path.certs[-1].subject.rfc4514_string()
        days_left = (leaf.not_valid_after_utc - now).days
        report.add("tls.connect.ok", f"{session.protocol} to {host}:{port}: certificate valid for '{name}'",
                   detail=f"Chain validates to '{root}'; host name matches; expires in {days_left} days "
                          f"({_time(leaf.not_valid_after_utc)}); cipher {session.cipher}.",
                   evidence={"protocol": session.protocol, "cipher": session.cipher, "root": root,
                             "not_after": _time(leaf.not_valid_after_utc)})


def _clock(report: Report, http: dict[str, Any]) -> str:
    """Compare this machine's real clock with the server's Date; returns a note for date findings."""
    report.facts["http"] = {k: (format_time(v) if isinstance(v, _dt.datetime) else v) for k, v in http.items()}
    server_date = http.get("date")
    if not isinstance(server_date, _dt.datetime):
        return ""
    # The machine's own clock, even when DIAGKIT_NOW fixes the verdict clock: this is about the machine.
    local = utc_now()
    skew = (local - server_date).total_seconds()
    report.facts["clock"] = {"server_date": format_time(server_date), "local_time": format_time(local),
                             "skew_seconds": int(skew)}
    if abs(skew) <= CLOCK_SKEW_LIMIT:
        return ""
    direction = "ahead of" if skew > 0 else "behind"
    report.add("tls.clock.skew", f"This machine's clock is {_days(_dt.timedelta(seconds=skew))} {direction} the server's",
               detail=f"Server Date: {format_time(server_date)}; local clock: {format_time(local)}. A wrong clock makes "
                      "valid certificates look expired or not yet valid.",
               evidence={"server_date": format_time(server_date), "local_time": format_time(local),
                         "skew_seconds": int(skew)})
    return f" This machine's clock differs from the server's by {int(skew)} s; check it first."


probe = Probe(
    name="tls",
    summary="Check a TLS endpoint's certificate, chain, host name and protocol.",
    target="HOST[:PORT]",
    run=run,
    check_target=split_host_port,
    options=(
        Option("servername", "SNI name to send and to match the certificate against (default: the host).",
               metavar="NAME"),
        Option("ca_file", "Extra trusted CA certificates (PEM), added to the system trust store.", metavar="PEM"),
    ),
    default_timeout=10.0,
    max_calls=6,
    example="diagkit probe tls api.example.com:443 --servername api.example.com",
    description=(
        "Connect to HOST[:PORT] (default 443) with SNI, capture the chain the server sends and judge it: dates, "
        "host name (SAN DNS/IP), self-signed, incomplete or untrusted chain (with the AIA caIssuers URL), weak keys "
        "and signatures, TLS 1.0/1.1-only servers, and this machine's clock against the server's HTTP Date."
    ),
)
