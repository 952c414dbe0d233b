"""The customer's request as the HTTP probe takes it from the command line: URL, method, headers, bearer token.

Also which headers carry credentials, so that their values are never shown and are dropped where a
browser would drop them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from diagkit.errors import InputError, UsageError
from diagkit.scrub import scrub

# Headers whose values are credentials: never echoed, dropped on cross-origin redirects where marked.
SECRET_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "apikey",
    "x-auth-token", "x-access-token", "x-csrf-token", "x-xsrf-token", "ocp-apim-subscription-key",
    "x-amz-security-token", "x-goog-api-key", "private-token", "x-functions-key",
})
_CREDENTIAL_HEADER = re.compile(r"(?i)(api[-_]?key|token|secret|session|auth)")
DROPPED_CROSS_ORIGIN = ("authorization", "proxy-authorization", "cookie")
SAFE_REQUEST_HEADERS = frozenset({"accept", "content-type", "user-agent", "origin", "accept-language"})
METHOD = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_NAME = METHOD  # both are RFC 9110 tokens


@dataclass
class Credentials:
    """What the customer's request carries, without keeping anything but the bearer token in memory."""

    auth_scheme: str | None = None  # scheme of the Authorization header (Bearer, Basic, ...)
    bearer: str | None = None  # the token, only to decode it; never stored in facts or findings
    other: list[str] = field(default_factory=list)  # names of other credential headers (Cookie, X-API-Key)

    @property
    def any(self) -> bool:
        return bool(self.auth_scheme or self.other)


def normalise_url(target: str) -> str:
    text = target.strip()
    if "://" not in text:
        text = "https://" + text  # a bare host/path is an API base URL; https is what integrations use
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise UsageError(f"target '{scrub(target)}' is not a valid URL ({exc})",
                         hint="give the full API URL, e.g. https://api.example.com/v1/me") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError(f"target '{scrub(target)}' is not an http(s) URL",
                         hint="give the full API URL, e.g. https://api.example.com/v1/me")
    return text


def read_bearer(bearer: str) -> str:
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


def parse_headers(raw: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
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


def is_secret_header(name: str) -> bool:
    lower = name.lower()
    return lower in SECRET_HEADERS or bool(_CREDENTIAL_HEADER.search(lower))


def recorded_header(item: str) -> str:
    """One -H value as results may record it: a credential header keeps its name, never its value
    (nor does a value that looks like a token under a harmless name); a malformed item is all secret."""
    from diagkit.probe import SECRET

    name, sep, value = item.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _HEADER_NAME.match(name):
        return SECRET
    if is_secret_header(name) or scrub(value) != value:
        return f"{name}: {SECRET}"
    return f"{name}: {value}"


def credentials_of(headers: list[tuple[str, str]]) -> Credentials:
    creds = Credentials()
    for name, value in headers:
        if name.lower() == "authorization":
            scheme, _, rest = value.partition(" ")
            creds.auth_scheme = scheme or None
            if scheme.lower() in ("bearer", "dpop") and rest.strip():
                creds.bearer = rest.strip()
        elif is_secret_header(name):
            creds.other.append(name)
    return creds
