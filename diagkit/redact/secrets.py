"""What counts as secret or personal: header, parameter and key names, and token patterns in text.

Names decide by meaning (a `password` key is redacted whatever its value looks like); patterns catch
secrets that turn up in free text (an AWS key in a log line, a bearer token in an error message).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import regex

# ---------------------------------------------------------------- names


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# Headers kept verbatim: what engineers correlate with server logs.
KEEP_HEADERS = frozenset({
    "x-request-id", "request-id", "x-correlation-id", "correlation-id", "traceparent", "tracestate",
    "cf-ray", "x-amzn-requestid", "x-amzn-trace-id", "x-amz-request-id", "x-amz-id-2", "x-ms-request-id",
    "x-ms-client-request-id", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "b3",
    "x-cloud-trace-context", "x-trace-id", "x-span-id", "x-github-request-id", "x-served-by", "x-cache",
    "date", "content-type", "content-length", "cache-control", "etag", "last-modified", "expires",
    "server", "via", "age", "vary", "accept", "accept-encoding", "accept-language", "content-encoding",
    ":authority", ":method", ":path", ":scheme", ":status", "host", "connection", "keep-alive",
    "user-agent", "www-authenticate", "strict-transport-security", "x-content-type-options",
})
AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})
URL_HEADERS = frozenset({"location", "referer", "origin", "content-location", "refresh", "link",
                         "access-control-allow-origin"})
_SECRET_HEADER_RE = re.compile(
    r"token|secret|passw|api-?key|apikey|session|csrf|xsrf|credential|signature|^x-auth|-auth$|"
    r"auth-key|private|-key$|^key$|^x-api|subscription-key|cookie2?$")
# Lower-case words one of which every header name header_kind() calls auth, cookie, set-cookie or secret holds
# (a test checks them against the sets and the pattern above): a line of a long text without any is no such header.
SECRET_HEADER_HINTS = ("auth", "cookie", "token", "secret", "passw", "api", "session", "csrf", "xsrf", "credential",
                       "signature", "private", "key")

# Query/form parameters and JSON keys that hold secrets regardless of their value.
SECRET_PARAMS = frozenset(_norm(n) for n in (
    "code", "state", "token", "access_token", "id_token", "refresh_token", "client_secret", "password",
    "passwd", "pwd", "pass", "secret", "SAMLResponse", "SAMLRequest", "SAMLart", "RelayState", "nonce",
    "code_verifier", "code_challenge", "assertion", "client_assertion", "subject_token", "actor_token",
    "device_code", "user_code", "api_key", "apikey", "key", "sig", "signature", "session", "sessionid",
    "sid", "otp", "pin", "auth", "ticket", "jwt", "logout_token", "login_ticket", "x-amz-signature",
    "x-amz-security-token", "x-amz-credential", "access_key", "secret_key", "sas", "se_token",
))
PERSONAL_PARAMS = {
    "email": "EMAIL", "emailaddress": "EMAIL", "mail": "EMAIL", "loginhint": "USER", "username": "USER",
    "user": "USER", "login": "USER", "upn": "USER", "phone": "PHONE", "phonenumber": "PHONE",
    "mobile": "PHONE", "msisdn": "PHONE", "domainhint": None,
}
_SECRET_WORDS = re.compile(r"password|passwd|passphrase|secret|token|apikey|privatekey|credential|"
                           r"sessionid|sessid|cookie|authorization|accesskey|signingkey|clientassertion|"
                           r"samlresponse|samlrequest|relaystate|refreshtoken|codeverifier|csrf|xsrf")
# Names of SAML protocol messages: only a value that decodes to a SAML message is one (redacted inside);
# anything else under such a name (a diagkit result's analysis of it, a flag) follows the normal rules.
SAML_KIND = "SAML"
_SAML_WORDS = re.compile(r"samlresponse|samlrequest|^wresult$")
# Names that contain a secret word but hold public data (OIDC discovery, token metadata).
_PUBLIC_SUFFIX = re.compile(r"(endpoint|uri|url|urls|type|types|supported|expiresin|expiry|expires|expiresat|"
                            r"lifetime|length|count|name|names|ttl|hint|method|methods|format|header|path|"
                            r"location|enabled|required|issuer|algorithm|alg|version|usage|policy|id)$")
_PUBLIC_PREFIX = re.compile(r"(score|count|num|max|min|has|is|use|enable|total|allow|require|supports?)")
PERSONAL_KEYS = {
    "email": "EMAIL", "emails": "EMAIL", "emailaddress": "EMAIL", "mail": "EMAIL", "useremail": "EMAIL",
    "phone": "PHONE", "phonenumber": "PHONE", "mobile": "PHONE", "telephone": "PHONE", "mobilephone": "PHONE",
    "givenname": "PERSON", "familyname": "PERSON", "firstname": "PERSON", "lastname": "PERSON",
    "fullname": "PERSON", "displayname": "PERSON", "middlename": "PERSON", "nickname": "PERSON",
    "surname": "PERSON", "username": "USER", "preferredusername": "USER", "uniquename": "USER",
    "upn": "USER", "login": "USER", "samaccountname": "USER", "nameid": "USER", "userprincipalname": "USER",
    "sub": "ID", "oid": "ID", "ssn": "ID", "nationalid": "ID", "taxid": "ID", "passport": "ID",
    "address": "ADDRESS", "streetaddress": "ADDRESS", "street": "ADDRESS", "postalcode": "ADDRESS",
    "zip": "ADDRESS", "zipcode": "ADDRESS", "homeaddress": "ADDRESS", "formatted": None,
    "birthdate": "DATE", "dateofbirth": "DATE", "dob": "DATE", "ipaddress": "IP", "clientip": "IP",
    "remoteaddr": "IP", "remoteip": "IP", "xforwardedfor": "IP",
    "cardnumber": "CARD", "creditcard": "CARD", "iban": "IBAN",
}
# JWT claims and SAML fields an engineer needs; never redacted by name.
KEEP_KEYS = frozenset(_norm(n) for n in (
    "iss", "aud", "exp", "nbf", "iat", "scope", "scp", "alg", "kid", "typ", "x5t", "azp", "appid", "tid",
    "ver", "amr", "acr", "auth_time", "roles", "error", "error_description", "error_codes", "error_uri",
    "trace_id", "correlation_id", "timestamp", "status", "request_id", "serverIPAddress", "token_type",
    "expires_in", "cty", "enc", "use", "kty", "crv",
))


@functools.lru_cache(maxsize=8192)
def header_kind(name: str) -> str:
    """'keep', 'auth', 'cookie', 'set-cookie', 'url', 'secret' or 'text' for a header name (any case)."""
    lname = name.strip().lower()
    if lname in AUTH_HEADERS:
        return "auth"
    if lname == "cookie":
        return "cookie"
    if lname == "set-cookie":
        return "set-cookie"
    if lname in URL_HEADERS:
        return "url"
    if lname in KEEP_HEADERS:
        return "keep"
    if lname.startswith(("access-control-", "sec-ch-", "sec-fetch-")):
        return "text"
    if _SECRET_HEADER_RE.search(lname):
        return "secret"
    return "text"


@functools.lru_cache(maxsize=8192)
def param_kind(name: str) -> str | None:
    """Pseudonym kind for a query/form parameter name, or None when the name says nothing."""
    n = _norm(name)
    if _SAML_WORDS.search(n):
        return SAML_KIND
    if n in SECRET_PARAMS:
        return "CODE" if n == "code" else "PASSWORD" if n in ("password", "passwd", "pwd", "pass") else "TOKEN"
    if n in PERSONAL_PARAMS:
        return PERSONAL_PARAMS[n]
    return key_kind(name)


@functools.lru_cache(maxsize=8192)
def key_kind(name: str) -> str | None:
    """Pseudonym kind for a JSON/YAML key, or None. Secret words win unless the name is public metadata."""
    n = _norm(name)
    if not n or n in KEEP_KEYS:
        return None
    if n in PERSONAL_KEYS:
        return PERSONAL_KEYS[n]
    if _SAML_WORDS.search(n) and not _PUBLIC_SUFFIX.search(n):
        return SAML_KIND
    if _SECRET_WORDS.search(n) and not _PUBLIC_SUFFIX.search(n) and not _PUBLIC_PREFIX.match(n):
        if "passw" in n or "passphrase" in n:
            return "PASSWORD"
        if "cookie" in n:
            return "COOKIE"
        return "SECRET" if "secret" in n else "TOKEN"
    return None


@functools.lru_cache(maxsize=8192)
def is_keep_key(name: str) -> bool:
    return _norm(name) in KEEP_KEYS


# ---------------------------------------------------------------- patterns in text

JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
PEM_PRIVATE_RE = re.compile(
    r"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
    r"[\s\S]*?(?:-----END \1-----|\Z)")
EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])")
# A sentence may end right after an address ("from 84.17.42.13."); a fifth dotted number may not.
IPV4_RE = re.compile(r"(?<![\w./:§-])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
                     r"(?!\w|\.\d|/\d)")
# Words just before a dotted quad that make it a section or version number, not an address.
_NOT_IP_BEFORE_RE = re.compile(r"(?:§|¶|\b(?:sections?|sect?|clauses?|chapters?|paras?|paragraphs?|appendix|annex|"
                               r"figures?|fig|tables?|steps?|rfc\s?\d{3,5}|versions?|ver|release|build|v)\.?)\s*$",
                               re.IGNORECASE)
# 1.2.3.4-beta, 1.2.3.4-2ubuntu, 1.2.3.4+build, "4.1.2.5 of RFC 5280"
_NOT_IP_AFTER_RE = re.compile(r"-(?:[A-Za-z]|\d+[A-Za-z])|\+[A-Za-z0-9]|\s+(?:of|in)\s+(?:RFC|the\s+(?:spec|RFC|standard))",
                              re.IGNORECASE)


def ipv4_in_context(m: Any) -> bool:
    """True when a dotted quad IPV4_RE matched reads as an address, not "RFC 5280 §4.1.2.5" or "1.2.3.4-beta".

    Only its own line is read: a version word ending the line before says nothing of this address."""
    text, start, end = m.string, m.start(), m.end()
    line_end = text.find("\n", end)
    return not (_NOT_IP_BEFORE_RE.search(text, max(text.rfind("\n", 0, start) + 1, start - 24), start)
                or _NOT_IP_AFTER_RE.match(text, end, len(text) if line_end == -1 else line_end))
# Eight groups, or fewer with "::" (RFC 4291 §2.2): "14/Nov/2023:22:58:56" (an access-log time) and
# "00:1a:2b:3c:4d:5e" (a MAC address) are not addresses.
_H4 = r"[0-9a-fA-F]{1,4}"
IPV6_RE = re.compile(rf"(?<![\w:.])(?:(?:{_H4}:){{7}}{_H4}|(?:{_H4}:){{1,7}}:(?:{_H4}(?::{_H4}){{0,6}})?|"
                     rf"::{_H4}(?::{_H4}){{0,6}})(?![\w:.])")
URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,15}://[^\s\"'<>`\\]+")
# The same pattern for one pass over a whole text file: the `regex` engine looks for the '.' a match needs
# at C speed, where `re` tries the pattern at every position (4-6x faster on a 1 MB log). Emails stay with
# `re` line by line: with an '@' on many lines, `regex` backtracks from each one and is no faster.
IPV4_SCAN = regex.compile(IPV4_RE.pattern)

# (rule, kind, pattern, group holding the secret). Vendor formats are precise enough to trust anywhere.
TOKEN_PATTERNS: list[tuple[str, str, re.Pattern[str], int]] = [
    ("aws_access_key", "AWS_KEY", re.compile(r"\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})\b"), 1),
    ("github_token", "TOKEN", re.compile(r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})\b"), 1),
    ("slack_token", "TOKEN", re.compile(r"\b(xox[abposr]-[A-Za-z0-9-]{10,250})\b"), 1),
    ("stripe_key", "TOKEN", re.compile(r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,250})\b"), 1),
    ("google_api_key", "TOKEN", re.compile(r"\b(AIza[0-9A-Za-z_-]{35})"), 1),
    ("google_oauth_token", "TOKEN", re.compile(r"\b(ya29\.[0-9A-Za-z_-]{20,})"), 1),
    ("bearer_token", "TOKEN", re.compile(r"(?i)\b(?:bearer|token)\s+([A-Za-z0-9\-._~+/]{8,}=*)"), 1),
    ("basic_auth", "CREDENTIALS", re.compile(r"(?i)\bbasic\s+([A-Za-z0-9+/]{6,}={0,2})"), 1),
    ("aws_secret_key", "SECRET", re.compile(
        r"(?i)aws_?secret_?access_?key\W{1,4}([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"), 1),
    # key=value / "key": "value" / key: value with a secret-named key, in logs and config snippets
    ("secret_assignment", "TOKEN", re.compile(
        r"(?i)(?<![\w<%-])(?:[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|private[_-]?key|"
        r"client[_-]?secret|session[_-]?id|auth[_-]?key|access[_-]?key|credentials?))"
        r"[\"']?\s*[:=]\s*[\"']?([^\s\"'&,;<>]{3,})"), 1),
]
# Substrings a TOKEN_PATTERNS match must contain: the pattern is only run when one is present. For a
# case-insensitive pattern they are lower-case and looked for in the lower-cased text; for the others, as the
# pattern writes them ("AKIA": a lower-cased "asia" turns up in ordinary words and ids).
TOKEN_HINTS: dict[str, tuple[str, ...]] = {
    "aws_access_key": ("AKIA", "ASIA", "ABIA", "ACCA"),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "slack_token": ("xox",), "stripe_key": ("_live_", "_test_"), "google_api_key": ("AIza",),
    "google_oauth_token": ("ya29.",), "bearer_token": ("bearer", "token"), "basic_auth": ("basic",),
    "aws_secret_key": ("aws",),
    # the pattern's own key words (api[_-]?key, not "api": "/api/v1/..." is on every line of an API log)
    "secret_assignment": ("passw", "pwd", "secret", "token", "credential", "apikey", "api_key", "api-key",
                          "privatekey", "private_key", "private-key", "sessionid", "session_id", "session-id",
                          "authkey", "auth_key", "auth-key", "accesskey", "access_key", "access-key"),
}

# Header-like pairs met in free text, anywhere in a line ("401 cookie: sid=...", curl -H 'Authorization: ...').
# A cookie value never holds whitespace, a comma, a semicolon or a quote (RFC 6265 §4.1.1).
_COOKIE_PAIR = r"[^\s=;,\"'\\<>]+=(?:\"[^\"\s;,\\]*\"|[^\s;,\"'\\]*)"
COOKIE_TEXT_RE = re.compile(
    r"(?i)(?:(?<![\w-])(?P<set>set-)?cookie2?[\"']?\s*[:=]\s*|(?<!\S)(?:--cookie|-b)\s+)[\"']?"
    rf"(?P<pairs>{_COOKIE_PAIR}(?:;\s*{_COOKIE_PAIR})*)")
# HTTP authentication schemes (IANA registry and common vendor ones): the word after `Authorization:`.
AUTH_SCHEMES = frozenset({
    "basic", "bearer", "digest", "negotiate", "ntlm", "hoba", "mutual", "oauth", "dpop", "token", "jwt", "apikey",
    "api-key", "key", "hawk", "mac", "sharedkey", "sharedkeylite", "aws4-hmac-sha256", "scram-sha-1",
    "scram-sha-256", "vapid", "gssapi", "signature", "sso-key", "client-id", "privatetoken", "concealed", "gnap",
})
AUTH_TEXT_RE = re.compile(
    r"(?i)(?<![\w-])(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?P<scheme>" + "|".join(sorted((re.escape(x) for x in AUTH_SCHEMES), key=len, reverse=True)) + r")\s+)?"
    # a pseudonym (left alone), auth-params (Digest, AWS4: k=v, k="v", ...) or a token68
    r"(?P<cred><[A-Z][A-Z_]*:[0-9a-f]{6,16}>|%3C[A-Z_]+%3A[0-9a-f]{6,16}%3E|"
    r"[\w-]+=(?:\"[^\"\n]*\"|[^\s,\"'<>]*)(?:\s*,\s*[\w-]+=(?:\"[^\"\n]*\"|[^\s,\"'<>]*))*|"
    r"[A-Za-z0-9\-._~+/]+=*)")
# `name: value` / `name=value` anywhere in a line: the name is judged by pair_kind(), the value read after it.
PAIR_NAME_RE = re.compile(r"(?<![\w<%-])-{0,2}(?P<name>[A-Za-z_][\w-]{0,63})(?=[\"']?\s*[:=])")
PAIR_VALUE_RE = re.compile(r"[\"']?\s*[:=]\s*(?:\"(?P<dq>[^\"\n]{1,512})\"|'(?P<sq>[^'\n]{1,512})'|"
                           r"(?P<bare>[^\s\"'&,;<>]{2,}))")
# Lower-case substrings one of which a secret pair name holds: lines without any are not looked at.
PAIR_HINTS = ("passw", "pwd", "passphrase", "secret", "token", "key", "sess", "sid", "csrf", "xsrf", "credential",
              "signature", "private", "saml", "relaystate", "assertion", "otp", "jwt", "ticket", "nonce", "verifier",
              "auth")
# Parameter names that are secrets in free text too; code/state/pin/... name too many harmless things there.
_TEXT_SECRET_PARAMS = SECRET_PARAMS - {_norm(n) for n in ("code", "state", "pin", "pass", "auth", "sig", "nonce")}


@functools.lru_cache(maxsize=8192)
def pair_kind(name: str) -> str | None:
    """Pseudonym kind for the value of a `name: value` or `name=value` pair in free text, or None.

    The same names by meaning as headers, parameters and keys; Authorization and cookies have their own
    text rules (a scheme to keep, several pairs), and public metadata (token_endpoint, expires_in) stays."""
    n = _norm(name)
    if not n or n in KEEP_KEYS or header_kind(name) in ("auth", "cookie", "set-cookie", "keep", "url"):
        return None
    if n in _TEXT_SECRET_PARAMS:
        return param_kind(name)
    kind = key_kind(name)
    if kind is not None:
        return kind if kind in ("TOKEN", "SECRET", "PASSWORD", "COOKIE", SAML_KIND) else None
    if header_kind(name) != "secret" or _PUBLIC_PREFIX.match(n):
        return None
    return "TOKEN" if not _PUBLIC_SUFFIX.search(n) or n.endswith(("sessionid", "sessid")) else None


# The cheap test run before anything else: substring tests (C speed), then one small regex for IPs.
_LITERALS = ("@", "eyJ", "://", "-----BEGIN", "AKIA", "ASIA", "ABIA", "ACCA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
             "github_pat_", "xox", "_live_", "_test_", "AIza", "ya29.")
_WORDS = ("bearer", "basic", "token", "passw", "pwd", "secret", "api_key", "api-key", "apikey", "private", "session",
          "credential", "auth", "cookie", "key", "sid", "csrf", "xsrf", "signature")
_IP_HINT_RE = re.compile(r"\d\.\d{1,3}\.\d|[0-9a-fA-F]:[0-9a-fA-F]{0,4}:")


def case_insensitive(pattern: re.Pattern[str]) -> bool:
    """Whether a pattern ignores case: its hints are then compared with the lower-cased text."""
    return bool(pattern.flags & _IGNORECASE)


def hints_in(pattern: re.Pattern[str], text: str, hints: tuple[str, ...]) -> bool:
    """Whether `text` holds one of a pattern's hints: in the lower-cased text for a pattern that ignores case
    (its hints lower-case), as written otherwise (TOKEN_HINTS, and the needles of the text pass)."""
    hay = text.lower() if case_insensitive(pattern) else text
    for h in hints:  # a loop, not any() over a generator: asked of every candidate line of a long text
        if h in hay:
            return True
    return False


_IGNORECASE = int(re.IGNORECASE)  # a plain int: `flags & re.IGNORECASE` goes through enum's __rand__, slowly


def could_contain(text: str) -> bool:
    """False when no token pattern, email, URL or IP can be in `text` (most header values, most bodies)."""
    if any(tok in text for tok in _LITERALS):
        return True
    lower = text.lower()
    if any(word in lower for word in _WORDS):
        return True
    return bool(_IP_HINT_RE.search(text))
