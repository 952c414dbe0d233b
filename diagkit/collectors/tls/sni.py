"""Why a handshake was refused when no SNI name was sent (an IP address target), and whether the address's
reverse DNS name works as SNI (RFC 6066 §3)."""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING, Any

from diagkit.collectors.tls.handshake import ConnectFailure, Session, handshake
from diagkit.context import Context

if TYPE_CHECKING:
    pass


# ---------------------------------------------------------------- SNI


# Alerts and abrupt closes with which servers refuse a ClientHello they cannot route: nginx
# `ssl_reject_handshake` and Python/OpenSSL servers send unrecognized_name, HAProxy `strict-sni` and CDNs
# handshake_failure, others internal_error/access_denied or a bare close.
# RFC 8446 §9.2 lets a TLS 1.3 server that requires SNI abort with missing_extension.
_SNI_REFUSALS = {"TLSV1_UNRECOGNIZED_NAME", "SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_ALERT_INTERNAL_ERROR",
                 "TLSV1_ALERT_ACCESS_DENIED", "TLSV13_ALERT_MISSING_EXTENSION", "TLSV1_ALERT_MISSING_EXTENSION",
                 "UNEXPECTED_EOF_WHILE_READING", "SSLEOFError", None}


def reverse_name(ip: str, timeout: float) -> str | None:
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
    candidate = reverse_name(host, min(ctx.timeout, 2.0))
    worked: Session | None = None
    if candidate:
        try:
            worked = handshake(ctx, host, port, candidate, legacy=False, http=False)
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
