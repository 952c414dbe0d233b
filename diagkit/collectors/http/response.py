"""What the HTTP probe makes of an API's answer: status, WWW-Authenticate challenges, OAuth errors, login pages.

Challenges follow RFC 9110 §11.6.1 and RFC 6750 §3, error documents RFC 6749 (JSON, or form-encoded as
GitHub sends them). Error descriptions are cleaned before they are shown; tokens are never shown.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from diagkit.collectors.http import oauth
from diagkit.collectors.http.exchange import Exchange, json_body

if TYPE_CHECKING:
    from diagkit.collectors.http.request import Credentials
    from diagkit.formats.jwt import DecodedJWT
    from diagkit.formats.www_authenticate import Challenge
    from diagkit.probe import Report

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


def _body_error(ex: Exchange) -> dict[str, Any] | None:
    """An OAuth-style error document: JSON {"error": "code", ...}, a form-encoded one (GitHub does this), or
    an identity provider's HTML error page (idp_errors: Keycloak, Entra AADSTS, Okta, AD FS)."""
    from diagkit.formats import oauth_errors

    data = json_body(ex)
    if data is None:
        from diagkit.formats.idp_errors import page_error

        page = page_error(ex.body, ex.content_type, ex.status)
        if page is not None:
            return page
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


def _challenges(ex: Exchange, header: str = "www-authenticate") -> list[Challenge]:
    from diagkit.formats import www_authenticate

    return www_authenticate.parse_all(ex.header_list(header))


def report_oauth_error(report: Report, error: dict[str, Any], where: str) -> None:

    if "provider" not in error:
        oauth.oauth_error_finding(report, error["error"], error.get("error_description"), where,
                                         error.get("error_uri"))
        return
    # An IdP's HTML error page (idp_errors): the provider's code, its RFC 6749 family, and its own fix.
    from diagkit.formats.oauth_errors import clean_description

    extra = {"provider": error["provider"], "source": "html_error_page"}
    for key in ("oauth_error", "parameter"):
        if error.get(key):
            extra[key] = error[key]
    description = error.get("error_description") or ""
    title = f"{error['provider']} error page: {error['error']}" + (
        f" ({clean_description(description)[:160]})" if description else "")
    oauth.oauth_error_finding(report, error["error"], description or None, where, None,
                                     cause=error.get("cause"), fix=error.get("fix"), extra=extra,
                                     ref=error.get("ref"), title=title)


def _bearer_evidence(challenge: Challenge | None, body_error: dict[str, str] | None) -> dict[str, Any]:
    from diagkit.formats.oauth_errors import clean_description

    evidence: dict[str, Any] = {}
    source = dict(challenge.params) if challenge is not None else {}
    for key, value in (body_error or {}).items():
        source.setdefault(key, value)
    for key in ("error", "error_description", "error_uri", "realm", "scope", "resource_metadata"):
        if source.get(key):
            evidence[key] = clean_description(source[key]) if key == "error_description" else source[key]
    return evidence


def judge_status(report: Report, ex: Exchange, creds: Credentials, decoded: DecodedJWT | None,
                 auth_dropped: bool) -> None:
    from diagkit.formats import jwt, www_authenticate

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
                   detail="A forward proxy answered the request itself (RFC 9110 §15.5.8): it wants Proxy-Authorization "
                          "first" + (f" ({', '.join(c.scheme for c in proxy_challenges)})." if proxy_challenges else "."),
                   evidence={"status": 407, "stage": "request", "schemes": [c.scheme for c in proxy_challenges],
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
        report_oauth_error(report, body_error, f"the response body ({status})")


def _request_ids(ex: Exchange) -> dict[str, str]:
    ids = {}
    for name in ("x-request-id", "request-id", "x-correlation-id", "x-ms-request-id", "traceparent", "cf-ray",
                 "x-amzn-requestid", "x-amz-cf-id"):
        value = ex.header(name)
        if value:
            ids[name] = value
    return ids


def login_page_reasons(ex: Exchange, hops: list[dict[str, Any]]) -> list[str]:
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


def redirect_error(location: str) -> dict[str, str] | None:
    """error=... in a redirect's query or fragment (authorization responses, RFC 6749 §4.1.2.1/§4.2.2.1)."""
    from diagkit.formats import oauth_errors

    try:
        parts = urlsplit(location)
    except ValueError:
        return None
    for piece in (parts.query, parts.fragment):
        params = {k: v[0] for k, v in parse_qs(piece, keep_blank_values=False).items()}
        if oauth_errors.looks_like_code(params.get("error")):
            return {k: params[k] for k in ("error", "error_description", "error_uri") if params.get(k)}
    return None
