"""One HTTP exchange of the HTTP probe: send a request, keep a bounded body, and name the layer that failed.

The body is read only up to BODY_LIMIT, and response facts keep only header values that are safe to show.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from diagkit.formats.urls import masked_url, origin_text
from diagkit.scrub import scrub

if TYPE_CHECKING:
    import httpx

    from diagkit.context import Context
    from diagkit.probe import Report

BODY_LIMIT = 256 * 1024  # enough to recognise an error document or a login page

# Response headers whose values are safe and useful to show (ids to quote to the API owner, routing).
SAFE_RESPONSE_HEADERS = frozenset({
    "content-type", "content-length", "date", "server", "via", "age", "cache-control", "retry-after", "vary",
    "x-request-id", "request-id", "x-correlation-id", "correlation-id", "x-ms-request-id", "client-request-id",
    "x-ms-correlation-id", "traceparent", "tracestate", "cf-ray", "cf-cache-status", "x-amzn-requestid",
    "x-amzn-trace-id", "x-amz-cf-id", "x-amz-cf-pop", "x-amz-request-id", "x-cache", "x-served-by",
    "x-trace-id", "x-b3-traceid", "x-envoy-upstream-service-time", "strict-transport-security",
    "access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers",
    "access-control-allow-credentials", "access-control-expose-headers", "access-control-max-age",
})


@dataclass
class Exchange:
    url: str
    method: str
    status: int
    reason: str
    http_version: str
    headers: Any  # httpx.Headers
    body: bytes
    elapsed_ms: int
    received_at: _dt.datetime

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def header_list(self, name: str) -> list[str]:
        return self.headers.get_list(name)

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()


class ConnectFailure(Exception):
    """The request got no HTTP answer; `layer` says where it stopped (dns, tcp, tls, proxy, http)."""

    def __init__(self, layer: str, reason: str, *, timed_out: bool = False, status: int | None = None) -> None:
        super().__init__(reason)
        self.layer = layer
        self.reason = reason
        self.timed_out = timed_out
        self.status = status  # the proxy's status when it refused a CONNECT (e.g. 407)
        # What a closer look found (the proxy's challenge, the certificate presented): detail and evidence.
        self.note = ""
        self.evidence: dict[str, Any] = {}


def classify(exc: BaseException, url: str, timeout: float) -> ConnectFailure:
    """Which layer failed, from httpx's exception and the OS/ssl error underneath it."""
    import socket
    import ssl

    import httpx

    https = url.lower().startswith("https")
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectFailure("tcp/tls" if https else "tcp",
                              f"no connection within {timeout:g} s (TCP connect{' or TLS handshake' if https else ''} "
                              "timed out)", timed_out=True)
    if isinstance(exc, httpx.TimeoutException):
        return ConnectFailure("http", f"connected, but no response within {timeout:g} s (read timed out)",
                              timed_out=True)
    if isinstance(exc, httpx.ProxyError):
        # httpcore reports a refused CONNECT as ProxyError("<status> <reason>"); keep the status.
        text = scrub(str(exc))
        head = text.split(" ", 1)[0]
        status = int(head) if head.isdigit() and len(head) == 3 else None
        return ConnectFailure("proxy", f"the proxy refused or failed the connection: {text}", status=status)
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for err in chain:
        if isinstance(err, ssl.SSLCertVerificationError):
            return ConnectFailure("tls", f"certificate verification failed: {err.verify_message or err.reason}")
        if isinstance(err, ssl.SSLError):
            return ConnectFailure("tls", f"TLS handshake failed: {err.reason or err}")
        if isinstance(err, socket.gaierror):
            return ConnectFailure("dns", f"the host name did not resolve ({err.strerror or err})")
        if isinstance(err, ConnectionRefusedError):
            return ConnectFailure("tcp", "connection refused (nothing listens on that port)")
        if isinstance(err, ConnectionResetError):
            return ConnectFailure("tcp", "connection reset by the peer"
                                  + ("" if https else "; if the port serves TLS, use https://"))
    text = scrub(str(exc))
    lowered = text.lower()
    if "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
        return ConnectFailure("tls", text)
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
        return ConnectFailure("dns", text)
    if "refused" in lowered:
        return ConnectFailure("tcp", "connection refused (nothing listens on that port)")
    if isinstance(exc, httpx.RemoteProtocolError):
        return ConnectFailure("http", f"the server closed the connection or broke HTTP: {text}")
    if isinstance(exc, httpx.ConnectError):
        return ConnectFailure("tcp", text or "connection failed")
    return ConnectFailure("http", f"{type(exc).__name__}: {text}")


def send(client: httpx.Client, ctx: Context, method: str, url: str, headers: list[tuple[str, str]],
         content: bytes | None = None) -> Exchange:
    import httpx

    from diagkit.findings import utc_now

    started = time.monotonic()
    try:
        request = client.build_request(method, url, headers=headers, content=content)
        response = client.send(request, stream=True)
        try:
            chunks, size = [], 0
            try:
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= BODY_LIMIT:
                        break
            except httpx.DecodingError:
                chunks = []  # a body we cannot decode still leaves status and headers to judge
            body = b"".join(chunks)[:BODY_LIMIT]
        finally:
            response.close()
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: a redirect target httpx cannot use
        raise classify(exc, url, ctx.timeout) from None
    except UnicodeError:  # the idna codec, under getaddrinfo, unwrapped by httpcore
        raise ConnectFailure("dns", "the host name is not a valid DNS name (empty or over-long label)") from None
    return Exchange(url=url, method=method, status=response.status_code, reason=response.reason_phrase,
                    http_version=response.http_version, headers=response.headers, body=body,
                    elapsed_ms=int((time.monotonic() - started) * 1000), received_at=utc_now())


def response_facts(ex: Exchange) -> dict[str, Any]:
    names = list(dict.fromkeys(ex.headers.keys()))
    safe = {name: (ex.header(name) or "") for name in names if name in SAFE_RESPONSE_HEADERS}
    if "location" in names:
        try:
            safe["location"] = masked_url(urljoin(ex.url, ex.header("location") or ""))
        except ValueError:  # "http://[::1" from the server
            safe["location"] = "<invalid URL>"
    facts: dict[str, Any] = {
        "status": ex.status, "reason": ex.reason, "http_version": ex.http_version,
        "elapsed_ms": ex.elapsed_ms, "header_names": names, "headers": safe, "body_bytes": len(ex.body),
    }
    data = json_body(ex)
    if isinstance(data, dict):
        facts["body_json_keys"] = list(data)[:30]
    return facts


def json_body(ex: Exchange) -> Any:
    text = ex.body.lstrip()[:BODY_LIMIT]
    if not text or ("json" not in ex.content_type and not text.startswith((b"{", b"["))):
        return None
    try:
        return json.loads(text.decode("utf-8", "replace"))
    except (ValueError, RecursionError):  # a server can send "[[[[..." as deep as it likes
        return None


def report_connect_failure(report: Report, url: str, failure: ConnectFailure, what: str = "request") -> None:
    """http.connect.failed, or http.proxy.auth_required when the proxy answered the CONNECT with 407."""
    if failure.layer == "proxy" and failure.status == 407:
        report.add("http.proxy.auth_required",
                   f"The proxy requires authentication: it answered the CONNECT for {origin_text(url)} with 407",
                   detail=(f"The {what} to {masked_url(url)} never reached the server: the forward proxy refused to "
                           "open the tunnel (CONNECT) until the client authenticates to it (RFC 9110 §15.5.8)."
                           + failure.note),
                   evidence={"status": 407, "stage": "CONNECT", "url": masked_url(url), **failure.evidence})
        return
    report.add("http.connect.failed", f"Could not reach {origin_text(url)} (failed at the {failure.layer} layer)"
               + (f": {failure.evidence['title_note']}" if failure.evidence.get("title_note") else ""),
               detail=f"The {what} to {masked_url(url)} failed at the {failure.layer} layer: {failure.reason}."
               + failure.note,
               evidence={"layer": failure.layer, "reason": failure.reason, "url": masked_url(url),
                         **{k: v for k, v in failure.evidence.items() if k != "title_note"}},
               # CONTRACT.md: a check cut short by the timeout could not run, so `error`, not a verdict.
               severity="error" if failure.timed_out else None)
