"""A raw look along an HTTPS request's path, for diagnosis only, after httpx reported a failure.

Two things httpx does not expose: what a forward proxy said when it refused a CONNECT (its
Proxy-Authenticate challenge: httpcore keeps only "407 <reason>"), and which certificate chain the far
end presented when verification failed (read here without verifying, so the issuer, e.g. a
TLS-inspecting proxy's CA, can be named). Nothing but a CONNECT and a TLS handshake is sent: no request,
no credentials other than the proxy's own (from its URL, as httpx sends them). Every step is bounded
by the probe's timeout.
"""

from __future__ import annotations

import base64
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from diagkit.formats.urls import is_ip, masked_url

if TYPE_CHECKING:
    from diagkit.collectors.http.exchange import ConnectFailure
    from diagkit.context import Context

HEAD_LIMIT = 16384
# Names of TLS-inspection products as they appear in their CA certificates' subjects.
_INSPECTORS = ("zscaler", "netskope", "fortinet", "fortigate", "palo alto", "paloalto", "blue coat", "bluecoat",
               "forcepoint", "websense", "sophos", "cisco umbrella", "mcafee", "skyhigh", "check point",
               "checkpoint", "kaspersky", "avast", "eset", "bitdefender", "squid", "mitmproxy", "charles proxy",
               "fiddler", "burp", "cloudflare gateway", "iboss", "menlo", "lightspeed", "securly", "contentkeeper")


def proxy_for(url: str, explicit: str | None = None) -> str | None:
    """The proxy a request to `url` goes through: --proxy, else HTTP(S)_PROXY/ALL_PROXY unless NO_PROXY."""
    if explicit:
        return explicit if "://" in explicit else "http://" + explicit
    # proxy_bypass_environment (NO_PROXY matching) exists on every platform but is undocumented, so typeshed omits it.
    from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

    proxies = getproxies_environment()
    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme.lower()) or proxies.get("all")
    if not proxy or proxy_bypass_environment(parts.hostname or "", proxies):
        return None
    return proxy if "://" in proxy else "http://" + proxy


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _read_head(sock: socket.socket, deadline: float) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < HEAD_LIMIT:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _tunnel(proxy_url: str, host: str, port: int, timeout: float) -> tuple[socket.socket | None, dict[str, Any]]:
    """CONNECT through an http:// proxy. Returns (the open tunnel or None, what the proxy answered)."""
    from diagkit.formats import www_authenticate

    proxy = urlsplit(proxy_url)
    answer: dict[str, Any] = {"proxy": masked_url(proxy_url), "credentials_sent": proxy.username is not None}
    if proxy.scheme.lower() != "http" or not proxy.hostname:
        answer["error"] = f"only http:// proxies are inspected ({proxy.scheme}:// given)"
        return None, answer
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((proxy.hostname, proxy.port or 80), timeout=timeout)
    try:
        lines = [f"CONNECT {_authority(host, port)} HTTP/1.1", f"Host: {_authority(host, port)}", "User-Agent: diagkit"]
        if proxy.username is not None:
            # The same Basic credentials httpx derives from the proxy URL; never shown anywhere.
            pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
            lines.append("Proxy-Authorization: Basic " + base64.b64encode(pair).decode("ascii"))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = _read_head(sock, deadline).split(b"\r\n\r\n", 1)[0].decode("latin-1", "replace").split("\r\n")
    except BaseException:
        sock.close()
        raise
    status_line = head[0].split(" ", 2) if head and head[0] else []
    status = int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else None
    answer.update({"status": status, "reason": status_line[2][:80] if len(status_line) > 2 else ""})
    challenges = www_authenticate.parse_all([value.strip() for name, _, value in (line.partition(":") for line in head[1:])
                                             if name.strip().lower() == "proxy-authenticate"])
    if challenges:
        answer["schemes"] = [c.scheme for c in challenges]
        realm = next((c.params["realm"] for c in challenges if "realm" in c.params), None)
        if realm:
            answer["realm"] = realm
    if status != 200:
        sock.close()
        return None, answer
    return sock, answer


def connect_answer(proxy_url: str, url: str, timeout: float) -> dict[str, Any]:
    """What the proxy answers to a CONNECT for `url`'s host (status, challenge schemes, realm); {} on error."""
    parts = urlsplit(url)
    try:
        sock, answer = _tunnel(proxy_url, parts.hostname or "", parts.port or 443, timeout)
    except (OSError, ValueError):
        return {}
    if sock is not None:
        sock.close()
    return answer


def presented_chain(url: str, proxy_url: str | None, timeout: float) -> list[Any]:
    """The certificates the far end of `url` presents (leaf first), read without verification; [] on error."""
    from cryptography import x509

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    try:
        if proxy_url:
            raw, _ = _tunnel(proxy_url, host, port, timeout)
            if raw is None:
                return []
        else:
            raw = socket.create_connection((host, port), timeout=timeout)
    except (OSError, ValueError):
        return []
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE  # on purpose: the point is to read a chain that does not verify
    tls.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        raw.settimeout(timeout)
        sni = None if is_ip(host) else host
        with tls.wrap_socket(raw, server_hostname=sni) as conn:
            # get_unverified_chain: what the server really sent, in its order (as the TLS probe reads it).
            ders = [c.public_bytes(ssl._ssl.ENCODING_DER) for c in conn._sslobj.get_unverified_chain() or []]  # type: ignore[attr-defined]
    except (OSError, ssl.SSLError, ValueError):
        return []
    finally:
        raw.close()
    certs = []
    for der in ders:
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError:
            break
    return certs




def _short_name(name: Any) -> str:
    from cryptography.x509.oid import NameOID

    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        found = name.get_attributes_for_oid(oid)
        if found:
            return str(found[0].value)
    return name.rfc4514_string()


def explain_tls_failure(url: str, proxy_url: str | None, timeout: float,
                        extra_roots: list[Any] | None = None) -> tuple[str, dict[str, Any]]:
    """(a sentence for the finding, evidence) naming who issued the certificate that failed; ("", {}) when
    the chain could not be read either."""
    from cryptography.hazmat.primitives import hashes

    from diagkit.collectors.tls.chain import issued_by, system_roots

    certs = presented_chain(url, proxy_url, timeout)
    if not certs:
        return "", {}
    leaf = certs[0]
    issuer, issuer_dn = _short_name(leaf.issuer), leaf.issuer.rfc4514_string()
    store = system_roots() + list(extra_roots or [])
    top = certs[-1]
    trusted = any(issued_by(top, root) or top.fingerprint(hashes.SHA256()) == root.fingerprint(hashes.SHA256())
                  for root in store)
    vendor = next((v for v in _INSPECTORS if v in issuer_dn.lower() or v in top.subject.rfc4514_string().lower()), None)
    evidence: dict[str, Any] = {
        "certificate_issuer": issuer_dn,
        "certificate_subject": leaf.subject.rfc4514_string(),
        "presented_chain": [{"subject": c.subject.rfc4514_string(), "issuer": c.issuer.rfc4514_string(),
                             "sha256": c.fingerprint(hashes.SHA256()).hex(":").upper()} for c in certs],
        "issuer_trusted": trusted,
        "via_proxy": proxy_url is not None,
        "title_note": f"certificate issued by '{issuer}'",
    }
    if vendor:
        evidence["inspection_product"] = vendor
    note = f" The server presented a certificate for '{_short_name(leaf.subject)}' issued by '{issuer_dn}'"
    if len(certs) > 1:
        note += f" (chain of {len(certs)}, ending at '{top.subject.rfc4514_string()}')"
    note += "."
    if not trusted:
        note += (f" This machine does not trust that issuer{' (the name looks like ' + vendor + ' TLS inspection)' if vendor else ''}:"
                 " if it is your organisation's TLS-inspecting proxy, give the client its CA (trust store, or --ca-file"
                 " here); otherwise something between this machine and the server intercepts the connection.")
    return note, evidence


def explain_failure(ctx: Context, url: str, failure: ConnectFailure, proxy: str | None) -> None:
    """A closer look after httpx failed: the proxy's 407 challenge on CONNECT, or the issuer of the
    certificate that did not verify (e.g. a TLS-inspecting proxy's CA). Bounded by the timeout.

    Fills failure.note and failure.evidence, which report_connect_failure adds to the finding; usable by
    any probe that sends through http_exchange.send (the webhook probe too)."""
    via = proxy or proxy_for(url)
    if failure.layer == "proxy" and failure.status == 407 and via:
        answer = connect_answer(via, url, ctx.timeout)
        failure.evidence.update({k: v for k, v in answer.items() if k in ("proxy", "schemes", "realm",
                                                                          "credentials_sent")})
        if answer:
            schemes = ", ".join(answer.get("schemes") or []) or "no Proxy-Authenticate challenge"
            failure.note = (f" The proxy {answer.get('proxy')} asks for: {schemes}"
                            + (f" (realm \"{answer['realm']}\")" if answer.get("realm") else "") + "; "
                            + ("the credentials in the proxy URL were rejected." if answer.get("credentials_sent")
                               else "no proxy credentials were sent (give them in the proxy URL, "
                                    "http://user:password@proxy:port, or use NO_PROXY to bypass it)."))
    elif failure.layer == "tls" and url.lower().startswith("https:"):
        from diagkit.errors import InputError
        from diagkit.formats.certs import load_pem_bundle

        extra = []
        if ctx.ca_file:
            try:
                with open(ctx.ca_file, "rb") as handle:
                    extra = load_pem_bundle(handle.read(16 << 20), ctx.ca_file)
            except (OSError, InputError):
                extra = []
        note, evidence = explain_tls_failure(url, via, ctx.timeout, extra)
        if not note and is_ip(urlsplit(url).hostname or "") and not via and any(
                word in failure.reason for word in ("UNRECOGNIZED_NAME", "HANDSHAKE_FAILURE", "EOF", "MISSING_EXTENSION")):
            # Clients send no SNI for an IP address (RFC 6066 §3); servers that pick the certificate by name refuse.
            note = (" No SNI was sent because the URL's host is an IP address; a server that needs SNI to choose its "
                    "certificate refuses such handshakes. Use the host name in the URL (`diagkit probe tls IP:PORT "
                    "--servername NAME` confirms it).")
            evidence = {"sni_sent": False}
        failure.note, failure.evidence = note, {**failure.evidence, **evidence}
