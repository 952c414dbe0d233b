"""URLs as the HTTP probe compares and shows them: origins, and URLs with credentials and query values masked."""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qs, urlsplit, urlunsplit

# Query parameters whose values are safe and useful to show (OAuth error and request parameters).
SAFE_QUERY = frozenset({"error", "error_description", "error_uri", "response_type", "response_mode", "prompt",
                        "scope", "client_id", "redirect_uri", "resource", "audience", "api-version"})


def origin_of(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)
    except ValueError:  # not a URL: an origin of its own, equal to no real one
        return "invalid", "", 0


def origin_text(url: str) -> str:
    scheme, host, port = origin_of(url)
    if scheme == "invalid":
        return "<invalid URL>"
    default = 443 if scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + ("" if port == default else f":{port}")


def safe_url(url: str) -> str:
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
    query = "&".join(f"{k}=<redacted>" if k not in SAFE_QUERY else f"{k}={v[0]}"
                     for k, v in parse_qs(parts.query, keep_blank_values=True).items())
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
