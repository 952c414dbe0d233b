"""HTTP/API auth probe: make the customer's request, follow redirects by hand, and explain the answer.

It reports why an authenticated API call fails: the WWW-Authenticate challenges (RFC 9110 §11.6.1,
RFC 6750 §3), OAuth error responses (RFC 6749), redirects that drop Authorization, CORS preflights,
SSO login pages returned to an API client, proxies, and what the bearer token (a JWT, decoded but never
verified) claims. Secret header values and the token itself never appear in findings or facts.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urljoin, urlsplit, urlunsplit

from diagkit.errors import InputError
from diagkit.probe import Option, Probe, Report
from diagkit.scrub import scrub

if TYPE_CHECKING:
    import httpx

    from diagkit.collectors.jwt import DecodedJWT
    from diagkit.collectors.www_authenticate import Challenge
    from diagkit.context import Context

MAX_REDIRECTS = 10
BODY_LIMIT = 256 * 1024  # enough to recognise an error document or a login page
CLOCK_SKEW_WARN_S = 300
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# Headers whose values are credentials: never echoed, dropped on cross-origin redirects where marked.
SECRET_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "apikey",
    "x-auth-token", "x-access-token", "x-csrf-token", "x-xsrf-token", "ocp-apim-subscription-key",
    "x-amz-security-token", "x-goog-api-key", "private-token", "x-functions-key",
})
_CREDENTIAL_HEADER = re.compile(r"(?i)(api[-_]?key|token|secret|session|auth)")
DROPPED_CROSS_ORIGIN = ("authorization", "proxy-authorization", "cookie")
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
SAFE_REQUEST_HEADERS = frozenset({"accept", "content-type", "user-agent", "origin", "accept-language"})

# CORS (Fetch standard): headers a page never lists in Access-Control-Request-Headers.
_CORS_SAFELISTED = frozenset({"accept", "accept-language", "content-language"})
_CORS_SAFE_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
_FORBIDDEN_REQUEST_HEADERS = frozenset({
    "accept-charset", "accept-encoding", "access-control-request-headers", "access-control-request-method",
    "connection", "content-length", "cookie", "cookie2", "date", "dnt", "expect", "host", "keep-alive",
    "origin", "referer", "set-cookie", "te", "trailer", "transfer-encoding", "upgrade", "via", "user-agent",
})
_CORS_SAFE_METHODS = frozenset({"GET", "HEAD", "POST"})

_LOGIN_PATH = re.compile(r"(?i)/(login|log-in|signin|sign-in|sso|saml2?|adfs|oauth2?/(v2\.0/)?authorize|"
                         r"authorize|oidc|auth/realms|idp|cas/login|u/login)\b")
# Bounded by the next "<", so a page of "<input<input..." costs linear time, not quadratic (ReDoS).
_PASSWORD_INPUT = re.compile(r"(?is)<input[^<>]*type\s*=\s*[\"']?password")
_SAML_FORM = re.compile(r"(?i)name\s*=\s*[\"']?(SAMLRequest|SAMLResponse|RelayState)")
# The title is cut out first and the words searched inside it: "[^<]*(words)[^<]*</title>" in one
# pattern backtracks quadratically on a long unterminated title that repeats the words (ReDoS).
_TITLE = re.compile(r"(?is)<title[^<>]{0,200}>([^<]{0,4096})</title>")
_LOGIN_TITLE_WORDS = re.compile(r"(?i)sign[ -]?in|log[ -]?in|logon|authenticat|single sign-on|anmelden|"
                                r"connexion|iniciar sesi")
_METHOD = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_NAME = _METHOD


# ---------------------------------------------------------------- the request


@dataclass
class Credentials:
    """What the customer's request carries, without keeping anything but the bearer token in memory."""

    auth_scheme: str | None = None  # scheme of the Authorization header (Bearer, Basic, ...)
    bearer: str | None = None  # the token, only to decode it; never stored in facts or findings
    other: list[str] = field(default_factory=list)  # names of other credential headers (Cookie, X-API-Key)

    @property
    def any(self) -> bool:
        return bool(self.auth_scheme or self.other)


def _normalise_url(target: str) -> str:
    text = target.strip()
    if "://" not in text:
        text = "https://" + text  # a bare host/path is an API base URL; https is what integrations use
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise InputError(f"target '{scrub(target)}' is not a valid URL ({exc})",
                         hint="give the full API URL, e.g. https://api.example.com/v1/me") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InputError(f"target '{scrub(target)}' is not an http(s) URL",
                         hint="give the full API URL, e.g. https://api.example.com/v1/me")
    return text


def _read_bearer(bearer: str) -> str:
    value = bearer
    if bearer.startswith("@"):
        from diagkit.errors import read_input_bytes

        value = read_input_bytes(bearer[1:], "bearer token file", limit=1024 * 1024).decode("utf-8", "replace")
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    if not value or any(ch.isspace() for ch in value):
        raise InputError("--bearer: the token is empty or contains spaces" if bearer[:1] != "@" else
                         f"bearer token file '{bearer[1:]}' is empty or holds more than one token")
    return value


def _parse_headers(raw: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    headers = []
    for index, item in enumerate(raw, 1):
        name, sep, value = item.partition(":")
        name = name.strip()
        if not sep or not name or not _HEADER_NAME.match(name):
            # Never echo the text: it may be an Authorization header with a missing colon.
            raise InputError(f"-H/--header #{index} is not in 'Name: value' form",
                             hint="quote it, e.g. -H 'Accept: application/json'")
        headers.append((name, value.strip()))
    return headers


def _credentials(headers: list[tuple[str, str]]) -> Credentials:
    creds = Credentials()
    for name, value in headers:
        lower = name.lower()
        if lower == "authorization":
            scheme, _, rest = value.partition(" ")
            creds.auth_scheme = scheme or None
            if scheme.lower() in ("bearer", "dpop") and rest.strip():
                creds.bearer = rest.strip()
        elif lower in SECRET_HEADERS or _CREDENTIAL_HEADER.search(lower):
            creds.other.append(name)
    return creds


def _is_secret_header(name: str) -> bool:
    lower = name.lower()
    return lower in SECRET_HEADERS or bool(_CREDENTIAL_HEADER.search(lower))


def _origin_of(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)
    except ValueError:  # not a URL: an origin of its own, equal to no real one
        return "invalid", "", 0


def _origin_text(url: str) -> str:
    scheme, host, port = _origin_of(url)
    if scheme == "invalid":
        return "<invalid URL>"
    default = 443 if scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + ("" if port == default else f":{port}")


def _safe_url(url: str) -> str:
    """The URL without user:password and with query values masked (codes, tokens, state)."""
    try:
        parts = urlsplit(url)
        netloc, port = parts.hostname or "", parts.port
    except ValueError:  # a Location or body URL from the server that is not a URL
        return "<invalid URL>"
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if port:
        netloc += f":{port}"
    query = "&".join(f"{k}=<redacted>" if k not in _SAFE_QUERY else f"{k}={v[0]}"
                     for k, v in parse_qs(parts.query, keep_blank_values=True).items())
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


_SAFE_QUERY = frozenset({"error", "error_description", "error_uri", "response_type", "response_mode", "prompt",
                         "scope", "client_id", "redirect_uri", "resource", "audience", "api-version"})


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- exchanging


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
    def __init__(self, layer: str, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.layer = layer
        self.reason = reason
        self.timed_out = timed_out


def _classify(exc: BaseException, url: str, timeout: float) -> ConnectFailure:
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
        return ConnectFailure("proxy", f"the proxy refused or failed the connection: {scrub(str(exc))}")
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


def _send(client: httpx.Client, ctx: Context, method: str, url: str,
          headers: list[tuple[str, str]]) -> Exchange:
    import httpx

    from diagkit.findings import utc_now

    started = time.monotonic()
    try:
        request = client.build_request(method, url, headers=headers)
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
        raise _classify(exc, url, ctx.timeout) from None
    except UnicodeError:  # the idna codec, under getaddrinfo, unwrapped by httpcore
        raise ConnectFailure("dns", "the host name is not a valid DNS name (empty or over-long label)") from None
    return Exchange(url=url, method=method, status=response.status_code, reason=response.reason_phrase,
                    http_version=response.http_version, headers=response.headers, body=body,
                    elapsed_ms=int((time.monotonic() - started) * 1000), received_at=utc_now())


def _response_facts(ex: Exchange) -> dict[str, Any]:
    names = list(dict.fromkeys(ex.headers.keys()))
    safe = {name: (ex.header(name) or "") for name in names if name in SAFE_RESPONSE_HEADERS}
    if "location" in names:
        try:
            safe["location"] = _safe_url(urljoin(ex.url, ex.header("location") or ""))
        except ValueError:  # "http://[::1" from the server
            safe["location"] = "<invalid URL>"
    facts: dict[str, Any] = {
        "status": ex.status, "reason": ex.reason, "http_version": ex.http_version,
        "elapsed_ms": ex.elapsed_ms, "header_names": names, "headers": safe, "body_bytes": len(ex.body),
    }
    data = _json_body(ex)
    if isinstance(data, dict):
        facts["body_json_keys"] = list(data)[:30]
    return facts


def _json_body(ex: Exchange) -> Any:
    text = ex.body.lstrip()[:BODY_LIMIT]
    if not text or ("json" not in ex.content_type and not text.startswith((b"{", b"["))):
        return None
    try:
        return json.loads(text.decode("utf-8", "replace"))
    except (ValueError, RecursionError):  # a server can send "[[[[..." as deep as it likes
        return None


def _body_error(ex: Exchange) -> dict[str, str] | None:
    """An OAuth-style error document: JSON {"error": "code", ...} or a form-encoded one (GitHub does this)."""
    from diagkit.collectors import oauth_errors

    data = _json_body(ex)
    if data is None and ex.content_type == "application/x-www-form-urlencoded":
        form = parse_qs(ex.body.decode("utf-8", "replace"))
        data = {k: v[0] for k, v in form.items()}
    if not isinstance(data, dict) or not oauth_errors.looks_like_code(data.get("error")):
        return None
    code = data["error"]
    if not (oauth_errors.is_known(code) or "error_description" in data or ex.status in (400, 401, 403)):
        return None
    out = {"error": code}
    for key in ("error_description", "error_uri"):
        if isinstance(data.get(key), str) and data[key]:
            out[key] = data[key]
    return out


# ---------------------------------------------------------------- interpreting


def _challenges(ex: Exchange, header: str = "www-authenticate") -> list[Challenge]:
    from diagkit.collectors import www_authenticate

    return www_authenticate.parse_all(ex.header_list(header))


def _oauth(report: Report, error: dict[str, str], where: str) -> None:
    from diagkit.collectors import oauth_errors

    oauth_errors.oauth_error_finding(report, error["error"], error.get("error_description"), where,
                                     error.get("error_uri"))


def _bearer_evidence(challenge: Challenge | None, body_error: dict[str, str] | None) -> dict[str, Any]:
    from diagkit.collectors.oauth_errors import clean_description

    evidence: dict[str, Any] = {}
    source = dict(challenge.params) if challenge is not None else {}
    for key, value in (body_error or {}).items():
        source.setdefault(key, value)
    for key in ("error", "error_description", "error_uri", "realm", "scope", "resource_metadata"):
        if source.get(key):
            evidence[key] = clean_description(source[key]) if key == "error_description" else source[key]
    return evidence


def _judge_status(report: Report, ex: Exchange, creds: Credentials, decoded: DecodedJWT | None,
                  auth_dropped: bool) -> None:
    from diagkit.collectors import jwt, www_authenticate

    challenges = _challenges(ex)
    if challenges:
        report.facts["challenges"] = [c.safe_dict() for c in challenges]
    body_error = _body_error(ex)
    bearer = www_authenticate.find(challenges, "Bearer") or www_authenticate.find(challenges, "DPoP")
    code = (bearer.params.get("error") if bearer is not None else None) or None
    if code is None and body_error and body_error["error"] in ("invalid_token", "insufficient_scope"):
        code = body_error["error"]  # RFC 6750 code in the body of a response without one in the challenge
    handled_body = False
    status = ex.status
    schemes = [c.scheme for c in challenges]

    if status in (401, 403) and code == "invalid_token":
        ev = _bearer_evidence(bearer, body_error)
        report.add("http.auth.invalid_token", f"The API rejected the access token ({status} invalid_token)",
                   detail=("The server says the token is expired, revoked, malformed or not meant for it"
                           + (f": {ev['error_description']}" if ev.get("error_description") else ".")),
                   evidence={"status": status, **ev})
        handled_body = bool(body_error and body_error["error"] == code)
    elif status in (401, 403) and code == "insufficient_scope":
        ev = _bearer_evidence(bearer, body_error)
        required = (ev.get("scope") or "").split()
        if decoded is not None and not decoded.encrypted:
            granted = jwt.scopes(decoded.claims)
            ev["granted"] = granted
            if required:
                ev["missing"] = [s for s in required if s not in granted]
        report.add("http.auth.insufficient_scope",
                   "The token lacks a required scope" + (f": {' '.join(required)}" if required else ""),
                   detail=("The challenge names the scope needed: " + " ".join(required)) if required else
                   "The server did not say which scope is needed; see the API's documentation.",
                   evidence={"status": status, **ev})
        handled_body = bool(body_error and body_error["error"] == code)
    elif status == 401:
        if not challenges:
            report.add("http.auth.challenge_missing", "401 without a WWW-Authenticate challenge",
                       evidence={"status": 401, "credentials_sent": creds.any})
        elif bearer is not None and code:
            ev = _bearer_evidence(bearer, None)
            finding = "http.auth.invalid_request" if code == "invalid_request" else "http.auth.rejected"
            report.add(finding, f"The API rejected the request (401 {code})", evidence={"status": 401, **ev})
        elif creds.bearer and bearer is not None:
            why = ("A redirect on the way dropped the Authorization header (see http.redirect.auth_dropped)."
                   if auth_dropped else
                   "A proxy, gateway or load balancer between client and API likely removed the Authorization "
                   "header, or the API expects the token in another header.")
            report.add("http.auth.credentials_not_received",
                       "A bearer token was sent, but the API answered as if none arrived",
                       detail=f"The Bearer challenge carries no error code (RFC 6750 §3.1). {why}",
                       evidence={"status": 401, **_bearer_evidence(bearer, None), "schemes": schemes})
        elif creds.auth_scheme and www_authenticate.find(challenges, creds.auth_scheme):
            report.add("http.auth.rejected", f"The API rejected the {creds.auth_scheme} credentials",
                       detail="The server asks again for the scheme that was sent: wrong user, password or key.",
                       evidence={"status": 401, "sent_scheme": creds.auth_scheme, "schemes": schemes})
        elif creds.auth_scheme:
            report.add("http.auth.scheme_mismatch",
                       f"{creds.auth_scheme} credentials were sent, but the API asks for {', '.join(schemes)}",
                       evidence={"status": 401, "sent_scheme": creds.auth_scheme, "schemes": schemes})
        elif creds.other:
            report.add("http.auth.rejected", f"The API did not accept the {', '.join(creds.other)} credentials",
                       detail=f"The server answers 401 and asks for {', '.join(schemes)}.",
                       evidence={"status": 401, "sent": creds.other, "schemes": schemes})
        else:
            report.add("http.auth.required", f"The API requires authentication ({', '.join(schemes)})",
                       detail="No credentials were sent; pass --bearer TOKEN or -H 'Authorization: ...'.",
                       evidence={"status": 401, "schemes": schemes})
    elif status == 403:
        ev = _bearer_evidence(bearer, body_error)
        report.add("http.auth.forbidden", "The API refused the request (403 Forbidden)",
                   detail=("The credentials were accepted but are not allowed to do this: missing role, "
                           "permission, IP allow-list or a WAF rule." if creds.any else
                           "No credentials were sent; the API may need them, or blocks this client."),
                   evidence={"status": 403, "credentials_sent": creds.any, **ev})
    elif status == 407:
        proxy_challenges = _challenges(ex, "proxy-authenticate")
        report.add("http.proxy.auth_required", "The proxy requires authentication (407)",
                   evidence={"status": 407, "schemes": [c.scheme for c in proxy_challenges],
                             "realm": next((c.params["realm"] for c in proxy_challenges if "realm" in c.params), None)})
    elif 400 <= status < 500 and not body_error:  # an OAuth error body says more than the status
        report.add("http.response.client_error", f"The API answered {status} {ex.reason}".rstrip(),
                   evidence={"status": status})
    elif 400 <= status < 500:
        pass
    elif status >= 500:
        report.add("http.response.server_error", f"The API answered {status} {ex.reason}".rstrip(),
                   evidence={"status": status, **_request_ids(ex)})
    elif status < 200 or status >= 300:
        report.add("http.response.unexpected_status", f"The final answer is {status} {ex.reason}".rstrip(),
                   evidence={"status": status})

    if body_error and not handled_body and body_error["error"] not in ("invalid_token", "insufficient_scope"):
        _oauth(report, body_error, f"the response body ({status})")


def _request_ids(ex: Exchange) -> dict[str, str]:
    ids = {}
    for name in ("x-request-id", "request-id", "x-correlation-id", "x-ms-request-id", "traceparent", "cf-ray",
                 "x-amzn-requestid", "x-amz-cf-id"):
        value = ex.header(name)
        if value:
            ids[name] = value
    return ids


def _login_page_reasons(ex: Exchange, hops: list[dict[str, Any]]) -> list[str]:
    html = "html" in ex.content_type or ex.body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))
    if not html:
        return []
    text = ex.body.decode("utf-8", "replace")
    reasons = []
    if _PASSWORD_INPUT.search(text):
        reasons.append("the page has a password field")
    if _SAML_FORM.search(text):
        reasons.append("the page posts a SAML message")
    title = _TITLE.search(text)
    if title and _LOGIN_TITLE_WORDS.search(title.group(1)):
        reasons.append("the page title is a sign-in title")
    via = [h["to"] for h in hops if _LOGIN_PATH.search(urlsplit(h["to"]).path) or "SAMLRequest=" in h["to"]]
    if via:
        reasons.append(f"the request was redirected to a login URL ({via[0]})")
    return reasons


# ---------------------------------------------------------------- CORS


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
        if "*" in allowed and not credentials and name != "authorization":
            continue
        if name == "authorization" and "*" in allowed:
            reasons.append("authorization not in Access-Control-Allow-Headers: '*' does not cover Authorization "
                           "(Fetch standard); list it explicitly")
        else:
            reasons.append(f"{name} not in Access-Control-Allow-Headers "
                           f"({', '.join(sorted(allowed)) if allowed else 'absent'})")
    return reasons


def _preflight(client: httpx.Client, ctx: Context, report: Report, url: str, method: str,
               headers: list[tuple[str, str]], origin: str, creds: Credentials) -> bool:
    """Sends the browser's OPTIONS preflight; False when the endpoint could not be reached at all."""
    requested = _cors_request_headers(headers)
    pre_headers = [("Origin", origin), ("Access-Control-Request-Method", method)]
    if requested:
        pre_headers.append(("Access-Control-Request-Headers", ",".join(requested)))
    user_agent = [(n, v) for n, v in headers if n.lower() == "user-agent"]
    try:
        ex = _send(client, ctx, "OPTIONS", url, pre_headers + user_agent)
    except ConnectFailure as failure:
        _connect_failed(report, url, failure, "CORS preflight")
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
    return True


# ---------------------------------------------------------------- the run


def _connect_failed(report: Report, url: str, failure: ConnectFailure, what: str = "request") -> None:
    report.add("http.connect.failed", f"Could not reach {_origin_text(url)} (failed at the {failure.layer} layer)",
               detail=f"The {what} to {_safe_url(url)} failed at the {failure.layer} layer: {failure.reason}.",
               evidence={"layer": failure.layer, "reason": failure.reason, "url": _safe_url(url)},
               # CONTRACT.md: a check cut short by the timeout could not run, so `error`, not a verdict.
               severity="error" if failure.timed_out else None)


def _proxy_facts(url: str) -> dict[str, str] | None:
    from urllib.request import getproxies_environment, proxy_bypass_environment

    proxies = getproxies_environment()
    scheme = urlsplit(url).scheme.lower()
    proxy = proxies.get(scheme) or proxies.get("all")
    host = urlsplit(url).hostname or ""
    if not proxy or proxy_bypass_environment(host, proxies):
        return None
    source = next((v for v in (f"{scheme.upper()}_PROXY", f"{scheme}_proxy", "ALL_PROXY", "all_proxy")
                   if _env(v)), "environment")
    return {"proxy": _safe_url(proxy if "://" in proxy else "http://" + proxy), "source": source}


def _env(name: str) -> str | None:
    import os

    return os.environ.get(name)


def _redirect_error(location: str) -> dict[str, str] | None:
    """error=... in a redirect's query or fragment (authorization responses, RFC 6749 §4.1.2.1/§4.2.2.1)."""
    from diagkit.collectors import oauth_errors

    try:
        parts = urlsplit(location)
    except ValueError:
        return None
    for piece in (parts.query, parts.fragment):
        params = {k: v[0] for k, v in parse_qs(piece, keep_blank_values=False).items()}
        if oauth_errors.looks_like_code(params.get("error")):
            return {k: params[k] for k in ("error", "error_description", "error_uri") if params.get(k)}
    return None


def run(ctx: Context, report: Report, target: str, header: tuple[str, ...] = (), bearer: str | None = None,
        method: str = "GET", origin: str | None = None, expect_issuer: str | None = None,
        expect_audience: str | None = None, expect_scope: str | None = None, ca_file: str | None = None) -> None:
    import httpx

    from diagkit import __version__
    from diagkit.collectors import jwt

    url = _normalise_url(target)
    method = (method or "GET").strip().upper()
    if not _METHOD.match(method):
        raise InputError("--method: not an HTTP method token")
    headers = _parse_headers(header or ())
    if bearer is not None:
        token = _read_bearer(bearer)
        headers = [(n, v) for n, v in headers if n.lower() != "authorization"]
        headers.append(("Authorization", f"Bearer {token}"))
    if origin is not None:
        origin = origin.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+$", origin) and origin != "null":
            raise InputError(f"--origin '{scrub(origin)}' is not an origin like https://app.example.com")
    names = {n.lower() for n, _ in headers}
    if "user-agent" not in names:
        headers.append(("User-Agent", f"diagkit/{__version__}"))
    creds = _credentials(headers)

    report.facts["url"] = _safe_url(url)
    report.facts["request"] = {
        "method": method,
        "header_names": [n for n, _ in headers],
        "headers": {n: v for n, v in headers if n.lower() in SAFE_REQUEST_HEADERS},
        "credentials": ([f"Authorization: {creds.auth_scheme} <redacted>"] if creds.auth_scheme else [])
        + [f"{n}: <redacted>" for n in creds.other],
    }
    decoded = jwt.decode(creds.bearer) if creds.bearer else None
    if creds.bearer:
        report.facts["token"] = _token_facts(creds.bearer, decoded)

    proxy = _proxy_facts(url)
    via_values: list[str] = []
    if proxy:
        report.facts["proxy"] = proxy

    if creds.any and url.lower().startswith("http://") and not _is_loopback(url):
        report.add("http.auth.insecure_transport", "Credentials are sent over plain HTTP",
                   detail="Anyone on the path can read them; use https://.", evidence={"url": _safe_url(url)})

    final: Exchange | None = None
    hops: list[dict[str, Any]] = []
    auth_dropped = False
    try:
        client = ctx.http_client(verify=True, follow_redirects=False)
    except (ValueError, httpx.InvalidURL) as exc:
        raise InputError(f"proxy settings in the environment are not usable: {scrub(str(exc))}") from None
    with client:
        reachable = True
        if origin is not None:
            reachable = _preflight(client, ctx, report, url, method, headers, origin, creds)
        if reachable:
            main_headers = list(headers) + ([("Origin", origin)] if origin else [])
            final, hops, auth_dropped = _follow(client, ctx, report, url, method, main_headers, creds)
    if hops:
        report.facts["redirects"] = hops

    server_date = None
    if final is not None:
        report.facts["response"] = _response_facts(final)
        via_values = final.header_list("via")
        server_date = _server_clock(report, final, ctx)
        if origin is not None and _origin_of(final.url) != _origin_of(origin if origin != "null" else url):
            _check_actual_cors(report, final, origin, creds)
        _judge_status(report, final, creds, decoded, auth_dropped)
        login = _login_page_reasons(final, hops) if 200 <= final.status < 300 or final.status == 401 else []
        if login:
            report.add("http.response.login_page", "An HTML sign-in page came back instead of the API's answer",
                       detail=("An SSO gateway or web application firewall intercepted the API call: "
                               + "; ".join(login) + ". API clients cannot complete an interactive login."),
                       evidence={"status": final.status, "content_type": final.content_type, "reasons": login,
                                 "final_url": _safe_url(final.url)})
        elif 200 <= final.status < 300:
            report.add("http.request.ok", f"{method} {_safe_url(final.url)} answered {final.status} {final.reason}",
                       evidence={"status": final.status, "content_type": final.content_type})

    if proxy or via_values:
        report.add("http.proxy.detected", "A proxy is in the path",
                   detail="Proxies and gateways can strip Authorization, rewrite responses or demand their own login.",
                   evidence={**(proxy or {}), **({"via": via_values} if via_values else {})})

    _check_token(report, ctx, creds, decoded, server_date, expect_issuer, expect_audience, expect_scope)


def _follow(client: httpx.Client, ctx: Context, report: Report, url: str, method: str,
            headers: list[tuple[str, str]], creds: Credentials) -> tuple[Exchange | None, list[dict[str, Any]], bool]:
    """Follows redirects like a browser (Fetch): strips Authorization and Cookie when the origin changes."""
    hops: list[dict[str, Any]] = []
    seen = {url}
    auth_dropped = False
    current_url, current_method, current_headers = url, method, list(headers)
    for _ in range(MAX_REDIRECTS + 1):
        try:
            ex = _send(client, ctx, current_method, current_url, current_headers)
        except ConnectFailure as failure:
            _connect_failed(report, current_url, failure, "request" if not hops else "redirected request")
            return None, hops, auth_dropped
        location = ex.header("location")
        if ex.status not in REDIRECT_STATUSES or not location:
            return ex, hops, auth_dropped
        try:
            next_url = urljoin(current_url, location.strip())
            urlsplit(next_url).port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:  # "http://[::1", "http://h:99999": a Location no client could follow
            hops.append({"status": ex.status, "from": _safe_url(current_url), "to": "<invalid Location URL>",
                         "followed": False})
            return ex, hops, auth_dropped
        sent_auth = any(n.lower() == "authorization" for n, _ in current_headers)
        cross = _origin_of(next_url) != _origin_of(current_url)
        hop = {"status": ex.status, "from": _safe_url(current_url), "to": _safe_url(next_url),
               "cross_origin": cross, "authorization_sent": sent_auth}
        hops.append(hop)
        error = _redirect_error(next_url)
        if error:
            _oauth(report, error, f"a redirect to {_origin_text(next_url)}")
        if urlsplit(next_url).scheme.lower() not in ("http", "https"):
            hop["followed"] = False  # e.g. a native app's custom-scheme redirect_uri
            return ex, hops, auth_dropped
        if current_url.lower().startswith("https:") and next_url.lower().startswith("http:"):
            report.add("http.redirect.downgrade", f"A redirect downgrades HTTPS to HTTP ({_origin_text(next_url)})",
                       detail="The next request travels unencrypted; credentials and cookies can be read on the way.",
                       evidence={"from": _safe_url(current_url), "to": _safe_url(next_url), "status": ex.status})
        if cross and sent_auth:
            auth_dropped = True
            report.add("http.redirect.auth_dropped",
                       f"The {ex.status} redirect to {_origin_text(next_url)} drops the Authorization header",
                       detail=(f"{_origin_text(current_url)} redirects to another origin; browsers (Fetch) and "
                               "HTTP libraries remove Authorization there, so the API never sees the token."),
                       evidence={"status": ex.status, "from": _safe_url(current_url), "to": _safe_url(next_url)})
        if cross:
            current_headers = [(n, v) for n, v in current_headers if n.lower() not in DROPPED_CROSS_ORIGIN]
        if ex.status == 303 and current_method != "HEAD" or ex.status in (301, 302) and current_method == "POST":
            current_method = "GET"
        if next_url in seen:
            report.add("http.redirect.too_many", "The redirects loop",
                       detail=f"{_safe_url(next_url)} was already visited; the client would loop until it gives up.",
                       evidence={"hops": len(hops), "url": _safe_url(next_url)})
            return ex, hops, auth_dropped
        seen.add(next_url)
        current_url = next_url
    report.add("http.redirect.too_many", f"More than {MAX_REDIRECTS} redirects",
               evidence={"hops": len(hops), "last": hops[-1]["to"] if hops else None})
    return None, hops, auth_dropped


def _check_actual_cors(report: Report, ex: Exchange, origin: str, creds: Credentials) -> None:
    allow = (ex.header("access-control-allow-origin") or "").strip()
    with_cookies = any(n.lower() == "cookie" for n in creds.other)
    if allow == origin or (allow == "*" and not with_cookies):
        return
    report.add("http.cors.response_blocked",
               f"The {ex.status} response lacks Access-Control-Allow-Origin for {origin}",
               detail=("The browser hides this response from the page and reports a CORS error"
                       + (f", masking the real {ex.status}." if ex.status >= 400 else ".")),
               evidence={"status": ex.status, "origin": origin, "access-control-allow-origin": allow or None})


def _server_clock(report: Report, ex: Exchange, ctx: Context) -> _dt.datetime | None:
    """The server's notion of now, shifted onto the probe's clock so a pinned DIAGKIT_NOW stays consistent."""
    import email.utils

    value = ex.header("date")
    if not value:
        return None
    try:
        server = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if server.tzinfo is None:
        server = server.replace(tzinfo=_dt.UTC)
    skew = (server - ex.received_at).total_seconds()
    report.facts["server_clock_skew_s"] = int(round(skew))
    if abs(skew) > CLOCK_SKEW_WARN_S:
        report.add("http.clock.skew", f"The server's clock differs from this machine's by {int(abs(skew))} s",
                   detail="Token validation (exp/nbf/iat) fails when clocks disagree; check NTP on both sides.",
                   evidence={"skew_s": int(round(skew)), "server_date": value})
    return ctx.now() + _dt.timedelta(seconds=skew)


def _token_facts(token: str, decoded: DecodedJWT | None) -> dict[str, Any]:
    from diagkit.collectors import jwt

    if decoded is None:
        return {"format": "opaque", "length": len(token)}
    facts: dict[str, Any] = {"format": decoded.kind, "header": jwt.safe_claims(decoded.header),
                             "signature_present": decoded.signature_present}
    if not decoded.encrypted:
        facts["claims"] = jwt.safe_claims(decoded.claims)
        facts.update(jwt.describe_times(decoded.claims))
    return facts


def _check_token(report: Report, ctx: Context, creds: Credentials, decoded: DecodedJWT | None,
                 server_date: _dt.datetime | None, expect_issuer: str | None, expect_audience: str | None,
                 expect_scope: str | None) -> None:
    from diagkit.collectors import jwt

    expectations = {k: v for k, v in (("issuer", expect_issuer), ("audience", expect_audience),
                                      ("scope", expect_scope)) if v is not None}
    if decoded is None or decoded.encrypted:
        if expectations:
            what = ("no bearer token was sent" if not creds.bearer else
                    "the bearer token is encrypted (JWE)" if decoded is not None else
                    "the bearer token is opaque (not a JWT)")
            report.add("jwt.token.unreadable", f"--expect-{'/--expect-'.join(expectations)} could not be checked: {what}",
                       evidence={"expected": expectations})
        elif decoded is not None:
            report.add("jwt.token.encrypted", "The bearer token is an encrypted JWT (JWE); its claims cannot be read",
                       evidence={"alg": decoded.header.get("alg"), "enc": decoded.header.get("enc")})
        return
    before = len(report.findings)
    jwt.check_claims(report, decoded, ctx.now(), expect_issuer=expect_issuer, expect_audience=expect_audience,
                     expect_scope=expect_scope, server_date=server_date, where="bearer token")
    if len(report.findings) == before:
        exp = jwt.describe_times(decoded.claims).get("expires_at")
        checked = ["exp/nbf/iat"] + [f"{k}" for k in expectations]
        report.add("jwt.claims.ok", "Bearer token claims are valid" + (f" (expires {exp})" if exp else ""),
                   detail="Checked (without verifying the signature): " + ", ".join(checked) + ".",
                   evidence={"checked": checked, **({"expires_at": exp} if exp else {})})


probe = Probe(
    name="http",
    summary="Call an HTTP API like the customer's integration and explain auth, redirect, CORS and token problems.",
    target="URL",
    run=run,
    options=(
        Option("header", "Request header 'Name: value' (repeatable). Secret values are never shown.",
               multiple=True, flags=("-H", "--header"), metavar="'NAME: VALUE'"),
        Option("bearer", "Bearer token to send (or @FILE to read it from a file). Decoded, never shown.",
               metavar="TOKEN"),
        Option("method", "HTTP method.", default="GET", metavar="M"),
        Option("origin", "Also send the browser's CORS preflight from this origin.", metavar="ORIGIN"),
        Option("expect_issuer", "Issuer (iss) the API expects in the token.", metavar="I"),
        Option("expect_audience", "Audience (aud) the API expects in the token.", metavar="A"),
        Option("expect_scope", "Scope(s) the call needs (space-separated).", metavar="S"),
        Option("ca_file", "Extra trusted CA certificates (PEM).", metavar="PEM"),
    ),
    default_timeout=10.0,
    max_calls=MAX_REDIRECTS + 3,
    example="diagkit probe http https://api.example.com/v1/me --bearer @token.txt --expect-audience api://orders",
    description=(
        "Call an HTTP API the way the customer's integration does (method, headers, bearer token), follow "
        "redirects one by one, and explain the answer: WWW-Authenticate challenges, OAuth errors, redirects "
        "that drop Authorization, CORS preflights (--origin), SSO login pages and proxies. A JWT bearer token "
        "is decoded (never verified, never printed) and its exp/nbf/iss/aud/scope checked."
    ),
)
