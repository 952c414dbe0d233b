"""TLS probe: connect with SNI, capture the chain the server sends, and judge the certificate."""

from __future__ import annotations

import socket
import ssl
from typing import Any

from diagkit.context import Context
from diagkit.probe import Option, Probe, Report


def split_host_port(target: str, default_port: int = 443) -> tuple[str, int]:
    text = target.strip()
    if "://" in text:
        text = text.split("://", 1)[1].split("/", 1)[0]
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        if not port.isdigit():
            from diagkit.errors import InputError

            raise InputError(f"target '{target}': port '{port}' is not a number")
        return host, int(port)
    return text, default_port


def _fetch_chain(ctx: Context, host: str, port: int, servername: str) -> tuple[list[bytes], dict[str, Any]]:
    """Handshake without verification so even a broken chain can be inspected."""
    tls = ctx.ssl_context(verify=False)
    with socket.create_connection((host, port), timeout=ctx.timeout) as raw:
        raw.settimeout(ctx.timeout)
        with tls.wrap_socket(raw, server_hostname=servername) as conn:
            chain = [c.public_bytes(ssl._ssl.ENCODING_DER) for c in conn._sslobj.get_unverified_chain()]  # type: ignore[attr-defined]
            session = {"protocol": conn.version(), "cipher": conn.cipher()[0] if conn.cipher() else None}
    return chain, session


def run(ctx: Context, report: Report, target: str, servername: str | None = None, ca_file: str | None = None) -> None:
    from cryptography import x509

    host, port = split_host_port(target)
    sni = servername or host
    report.facts.update({"host": host, "port": port, "servername": sni})
    try:
        chain_der, session = _fetch_chain(ctx, host, port, sni)
    except (OSError, ssl.SSLError) as exc:
        report.add("tls.connect.failed", f"TLS connection to {host}:{port} failed",
                   detail=f"{type(exc).__name__}: {exc}", evidence={"host": host, "port": port})
        return
    report.facts.update(session)
    certs = [x509.load_der_x509_certificate(der) for der in chain_der]
    leaf = certs[0]
    now = ctx.now()
    report.facts["certificate"] = {
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "not_before": leaf.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if leaf.not_valid_after_utc < now:
        days = (now - leaf.not_valid_after_utc).days
        report.add("tls.certificate.expired", f"Certificate expired {days} days ago",
                   evidence={"not_after": report.facts["certificate"]["not_after"]})
    else:
        report.add("tls.connect.ok", f"TLS handshake with {host}:{port} succeeded ({session['protocol']})")


probe = Probe(
    name="tls",
    summary="Check a TLS endpoint's certificate, chain, host name and protocol.",
    target="HOST[:PORT]",
    run=run,
    options=(
        Option("servername", "SNI name to send (default: the host).", metavar="NAME"),
        Option("ca_file", "Extra trusted CA certificates (PEM).", metavar="PEM"),
    ),
    default_timeout=10.0,
    max_calls=3,
    example="diagkit probe tls api.example.com:443 --servername api.example.com",
)
