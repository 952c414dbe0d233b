"""OAuth 2.0 / OpenID Connect error codes mapped to a likely cause and fix; shared by the HTTP and HAR probes.

Codes from RFC 6749 §4.1.2.1, §4.2.2.1 and §5.2, RFC 6750 §3.1, RFC 8628 §3.5, RFC 9126, RFC 9449 and
OpenID Connect Core 1.0 §3.1.2.6, plus codes common identity providers return.
"""

from __future__ import annotations

import re

# code -> (likely cause, fix, reference)
_CODES: dict[str, tuple[str, str, str]] = {
    "invalid_request": (
        "The request is missing a required parameter, repeats one, or is otherwise malformed.",
        "Compare the request with the provider's documentation; check redirect_uri, response_type and encoding.",
        "RFC 6749 §5.2"),
    "invalid_client": (
        "Client authentication failed: unknown client_id, wrong or expired client secret, or the wrong "
        "authentication method (client_secret_basic vs client_secret_post, private_key_jwt).",
        "Check client_id and secret (and its expiry) in the provider, and the token endpoint auth method.",
        "RFC 6749 §5.2"),
    "invalid_grant": (
        "The authorization code, refresh token or credentials are invalid, expired, revoked, already used, "
        "or were issued to another client or redirect_uri (also: PKCE code_verifier mismatch, clock skew).",
        "Start the flow again for a fresh code; use each code once; send the same redirect_uri and the "
        "matching code_verifier; re-authenticate if the refresh token was revoked.",
        "RFC 6749 §5.2"),
    "unauthorized_client": (
        "This client is not allowed to use this grant type or response type.",
        "Enable the grant type (e.g. client_credentials, authorization_code) for the application in the provider.",
        "RFC 6749 §5.2"),
    "unsupported_grant_type": (
        "The authorization server does not support the grant_type sent (typo or missing grant_type, or the "
        "body was not sent as application/x-www-form-urlencoded).",
        "Send grant_type as a form field with a supported value.",
        "RFC 6749 §5.2"),
    "unsupported_response_type": (
        "The authorization server does not support this response_type for the client.",
        "Use response_type=code (or enable the requested type for the application).",
        "RFC 6749 §4.1.2.1"),
    "invalid_scope": (
        "A requested scope is unknown, malformed, or not granted to this client.",
        "Request only scopes that exist and are assigned to the application (check spelling and resource prefix).",
        "RFC 6749 §5.2"),
    "access_denied": (
        "The user or the authorization server denied the request (consent refused, user not assigned to the "
        "application, or a policy blocked it).",
        "Check user assignment, conditional-access policies and consent for the application.",
        "RFC 6749 §4.1.2.1"),
    "server_error": (
        "The authorization server hit an unexpected error.",
        "Retry later; give the provider the correlation/request id from the response.",
        "RFC 6749 §4.1.2.1"),
    "temporarily_unavailable": (
        "The authorization server is overloaded or under maintenance.",
        "Retry later with backoff.",
        "RFC 6749 §4.1.2.1"),
    "invalid_token": (
        "The access token is expired, revoked, malformed or issued for another resource.",
        "Get a fresh token from the right issuer for this API's audience.",
        "RFC 6750 §3.1"),
    "insufficient_scope": (
        "The token is valid but lacks the scope this request needs.",
        "Request the required scope when getting the token and grant it to the client.",
        "RFC 6750 §3.1"),
    "interaction_required": (
        "The provider needs user interaction (e.g. MFA or terms) but the request used prompt=none.",
        "Retry the authorization request without prompt=none so the user can interact.",
        "OpenID Connect Core 1.0 §3.1.2.6"),
    "login_required": (
        "No usable session at the provider for a silent (prompt=none) request: third-party cookies blocked, "
        "session expired or signed out.",
        "Fall back to an interactive login; check third-party-cookie blocking for silent renew.",
        "OpenID Connect Core 1.0 §3.1.2.6"),
    "account_selection_required": (
        "Several accounts are signed in and the provider cannot pick one silently.",
        "Retry interactively (prompt=select_account) or pass login_hint.",
        "OpenID Connect Core 1.0 §3.1.2.6"),
    "consent_required": (
        "The user (or an administrator) has not consented to the requested scopes and prompt=none was used.",
        "Grant consent (admin consent for the tenant if needed) or retry interactively.",
        "OpenID Connect Core 1.0 §3.1.2.6"),
    "invalid_request_uri": (
        "The request_uri is unreachable, expired or invalid.",
        "Push the request again (PAR) and use the new request_uri promptly.",
        "OpenID Connect Core 1.0 §3.1.2.6"),
    "invalid_request_object": (
        "The request object (JAR) is invalid: bad signature, wrong audience or expired.",
        "Sign the request object with the registered key and check its aud/exp.",
        "OpenID Connect Core 1.0 §3.1.2.6"),
    "request_not_supported": (
        "The provider does not support the request parameter.",
        "Send the parameters in the query instead of a request object.",
        "OpenID Connect Core 1.0 §3.1.2.6"),
    "request_uri_not_supported": (
        "The provider does not support the request_uri parameter.",
        "Send the parameters directly instead of by reference.",
        "OpenID Connect Core 1.0 §3.1.2.6"),
    "registration_not_supported": (
        "The provider does not support the registration parameter.",
        "Register the client beforehand and omit the registration parameter.",
        "OpenID Connect Core 1.0 §3.1.2.6"),
    "authorization_pending": (
        "Device flow: the user has not finished authorizing yet.",
        "Keep polling at the given interval.",
        "RFC 8628 §3.5"),
    "slow_down": (
        "Device flow: the client polls too fast.",
        "Increase the polling interval by 5 seconds.",
        "RFC 8628 §3.5"),
    "expired_token": (
        "Device flow: the device code expired before the user authorized.",
        "Start a new device authorization request.",
        "RFC 8628 §3.5"),
    "invalid_dpop_proof": (
        "The DPoP proof is missing, malformed, or does not match the request (htm/htu/iat/nonce).",
        "Send a fresh DPoP proof bound to this method and URL.",
        "RFC 9449 §5"),
    "use_dpop_nonce": (
        "The server requires a DPoP nonce.",
        "Retry with the nonce from the DPoP-Nonce response header.",
        "RFC 9449 §8"),
    "invalid_target": (
        "The requested resource/audience is invalid or not allowed for this client.",
        "Request a token for a resource the client may access (resource/audience parameter).",
        "RFC 8707 §2"),
    "invalid_redirect_uri": (
        "The redirect_uri is not registered for this client.",
        "Register the exact redirect URI (scheme, host, port, path, trailing slash) in the provider.",
        "RFC 7591 §3.2.2"),
    "invalid_client_metadata": (
        "Dynamic registration rejected a client metadata value.",
        "Fix the metadata field named in error_description.",
        "RFC 7591 §3.2.2"),
    "unsupported_token_type": (
        "Revocation: the server cannot revoke this token type.",
        "Revoke with a supported token_type_hint, or let the token expire.",
        "RFC 7009 §2.2.1"),
    "redirect_uri_mismatch": (
        "The redirect_uri is not one of the URIs registered for the client (Google and GitHub use this code).",
        "Register the exact redirect URI (scheme, host, port, path, trailing slash) for the client.",
        "provider-specific"),
    "mfa_required": (
        "The provider requires multi-factor authentication for this user or client.",
        "Complete MFA interactively, or use a grant that supports it.",
        "provider-specific"),
}

_CODE_SHAPE = re.compile(r"^[a-z][a-z0-9_]{2,63}$")
# Providers put user names and sometimes tokens into descriptions (e.g. "User account 'a@b.c' ...").
# Bounded as RFC 5321 bounds them (local part 64, domain 253): unbounded runs made every start
# position rescan a long dotted word to its end (quadratic, ReDoS).
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


def clean_description(text: str) -> str:
    """One line, bounded, with e-mail addresses and JWTs masked: the rest is the diagnosis."""
    text = " ".join(str(text).split())[:500]
    return _JWT.sub("<redacted-jwt>", _EMAIL.sub("<redacted-email>", text))


def is_known(code: str) -> bool:
    return code in _CODES


def looks_like_code(code: object) -> bool:
    """An OAuth-style error code: a short lower_snake_case token (RFC 6749 allows no spaces in practice)."""
    return isinstance(code, str) and bool(_CODE_SHAPE.match(code))


def describe(code: str) -> tuple[str, str]:
    """(likely cause, fix) for an error code; a generic pair for codes not in the table."""
    known = _CODES.get(code)
    if known is None:
        return (f"The server returned the error code {code!r}, which is not a standard OAuth/OIDC code.",
                "See error_description and the provider's documentation for this code.")
    return known[0], known[1]


def reference(code: str) -> str | None:
    known = _CODES.get(code)
    return known[2] if known else None
