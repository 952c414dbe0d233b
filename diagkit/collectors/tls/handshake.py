"""One TLS handshake without verification, so that even a broken chain can be inspected: the chain the
server really sent, the protocol and cipher, and (when the server speaks HTTP) its Date header."""

from __future__ import annotations

import socket
import ssl
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diagkit.context import Context, parse_http_date
from diagkit.scrub import scrub

if TYPE_CHECKING:
    pass


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


def handshake(ctx: Context, host: str, port: int, sni: str | None, legacy: bool, *, http: bool = True) -> Session:
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
