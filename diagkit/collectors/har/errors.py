"""What a failed HAR entry or an error body says: the class of a browser/proxy error text, and the codes
and short messages of a JSON error document (never its other contents).
"""

from __future__ import annotations

from diagkit.collectors.har.values import short

# (markers in the error text, class, explanation). First match wins, so specific markers come first.
_ERROR_CLASSES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("ERR_TOO_MANY_REDIRECTS", "NS_ERROR_REDIRECT_LOOP"), "redirect_loop",
     "The browser gave up after too many redirects: a redirect loop (often an SSO session cookie that is not kept)."),
    (("ERR_CERT_", "ERR_SSL_", "ERR_BAD_SSL", "SEC_ERROR_", "SSL_ERROR_", "MOZILLA_PKIX_ERROR", "CERTIFICATE",
      "TLS HANDSHAKE"), "tls",
     "The TLS handshake or certificate check failed: an expired, untrusted or wrong-host certificate, or a "
     "TLS-inspecting proxy. Check the host with `diagkit probe tls HOST`."),
    (("ERR_NAME_NOT_RESOLVED", "ERR_NAME_RESOLUTION_FAILED", "ERR_DNS_", "NS_ERROR_UNKNOWN_HOST",
      "NAME OR SERVICE NOT KNOWN", "GETADDRINFO", "NODENAME NOR SERVNAME"), "dns",
     "The host name did not resolve on the client. Check it with `diagkit probe dns HOST` (VPN, split DNS, typo)."),
    (("ERR_BLOCKED_BY_CLIENT",), "blocked_by_client",
     "A browser extension (ad, privacy or security blocker) cancelled the request. Retry in a private window "
     "or a profile without extensions."),
    (("ERR_BLOCKED_BY_ADMINISTRATOR", "ERR_BLOCKED_BY_RESPONSE", "ERR_BLOCKED_BY_ORB", "ERR_BLOCKED_BY_CSP",
      "NS_ERROR_CONTENT_BLOCKED", "ERR_BLOCKED_BY_PRIVATE_NETWORK"), "blocked_by_policy",
     "The browser blocked the request by policy: an administrator policy, CSP, CORP/COEP/ORB or Private "
     "Network Access rule. The browser console names the rule."),
    (("ERR_PROXY_", "ERR_TUNNEL_CONNECTION_FAILED", "NS_ERROR_PROXY", "ERR_MANDATORY_PROXY"), "proxy",
     "The proxy refused or could not reach the destination. Check the proxy settings and its allow-list."),
    (("ERR_INTERNET_DISCONNECTED", "ERR_NETWORK_CHANGED", "ERR_NETWORK_ACCESS_DENIED", "NS_ERROR_OFFLINE",
      "ERR_NETWORK_IO_SUSPENDED"), "network",
     "The client was offline or its network changed (Wi-Fi, VPN) while the request ran."),
    (("ERR_CONNECTION_REFUSED", "ERR_CONNECTION_RESET", "ERR_CONNECTION_CLOSED", "ERR_CONNECTION_TIMED_OUT",
      "ERR_CONNECTION_FAILED", "ERR_CONNECTION_ABORTED", "ERR_ADDRESS_UNREACHABLE", "ERR_ADDRESS_INVALID",
      "ERR_TIMED_OUT", "NS_ERROR_CONNECTION_REFUSED", "NS_ERROR_NET_RESET", "NS_ERROR_NET_TIMEOUT",
      "CONNECT CALL FAILED", "CONNECTION REFUSED", "CONNECTION RESET", "TIMED OUT", "TIMEOUT"), "connection",
     "The connection to the server failed (nothing listening, a firewall, or a timeout). Check the port and "
     "the network path from the client."),
    (("ERR_EMPTY_RESPONSE", "ERR_CONTENT_LENGTH_MISMATCH", "ERR_INCOMPLETE_CHUNKED_ENCODING", "ERR_HTTP2_",
      "ERR_QUIC_", "ERR_SPDY_", "ERR_INVALID_HTTP_RESPONSE", "ERR_RESPONSE_HEADERS", "ERR_INVALID_CHUNKED",
      "ERR_CONTENT_DECODING_FAILED", "NS_ERROR_NET_PARTIAL_TRANSFER", "NS_ERROR_NET_INTERRUPT",
      "NS_ERROR_CORRUPTED_CONTENT"), "protocol",
     "The server closed the connection or sent a truncated or malformed response (a proxy, load balancer "
     "or crashed backend)."),
    (("ERR_ABORTED", "NS_BINDING_ABORTED", "ERR_CANCELED", "CANCELED", "CANCELLED"), "aborted",
     "The browser cancelled the request (the page navigated away or a newer request replaced it); usually harmless."),
    (("ERR_FAILED",), "failed",
     "A generic browser failure: in Chrome most often a CORS rejection, a service worker or an extension. The "
     "browser console says which."),
)
_NO_RESPONSE = ("no_response",
                "No response was recorded: the request was still pending when the HAR was saved, was cancelled, "
                "or was blocked before it was sent (Firefox records CORS and blocked requests this way).")
_UNKNOWN = ("other", "The request failed without an HTTP response; see the error text.")


def classify_error(error: str | None) -> tuple[str, str]:
    """(class, explanation) for a browser/proxy error text; no_response when there is none."""
    if not error:
        return _NO_RESPONSE
    upper = error.upper()
    for markers, name, explanation in _ERROR_CLASSES:
        if any(m in upper for m in markers):
            return name, explanation
    return _UNKNOWN


def body_error(text: str | None) -> dict[str, str]:
    """error / code / message from a JSON or problem+json error body (codes and short messages only)."""
    import json

    if not text or text.lstrip()[:1] not in ("{", "["):
        return {}
    try:
        doc = json.loads(text[:200_000])
    except (ValueError, RecursionError):
        return {}
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        doc = doc[0]
    if not isinstance(doc, dict):
        return {}
    out: dict[str, str] = {}
    err = doc.get("error")
    if isinstance(err, dict):  # Google/Azure style {"error": {"code": ..., "message": ...}}
        for key in ("code", "status", "message"):
            if isinstance(err.get(key), str | int) and key not in out:
                out["code" if key == "status" and "code" not in err else key] = str(err[key])
    elif isinstance(err, str | int):
        out["error"] = str(err)
    for key in ("code", "error_code", "errorCode", "errorSummary", "error_description", "message", "title",
                "type", "detail"):
        value = doc.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            out.setdefault(key, str(value))
    errors = doc.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        for key in ("code", "message"):
            if isinstance(errors[0].get(key), str | int):
                out.setdefault(key, str(errors[0][key]))
    return {k: short(v) for k, v in list(out.items())[:6]}
