"""Error pages identity providers show to a browser instead of an OAuth error response.

When an authorization request cannot be answered by redirecting back (an unregistered redirect_uri, an
unknown client), RFC 6749 §4.1.2.1 has the provider tell the user on its own page. Each provider
words that page its own way; this module reads the error out of Keycloak, Microsoft Entra ID (AADSTS
codes), Okta, AD FS (MSIS codes), Google ("Error 400: redirect_uri_mismatch"), Auth0, GitHub and generic
"Error Code: ..." pages, so the HTTP probe can report it as
`oauth.error` with the code in evidence.error. Patterns are bounded so a hostile page costs linear time.
"""

from __future__ import annotations

import html
import re
from typing import Any

PAGE_LIMIT = 256 * 1024

_AADSTS = re.compile(r"AADSTS(\d{5,7})(?:\s*:\s*|\s+)([^\"<>\\\r\n]{0,400})")
_MSIS = re.compile(r"MSIS(\d{4})(?:\s*:\s*|\s+)([^\"<>\\\r\n]{0,400})")
_KC_PARAM = re.compile(r"(?i)\b(Invalid|Missing) parameter:\s*([A-Za-z_]{1,40})")
_KC_OTHER = re.compile(r"(?i)\b(Invalid redirect uri|Client not found|Invalid client credentials|"
                       r"Unexpected error when authenticating with identity provider|Invalid Request)\b")
_OKTA_REDIRECT = re.compile(r"(?i)The\s+'?redirect_uri'?\s+parameter\s+must\s+be\s+[^<\r\n]{0,200}")
# Google: "Error 400: redirect_uri_mismatch"; Auth0: "Callback URL mismatch"; GitHub: "The redirect_uri MUST match".
_GOOGLE = re.compile(r"\bError\s+[1-5]\d\d\s*:\s*([a-z][a-z0-9_]{2,63})\b")
_AUTH0 = re.compile(r"(?i)\bCallback URL mismatch\b[^<\r\n]{0,200}")
_GITHUB = re.compile(r"(?i)\bThe redirect_uri MUST match the registered callback URL[^<\r\n]{0,120}")
_GENERIC_CODE = re.compile(r"(?i)\berror(?:[ _]?code)?\s*[:=]\s*\"?([a-z][a-z0-9_]{2,63})\b")
_GENERIC_DESC = re.compile(r"(?i)\b(?:error[ _]?)?description\s*[:=]\s*\"?([^\"\r\n]{1,300})")
_TAG = re.compile(r"<[^<>]{0,2000}>")
_JS_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")

# Entra ID codes support engineers meet most (learn.microsoft.com "Microsoft Entra authentication and
# authorization error codes"): code -> (RFC 6749 family, likely cause, fix).
AADSTS: dict[str, tuple[str, str, str]] = {
    "50011": ("invalid_request", "The redirect URI in the request is not registered for the application.",
              "Add the exact reply URL (scheme, host, port, path, trailing slash) under the app registration's "
              "Authentication platform settings."),
    "500113": ("invalid_request", "The application has no reply address registered.",
               "Register a redirect URI for the application."),
    "700016": ("unauthorized_client", "The application (client_id) was not found in the tenant.",
               "Check the client_id and the tenant (authority URL); multi-tenant apps need consent in the tenant."),
    "7000215": ("invalid_client", "The client secret is invalid (the secret's ID was sent instead of its value, "
                "or it expired).", "Create a new client secret and send its value."),
    "7000222": ("invalid_client", "The client secret has expired.", "Create a new client secret."),
    "7000218": ("invalid_client", "The request needs client_assertion or client_secret.",
                "Authenticate the client, or enable public client flows for a public client."),
    "50020": ("access_denied", "The user's account is not in the tenant (or a guest from an unsupported identity "
              "provider).", "Invite the user as a guest, or use the right tenant's authority."),
    "50105": ("access_denied", "The signed-in user is not assigned to a role for the application.",
              "Assign the user or a group to the enterprise application, or turn off assignment required."),
    "50126": ("invalid_grant", "Invalid user name or password.", "Check the credentials."),
    "50076": ("interaction_required", "Multi-factor authentication is required.", "Sign in interactively with MFA."),
    "50079": ("interaction_required", "The user must register for multi-factor authentication.",
              "Complete MFA registration interactively."),
    "53003": ("access_denied", "A Conditional Access policy blocked the sign-in.",
              "See the sign-in log for the policy; meet its conditions (device, location, app)."),
    "65001": ("consent_required", "The user or an administrator has not consented to the application.",
              "Grant consent (admin consent for the tenant if required)."),
    "65004": ("access_denied", "The user declined consent.", "Ask the user to consent, or grant admin consent."),
    "70011": ("invalid_scope", "A requested scope is invalid.", "Request valid scopes (for client credentials: "
              "'<resource>/.default')."),
    "700054": ("unsupported_response_type", "response_type 'id_token' is not enabled for the application.",
               "Enable ID tokens (implicit grant) in the app registration, or use the code flow."),
    "700051": ("unsupported_response_type", "response_type 'token' is not enabled for the application.",
               "Enable access tokens (implicit grant) or use the code flow."),
    "90102": ("invalid_request", "The redirect_uri value is not a valid absolute URI.",
              "Send an absolute, correctly encoded redirect_uri."),
    "900144": ("invalid_request", "A required parameter is missing from the request.",
               "Send the parameter named in the message."),
    "90014": ("invalid_request", "A required field is missing from the request.", "Send the field named in the message."),
    "9002325": ("invalid_request", "Proof Key for Code Exchange (PKCE) is required for this client.",
                "Send code_challenge and code_verifier."),
    "500011": ("invalid_resource", "The resource (API) was not found in the tenant.",
               "Check the resource/scope URI, and that the API's service principal exists in the tenant."),
    "50058": ("login_required", "A silent sign-in found no usable session.", "Sign in interactively."),
    "70008": ("invalid_grant", "The authorization code or refresh token expired.", "Start the sign-in again."),
    "54005": ("invalid_grant", "The authorization code was already redeemed.", "Use each code once."),
}
MSIS: dict[str, tuple[str, str, str]] = {
    "9224": ("invalid_request", "The redirect_uri is not registered for the client identifier.",
             "Add the redirect URI to the AD FS application group (Add-AdfsClient -RedirectUri / Set-AdfsClient)."),
    "9223": ("invalid_request", "The client_id is unknown to AD FS.", "Register the client in AD FS."),
    "9622": ("invalid_request", "The request is missing a required parameter or uses an unsupported one.",
             "Compare the request with the AD FS OAuth documentation."),
    "7012": ("access_denied", "The relying party trust was not found for the requested identifier.",
             "Check the relying party identifier / resource parameter."),
}


def _text(body: bytes) -> tuple[str, str]:
    """(raw markup, visible text) of a page, entity-decoded and with JS \\uXXXX escapes resolved."""
    raw = body[:PAGE_LIMIT].decode("utf-8", "replace")
    raw = _JS_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), raw)
    visible = html.unescape(_TAG.sub("\n", _without_scripts(raw)))
    return html.unescape(raw), visible


def _without_scripts(markup: str) -> str:
    """The markup without <script>/<style> elements, in one forward pass (no regex backtracking: a page of
    unclosed "<script" tags costs linear time)."""
    lowered = markup.lower()
    out, pos = [], 0
    while True:
        starts = [i for i in (lowered.find("<script", pos), lowered.find("<style", pos)) if i >= 0]
        if not starts:
            out.append(markup[pos:])
            return "".join(out)
        start = min(starts)
        out.append(markup[pos:start])
        closing = "</script" if lowered.startswith("<script", start) else "</style"
        end = lowered.find(closing, start)
        if end < 0:
            return "".join(out)
        gt = lowered.find(">", end)
        pos = len(markup) if gt < 0 else gt + 1


def _clean(text: str) -> str:
    return " ".join(text.split()).strip(" .,'\"")[:300]


def page_error(body: bytes, content_type: str, status: int) -> dict[str, Any] | None:
    """The error an IdP's HTML page shows: {"error", "error_description", "provider", "cause", "fix"}.

    Provider-specific wording counts at any status (Entra serves some error pages with 200); a bare
    "Error Code: <oauth code>" only on an error status, so a help page quoting a code is not mistaken.
    """
    head = body.lstrip()[:200].lower()
    if "html" not in content_type and not head.startswith((b"<!doctype", b"<html", b"<head", b"<body")):
        return None
    raw, visible = _text(body)
    found = _AADSTS.search(raw)
    if found:
        code = "AADSTS" + found.group(1)
        family, cause, fix = AADSTS.get(found.group(1), (None, f"Microsoft Entra ID error {code}.",
                                                          "Look the code up in Microsoft's AADSTS error reference."))
        return {"error": code, "error_description": _clean(found.group(2)), "provider": "Microsoft Entra ID",
                "oauth_error": family, "cause": cause, "fix": fix, "ref": "Microsoft Entra AADSTS error codes"}
    found = _MSIS.search(raw)
    if found:
        code = "MSIS" + found.group(1)
        family, cause, fix = MSIS.get(found.group(1), (None, f"AD FS error {code}.", "See the AD FS admin event log."))
        return {"error": code, "error_description": _clean(found.group(2)), "provider": "AD FS",
                "oauth_error": family, "cause": cause, "fix": fix, "ref": "AD FS event log / MSIS codes"}
    found = _KC_PARAM.search(visible)
    if found:
        parameter = found.group(2)
        what = "not accepted" if found.group(1).lower() == "invalid" else "missing"
        cause = (f"The {parameter} sent is not registered for the client (Valid Redirect URIs)."
                 if parameter == "redirect_uri" and what == "not accepted" else
                 f"The request's {parameter} parameter is {what}.")
        fix = ("Add the exact redirect URI to the client's Valid Redirect URIs in Keycloak (wildcards only at the "
               "end), or send the registered one." if parameter == "redirect_uri" else
               f"Send a valid {parameter} parameter.")
        return {"error": "invalid_request", "error_description": _clean(found.group(0)), "parameter": parameter,
                "provider": _provider(raw, "Keycloak"), "oauth_error": "invalid_request", "cause": cause, "fix": fix,
                "ref": "RFC 6749 §4.1.2.1"}
    found = _OKTA_REDIRECT.search(visible)
    if found:
        return {"error": "invalid_request", "error_description": _clean(found.group(0)), "parameter": "redirect_uri",
                "provider": "Okta", "oauth_error": "invalid_request",
                "cause": "The redirect_uri is not one of the application's Sign-in redirect URIs.",
                "fix": "Add the exact URI (case, trailing slash, port) to the app's Sign-in redirect URIs.",
                "ref": "RFC 6749 §4.1.2.1"}
    found = _GOOGLE.search(visible) if status >= 400 else None
    if found:
        provider = "Google" if "google" in raw[:PAGE_LIMIT].lower() else "the identity provider"
        return {"error": found.group(1), "error_description": _clean(found.group(0)), "provider": provider,
                "oauth_error": "invalid_request" if "redirect_uri" in found.group(1) else found.group(1)}
    for pattern, provider in ((_AUTH0, "Auth0"), (_GITHUB, "GitHub")):
        found = pattern.search(visible)
        if found:
            return {"error": "redirect_uri_mismatch" if provider == "GitHub" else "invalid_request",
                    "error_description": _clean(found.group(0)), "parameter": "redirect_uri", "provider": provider,
                    "oauth_error": "invalid_request",
                    "cause": "The redirect_uri (callback URL) is not registered for the application.",
                    "fix": "Add the exact callback URL to the application's allowed callback URLs.",
                    "ref": "RFC 6749 §4.1.2.1"}
    found = _KC_OTHER.search(visible)
    if found and _provider(raw, "") == "Keycloak":
        phrase = found.group(1).lower()
        code = "invalid_client" if "client" in phrase else "invalid_request"
        return {"error": code, "error_description": _clean(found.group(0)), "provider": "Keycloak",
                "oauth_error": code, "ref": "RFC 6749 §4.1.2.1"}
    return _generic(visible) if status >= 400 else None


def _provider(raw: str, default: str) -> str:
    lowered = raw[:PAGE_LIMIT].lower()
    if "keycloak" in lowered or "kc-error-message" in lowered or "/realms/" in lowered:
        return "Keycloak"
    if "okta" in lowered:
        return "Okta"
    return default or "the identity provider"


def _generic(visible: str) -> dict[str, Any] | None:
    """A page that prints the OAuth code itself ("Error Code: invalid_request", "error=invalid_client")."""
    from diagkit.formats import oauth_errors

    for match in _GENERIC_CODE.finditer(visible):
        code = match.group(1).lower()
        if oauth_errors.is_known(code):
            desc = _GENERIC_DESC.search(visible)
            return {"error": code, "error_description": _clean(desc.group(1)) if desc else "",
                    "provider": "the identity provider", "oauth_error": code}
    return None
