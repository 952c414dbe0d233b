"""URLs, hosts and ports, the one home for them: origins, URLs reduced to what is safe to show, host:port.

`masked_url` keeps the values of a few OAuth parameters an engineer needs (error, scope, client_id...) and masks
the rest; `url_shape` keeps only parameter names. Neither ever shows user:password from the authority.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from diagkit.errors import UsageError

# Query parameters whose values are safe and useful to show (OAuth error and request parameters).
SAFE_QUERY = frozenset({"error", "error_description", "error_uri", "response_type", "response_mode", "prompt",
                        "scope", "client_id", "redirect_uri", "resource", "audience", "api-version"})


def origin_parts(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in; an invalid URL is an origin equal to no real one."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)
    except ValueError:  # not a URL: an origin of its own, equal to no real one
        return "invalid", "", 0


def origin_text(url: str) -> str:
    scheme, host, port = origin_parts(url)
    if scheme == "invalid":
        return "<invalid URL>"
    default = 443 if scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + ("" if port == default else f":{port}")


def masked_url(url: str) -> str:
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


def url_shape(url: Any) -> str:
    """origin + path + query (and fragment) parameter NAMES only: safe to show and to put in a packet."""
    if not isinstance(url, str) or not url:
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    origin = f"{parts.scheme}://{host}{f':{port}' if port else ''}" if parts.scheme and host else ""
    out = origin + parts.path
    names = [p.split("=", 1)[0] for p in parts.query.split("&") if p] if parts.query else []
    if names:
        out += "?" + "&".join(dict.fromkeys(names))
    frag = [p.split("=", 1)[0] for p in parts.fragment.split("&") if "=" in p] if parts.fragment else []
    if frag:
        out += "#" + "&".join(dict.fromkeys(frag))
    return out[:300]


def hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname if url else None
    except ValueError:  # "http://[::1" and other URLs that are not URLs
        return None


def origin_of(url: Any) -> str | None:
    """scheme://host[:port] lower-cased, the port only when not the default; None when there is no host."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return f"{parts.scheme.lower()}://{host.lower()}" + (f":{port}" if port and port != default else "")


def path_key(url: str) -> str:
    """origin + path: what identifies "the same page" across repeated visits with changing query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return f"{origin_of(url) or ''}{parts.path or '/'}"


def is_ip(text: str) -> bool:
    """An IPv4 or IPv6 address, with or without the brackets a URL puts around IPv6."""
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def authority_parts(text: str) -> tuple[str, str]:
    """(host, port text) of `host`, `host:port`, `[v6]:port` or a URL's authority; the port text is "" when
    there is none. Nothing is checked here: each caller says what a bad port means for it."""
    text = text.strip()
    if "://" in text:
        text = text.split("://", 1)[1].split("/", 1)[0]
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        return host, rest.lstrip(":")
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port
    return text, ""


def split_host_port(target: str, default_port: int = 443) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a URL's authority; an impossible port is a usage error."""
    host, port = authority_parts(target)
    if not host:
        raise UsageError(f"target '{target}': no host name", hint="give HOST[:PORT], e.g. api.example.com:443")
    if not port:
        return host, default_port
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UsageError(f"target '{target}': port '{port}' is not a port number (1-65535)",
                         hint="give HOST[:PORT], e.g. api.example.com:443")
    return host, int(port)


def host_of(target: str) -> str | None:
    """The host a target names (URL, HOST:PORT or DNS name), or None for a file or an inline value.

    Results are tied together across probes only when they name the same host, so a DNS failure for one
    name never explains a TLS failure of another.
    """
    text = target.strip()
    if "://" in text:
        host = urlsplit(text).hostname
    elif not text or text.startswith("<") or "/" in text or "\\" in text or os.path.exists(text):
        return None
    else:
        host = authority_parts(text)[0]
    host = (host or "").lower().rstrip(".")
    return host or None
