"""HTTP/API auth probe: make the customer's request, follow redirects by hand, and explain the answer.

It reports why an authenticated API call fails: the WWW-Authenticate challenges (RFC 9110 §11.6.1,
RFC 6750 §3), OAuth error responses (RFC 6749), redirects that drop Authorization, CORS preflights,
SSO login pages returned to an API client, IdP error pages, proxies, and what the bearer token (a JWT,
decoded; with --expect-issuer its signature checked against the issuer's JWKS) claims. Secret header
values and the token itself never appear in findings or facts.

This module holds the run and the redirect walk; the parts live beside it: request (the request and
its credentials), exchange (one request/response), cors (preflight), response (what the answer means),
tunnel (a closer look after a proxy or TLS failure), jwt_claims and jwt_verify (the token's claims, and
its kid and signature against the issuer's JWKS) and oauth (the oauth.error finding). URLs, IdP error
pages and WWW-Authenticate are read by diagkit.formats.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from diagkit.collectors.http import jwt_claims
from diagkit.collectors.http.cors import check_actual_cors, preflight
from diagkit.collectors.http.exchange import (
    ConnectFailure,
    Exchange,
    report_connect_failure,
    response_facts,
    send,
)
from diagkit.collectors.http.request import (
    DROPPED_CROSS_ORIGIN,
    METHOD,
    SAFE_REQUEST_HEADERS,
    Credentials,
    credentials_of,
    normalise_url,
    parse_headers,
    read_bearer,
    recorded_header,
)
from diagkit.collectors.http.response import (
    judge_status,
    login_page_reasons,
    redirect_error,
    report_oauth_error,
)
from diagkit.collectors.http.tunnel import explain_failure, proxy_for
from diagkit.errors import InputError
from diagkit.formats.urls import is_loopback, masked_url, origin_parts, origin_text
from diagkit.probe import Option, Probe, Report
from diagkit.scrub import scrub

if TYPE_CHECKING:
    import httpx

    from diagkit.context import Context
    from diagkit.formats.jwt import DecodedJWT

MAX_REDIRECTS = 10
CLOCK_SKEW_WARN_S = 300
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def _proxy_facts(url: str) -> dict[str, str] | None:
    """The environment's proxy for `url` (http_tunnel.proxy_for decides), and which variable named it."""
    proxy = proxy_for(url)
    if proxy is None:
        return None
    scheme = urlsplit(url).scheme.lower()
    source = next((v for v in (f"{scheme.upper()}_PROXY", f"{scheme}_proxy", "ALL_PROXY", "all_proxy")
                   if _env(v)), "environment")
    return {"proxy": masked_url(proxy), "source": source}


def _env(name: str) -> str | None:
    import os

    return os.environ.get(name)


def run(ctx: Context, report: Report, target: str, header: tuple[str, ...] = (), bearer: str | None = None,
        method: str = "GET", origin: str | None = None, expect_issuer: str | None = None,
        expect_audience: str | None = None, expect_scope: str | None = None, ca_file: str | None = None,
        no_follow: bool = False, proxy: str | None = None) -> None:
    import httpx

    from diagkit import __version__
    from diagkit.formats import jwt

    url = normalise_url(target)
    method = (method or "GET").strip().upper()
    if not METHOD.match(method):
        raise InputError("--method: not an HTTP method token")
    headers = parse_headers(header or ())
    if bearer is not None:
        token = read_bearer(bearer)
        headers = [(n, v) for n, v in headers if n.lower() != "authorization"]
        headers.append(("Authorization", f"Bearer {token}"))
    if origin is not None:
        origin = origin.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+$", origin) and origin != "null":
            raise InputError(f"--origin '{scrub(origin)}' is not an origin like https://app.example.com")
    names = {n.lower() for n, _ in headers}
    if "user-agent" not in names:
        headers.append(("User-Agent", f"diagkit/{__version__}"))
    creds = credentials_of(headers)

    report.facts["url"] = masked_url(url)
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

    if proxy is not None:
        proxy = _proxy_option(proxy)
    proxy_info = {"proxy": masked_url(proxy), "source": "--proxy"} if proxy else _proxy_facts(url)
    via_values: list[str] = []
    if proxy_info:
        report.facts["proxy"] = proxy_info

    if creds.any and url.lower().startswith("http://") and not is_loopback(url):
        report.add("http.auth.insecure_transport", "Credentials are sent over plain HTTP",
                   detail="Anyone on the path can read them; use https://.", evidence={"url": masked_url(url)})

    final: Exchange | None = None
    hops: list[dict[str, Any]] = []
    auth_dropped = False
    try:
        client = ctx.http_client(verify=True, follow_redirects=False, **({"proxy": proxy} if proxy else {}))
    except (ValueError, httpx.InvalidURL) as exc:
        where = "--proxy" if proxy else "proxy settings in the environment"
        raise InputError(f"{where} not usable: {scrub(str(exc))}") from None
    with client:
        reachable = True
        if origin is not None:
            reachable = preflight(client, ctx, report, url, method, headers, origin, creds)
        if reachable:
            main_headers = list(headers) + ([("Origin", origin)] if origin else [])
            final, hops, auth_dropped = _follow(client, ctx, report, url, method, main_headers, creds,
                                                no_follow=no_follow, proxy=proxy)
    if hops:
        report.facts["redirects"] = hops

    server_date = None
    if final is not None:
        report.facts["response"] = response_facts(final)
        via_values = final.header_list("via")
        server_date = _server_clock(report, final, ctx)
        if origin is not None and origin_parts(final.url) != origin_parts(origin if origin != "null" else url):
            check_actual_cors(report, final, origin, creds)
        before = len(report.findings)
        unfollowed = no_follow and final.status in REDIRECT_STATUSES and bool(final.header("location"))
        if not unfollowed:
            judge_status(report, final, creds, decoded, auth_dropped)
        # An IdP error page (served with 200 by some providers) is the answer; it is not a login page or a success.
        idp_page = any(f.id == "oauth.error" and f.evidence.get("source") == "html_error_page"
                       for f in report.findings[before:])
        login = login_page_reasons(final, hops) if (200 <= final.status < 300 or final.status == 401) and not idp_page else []
        if unfollowed:
            pass  # reported by _follow as http.redirect.not_followed
        elif idp_page:
            pass
        elif login:
            report.add("http.response.login_page", "An HTML sign-in page came back instead of the API's answer",
                       detail=("An SSO gateway or web application firewall intercepted the API call: "
                               + "; ".join(login) + ". API clients cannot complete an interactive login."),
                       evidence={"status": final.status, "content_type": final.content_type, "reasons": login,
                                 "final_url": masked_url(final.url)})
        elif 200 <= final.status < 300:
            report.add("http.request.ok", f"{method} {masked_url(final.url)} answered {final.status} {final.reason}",
                       evidence={"status": final.status, "content_type": final.content_type})

    if proxy_info or via_values:
        report.add("http.proxy.detected", "A proxy is in the path",
                   detail="Proxies and gateways can strip Authorization, rewrite responses or demand their own login.",
                   evidence={**(proxy_info or {}), **({"via": via_values} if via_values else {})})

    _check_token(report, ctx, creds, decoded, server_date, expect_issuer, expect_audience, expect_scope)
    # A token from another issuer is already jwt.issuer.mismatch: its kid being unknown to the expected
    # issuer is the same problem, so the keys are only fetched when the token claims that issuer.
    if (expect_issuer is not None and creds.bearer and decoded is not None and not decoded.encrypted
            and decoded.claims.get("iss") == expect_issuer):
        from diagkit.collectors.http.jwt_verify import check_signature

        check_signature(report, ctx, creds.bearer, decoded, expect_issuer, proxy=proxy)


def _proxy_option(value: str) -> str:
    """--proxy URL: an http(s):// or socks5:// proxy (host:port alone means http://)."""
    text = value.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
        raise InputError(f"--proxy '{scrub(value)}' is not a proxy URL like http://proxy.example.com:3128")
    return text


def _follow(client: httpx.Client, ctx: Context, report: Report, url: str, method: str,
            headers: list[tuple[str, str]], creds: Credentials, *, no_follow: bool = False,
            proxy: str | None = None) -> tuple[Exchange | None, list[dict[str, Any]], bool]:
    """Follows redirects like a browser (Fetch): strips Authorization and Cookie when the origin changes.

    With no_follow the first answer is final, as for a sender that never follows (webhooks, curl without -L):
    a redirect is reported (http.redirect.not_followed) with where it points, and not requested.
    """
    hops: list[dict[str, Any]] = []
    seen = {url}
    auth_dropped = False
    current_url, current_method, current_headers = url, method, list(headers)
    for _ in range(MAX_REDIRECTS + 1):
        try:
            ex = send(client, ctx, current_method, current_url, current_headers)
        except ConnectFailure as failure:
            explain_failure(ctx, current_url, failure, proxy)
            report_connect_failure(report, current_url, failure, "request" if not hops else "redirected request")
            return None, hops, auth_dropped
        location = ex.header("location")
        if ex.status not in REDIRECT_STATUSES or not location:
            return ex, hops, auth_dropped
        try:
            next_url = urljoin(current_url, location.strip())
            urlsplit(next_url).port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:  # "http://[::1", "http://h:99999": a Location no client could follow
            hops.append({"status": ex.status, "from": masked_url(current_url), "to": "<invalid Location URL>",
                         "followed": False})
            return ex, hops, auth_dropped
        sent_auth = any(n.lower() == "authorization" for n, _ in current_headers)
        cross = origin_parts(next_url) != origin_parts(current_url)
        hop = {"status": ex.status, "from": masked_url(current_url), "to": masked_url(next_url),
               "cross_origin": cross, "authorization_sent": sent_auth}
        hops.append(hop)
        error = redirect_error(next_url)
        if error:
            report_oauth_error(report, error, f"a redirect to {origin_text(next_url)}")
        if urlsplit(next_url).scheme.lower() not in ("http", "https"):
            hop["followed"] = False  # e.g. a native app's custom-scheme redirect_uri
            return ex, hops, auth_dropped
        if no_follow:
            hop["followed"] = False
            report.add("http.redirect.not_followed",
                       f"{current_method} {masked_url(current_url)} answered {ex.status} to {masked_url(next_url)} (not followed)",
                       detail=(f"--no-follow: the {ex.status} redirect was not requested. A client that does not follow "
                               "redirects (webhook senders, curl without -L, many SDKs for POST) stops here"
                               + (f"; one that follows would {'drop Authorization' if sent_auth else 'change origin'} "
                                  f"at {origin_text(next_url)}" if cross else "") + "."),
                       evidence={"status": ex.status, "location": masked_url(next_url), "cross_origin": cross,
                                 "method": current_method})
            return ex, hops, auth_dropped
        if current_url.lower().startswith("https:") and next_url.lower().startswith("http:"):
            report.add("http.redirect.downgrade", f"A redirect downgrades HTTPS to HTTP ({origin_text(next_url)})",
                       detail="The next request travels unencrypted; credentials and cookies can be read on the way.",
                       evidence={"from": masked_url(current_url), "to": masked_url(next_url), "status": ex.status})
        if cross and sent_auth:
            auth_dropped = True
            report.add("http.redirect.auth_dropped",
                       f"The {ex.status} redirect to {origin_text(next_url)} drops the Authorization header",
                       detail=(f"{origin_text(current_url)} redirects to another origin; browsers (Fetch) and "
                               "HTTP libraries remove Authorization there, so the API never sees the token."),
                       evidence={"status": ex.status, "from": masked_url(current_url), "to": masked_url(next_url)})
        if cross:
            current_headers = [(n, v) for n, v in current_headers if n.lower() not in DROPPED_CROSS_ORIGIN]
        if ex.status == 303 and current_method != "HEAD" or ex.status in (301, 302) and current_method == "POST":
            current_method = "GET"
        if next_url in seen:
            report.add("http.redirect.too_many", "The redirects loop",
                       detail=f"{masked_url(next_url)} was already visited; the client would loop until it gives up.",
                       evidence={"hops": len(hops), "url": masked_url(next_url)})
            return ex, hops, auth_dropped
        seen.add(next_url)
        current_url = next_url
    report.add("http.redirect.too_many", f"More than {MAX_REDIRECTS} redirects",
               evidence={"hops": len(hops), "last": hops[-1]["to"] if hops else None})
    return None, hops, auth_dropped


def _server_clock(report: Report, ex: Exchange, ctx: Context) -> _dt.datetime | None:
    """The server's notion of now, shifted onto the probe's clock so a pinned DIAGKIT_NOW stays consistent."""
    from diagkit.context import parse_http_date

    value = ex.header("date")
    server = parse_http_date(value)
    if server is None:
        return None
    skew = (server - ex.received_at).total_seconds()
    report.facts["server_clock_skew_s"] = int(round(skew))
    if abs(skew) > CLOCK_SKEW_WARN_S:
        report.add("http.clock.skew", f"The server's clock differs from this machine's by {int(abs(skew))} s",
                   detail="Token validation (exp/nbf/iat) fails when clocks disagree; check NTP on both sides.",
                   evidence={"skew_s": int(round(skew)), "server_date": value})
    return ctx.now() + _dt.timedelta(seconds=skew)


def _token_facts(token: str, decoded: DecodedJWT | None) -> dict[str, Any]:
    from diagkit.formats import jwt

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
    from diagkit.formats import jwt

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
    jwt_claims.check_claims(report, decoded, ctx.now(), expect_issuer=expect_issuer, expect_audience=expect_audience,
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
    check_target=normalise_url,
    options=(
        Option("header", "Request header 'Name: value' (repeatable). Secret values are never shown.",
               multiple=True, flags=("-H", "--header"), metavar="'NAME: VALUE'", secret=recorded_header),
        Option("bearer", "Bearer token to send (or @FILE to read it from a file). Decoded, never shown.",
               metavar="TOKEN", secret=True),
        Option("method", "HTTP method.", default="GET", metavar="M"),
        Option("origin", "Also send the browser's CORS preflight from this origin.", metavar="ORIGIN"),
        Option("expect_issuer", "Issuer (iss) the API expects in the token; its discovery document and JWKS are "
               "fetched to check the token's kid and signature.", metavar="I"),
        Option("expect_audience", "Audience (aud) the API expects in the token.", metavar="A"),
        Option("expect_scope", "Scope(s) the call needs (space-separated).", metavar="S"),
        Option("ca_file", "Extra trusted CA certificates (PEM).", metavar="PEM"),
        Option("no_follow", "Do not follow redirects: report the first answer (a 3xx with its Location).",
               is_flag=True),
        Option("proxy", "Send through this proxy (http://[user:pass@]host:port); default: HTTP(S)_PROXY/NO_PROXY.",
               metavar="URL", secret=masked_url),  # recorded without its user:password
    ),
    default_timeout=10.0,
    max_calls=MAX_REDIRECTS + 6,
    example="diagkit probe http https://api.example.com/v1/me --bearer @token.txt --expect-audience api://orders",
    description=(
        "Call an HTTP API the way the customer's integration does (method, headers, bearer token), follow "
        "redirects one by one, and explain the answer: WWW-Authenticate challenges, OAuth errors, redirects "
        "that drop Authorization, CORS preflights (--origin), SSO login pages, IdP error pages and proxies (a 407 "
        "on CONNECT, the issuer of an intercepting certificate). A JWT bearer token is decoded (never printed) and "
        "its exp/nbf/iss/aud/scope checked; with --expect-issuer its kid and signature are checked against the "
        "issuer's JWKS (from its discovery document)."
    ),
)
