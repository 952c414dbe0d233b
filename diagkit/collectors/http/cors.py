"""CORS for the HTTP probe: the browser's preflight (--origin) and whether the page may read the answer.

The rules are the Fetch standard's, judged the way a browser would, so the reasons name what the browser
console would complain about.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from diagkit.collectors.http.exchange import ConnectFailure, Exchange, report_connect_failure, send

if TYPE_CHECKING:
    import httpx

    from diagkit.collectors.http.request import Credentials
    from diagkit.context import Context
    from diagkit.probe import Report

# CORS (Fetch standard): headers a page never lists in Access-Control-Request-Headers.
_CORS_SAFELISTED = frozenset({"accept", "accept-language", "content-language"})
_CORS_SAFE_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
_FORBIDDEN_REQUEST_HEADERS = frozenset({
    "accept-charset", "accept-encoding", "access-control-request-headers", "access-control-request-method",
    "connection", "content-length", "cookie", "cookie2", "date", "dnt", "expect", "host", "keep-alive",
    "origin", "referer", "set-cookie", "te", "trailer", "transfer-encoding", "upgrade", "via", "user-agent",
})
_CORS_SAFE_METHODS = frozenset({"GET", "HEAD", "POST"})


def _cors_request_headers(headers: list[tuple[str, str]]) -> list[str]:
    names = set()
    for name, value in headers:
        lower = name.lower()
        if lower in _FORBIDDEN_REQUEST_HEADERS or lower.startswith(("proxy-", "sec-")):
            continue
        if lower in _CORS_SAFELISTED:
            continue
        if lower == "content-type" and value.split(";")[0].strip().lower() in _CORS_SAFE_CONTENT_TYPES:
            continue
        names.add(lower)
    return sorted(names)


def _split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _judge_preflight(ex: Exchange, origin: str, method: str, requested: list[str],
                     credentials: bool) -> list[str]:
    """Reasons a browser would fail this preflight (Fetch standard §4.8 CORS-preflight fetch)."""
    reasons = []
    if not 200 <= ex.status < 300:
        reasons.append(f"the preflight answered {ex.status}, not a 2xx status")
    allow_origin = ex.header("access-control-allow-origin")
    allow_credentials = (ex.header("access-control-allow-credentials") or "").strip()
    if allow_origin is None:
        reasons.append(f"origin {origin} not allowed: no Access-Control-Allow-Origin header")
    elif allow_origin.strip() == "*":
        if credentials or allow_credentials.lower() == "true":
            reasons.append("Access-Control-Allow-Origin: * cannot be used with credentials "
                           "(cookies, Access-Control-Allow-Credentials: true)")
    elif allow_origin.strip() != origin:
        reasons.append(f"origin {origin} not allowed: Access-Control-Allow-Origin is {allow_origin.strip()!r}")
    if credentials and allow_credentials != "true":
        reasons.append("credentials are sent but Access-Control-Allow-Credentials is not 'true'")
    methods = _split_list(ex.header("access-control-allow-methods"))
    if method not in _CORS_SAFE_METHODS and method not in methods and method.upper() not in methods \
            and not ("*" in methods and not credentials):
        reasons.append(f"method {method} not allowed: Access-Control-Allow-Methods is "
                       f"{', '.join(methods) if methods else 'absent'}")
    allowed = {h.lower() for h in _split_list(ex.header("access-control-allow-headers"))}
    for name in requested:
        if name in allowed:
            continue
        # Authorization under a bare `*` is judged by wildcard_covers_authorization (a warning, not a failure).
        if "*" in allowed and not credentials:
            continue
        reasons.append(f"{name} not in Access-Control-Allow-Headers "
                       f"({', '.join(sorted(allowed)) if allowed else 'absent'})"
                       + ("; with credentials '*' is the literal name '*', not a wildcard" if "*" in allowed else ""))
    return reasons


def wildcard_covers_authorization(ex: Exchange, requested: list[str], credentials: bool) -> bool:
    """True when the preflight lets Authorization through only by `Access-Control-Allow-Headers: *`.

    The Fetch standard (CORS-preflight fetch) makes that a network error: Authorization is the one "CORS
    non-wildcard request-header name", so `*` never covers it. Chrome/Edge and Firefox still let it pass
    and print a deprecation warning in the console (Edge and Chrome keep an enterprise policy,
    CORSNonWildcardRequestHeadersSupport; Firefox 115+ has the spec behaviour behind a preference), so it
    works today and breaks when browsers enforce the standard: a warning. With credentials `*` is no
    wildcard at all, which _judge_preflight already fails.
    """
    allowed = {h.lower() for h in _split_list(ex.header("access-control-allow-headers"))}
    return not credentials and "authorization" in requested and "authorization" not in allowed and "*" in allowed


def preflight(client: httpx.Client, ctx: Context, report: Report, url: str, method: str,
              headers: list[tuple[str, str]], origin: str, creds: Credentials) -> bool:
    """Sends the browser's OPTIONS preflight; False when the endpoint could not be reached at all."""
    requested = _cors_request_headers(headers)
    pre_headers = [("Origin", origin), ("Access-Control-Request-Method", method)]
    if requested:
        pre_headers.append(("Access-Control-Request-Headers", ",".join(requested)))
    user_agent = [(n, v) for n, v in headers if n.lower() == "user-agent"]
    try:
        ex = send(client, ctx, "OPTIONS", url, pre_headers + user_agent)
    except ConnectFailure as failure:
        report_connect_failure(report, url, failure, "CORS preflight")
        return False
    credentials = any(name.lower() == "cookie" for name in creds.other)
    facts = {"origin": origin, "request_method": method, "request_headers": requested, "status": ex.status}
    for name in ("access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers",
                 "access-control-allow-credentials", "access-control-max-age"):
        if ex.header(name) is not None:
            facts[name] = ex.header(name)
    report.facts["cors_preflight"] = facts
    reasons = _judge_preflight(ex, origin, method, requested, credentials)
    if reasons:
        report.add("http.cors.preflight_failed", f"CORS preflight fails: {reasons[0]}",
                   detail="A browser on " + origin + " will block this call: " + "; ".join(reasons) + ".",
                   evidence={"origin": origin, "method": method, "reasons": reasons, "status": ex.status,
                             "request_headers": requested,
                             **{k: v for k, v in facts.items() if k.startswith("access-control")}})
    else:
        report.add("http.cors.preflight_ok", f"CORS preflight allows {method} from {origin}",
                   evidence={"origin": origin, "method": method, "request_headers": requested})
    if not reasons and wildcard_covers_authorization(ex, requested, credentials):
        report.add("http.cors.wildcard_headers",
                   "The preflight allows Authorization only through 'Access-Control-Allow-Headers: *'",
                   detail=("Per the Fetch standard '*' does not cover Authorization (the CORS non-wildcard "
                           "request-header name), so a conforming browser fails this preflight. Chrome, Edge and "
                           "Firefox still accept it today and log a deprecation warning in the console; list "
                           "Authorization explicitly before they enforce the standard."),
                   evidence={"origin": origin, "access-control-allow-headers": ex.header("access-control-allow-headers"),
                             "request_headers": requested})
    return True


def check_actual_cors(report: Report, ex: Exchange, origin: str, creds: Credentials) -> None:
    """A cross-origin answer reaches the page only when Access-Control-Allow-Origin lets it."""
    allow = (ex.header("access-control-allow-origin") or "").strip()
    with_cookies = any(n.lower() == "cookie" for n in creds.other)
    if allow == origin or (allow == "*" and not with_cookies):
        return
    report.add("http.cors.response_blocked",
               f"The {ex.status} response lacks Access-Control-Allow-Origin for {origin}",
               detail=("The browser hides this response from the page and reports a CORS error"
                       + (f", masking the real {ex.status}." if ex.status >= 400 else ".")),
               evidence={"status": ex.status, "origin": origin, "access-control-allow-origin": allow or None})
