"""Small values the HAR checks share: URLs reduced to what is safe to show, times, timing numbers, short
scrubbed text, and Group, which folds repeated occurrences of one problem into one finding.

HAR exporters fill fields loosely (missing, -1, strings where numbers belong), so every helper here
takes Any and answers None or "" rather than raising.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

GROUP_SAMPLE = 5  # URLs kept per grouped finding


def safe_url(url: Any) -> str:
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


def parse_har_time(value: Any) -> _dt.datetime | None:
    """startedDateTime as an aware datetime, or None when it is missing or not a time."""
    from diagkit.context import parse_time

    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        pass
    # Some exporters write more than 6 fractional digits or a space separator.
    text = value.strip().replace(" ", "T", 1)
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return parse_time(text)
    except ValueError:
        return None


_MAX_TIMING_MS = 1e10  # about 115 days; nothing a browser records takes longer


def number(value: Any) -> float | None:
    """A timing value, or None for -1 / missing / junk (HAR uses -1 for "does not apply")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # NaN, Infinity and absurd values (crafted or corrupt exports) would overflow date arithmetic.
    return float(value) if 0 <= value <= _MAX_TIMING_MS else None


def short(text: Any, limit: int = 160) -> str:
    from diagkit.scrub import scrub

    return scrub(" ".join(str(text).split()))[:limit]


def digest(value: str) -> str:
    """A short stable key that recognises the same token when it is seen again."""
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:12]


@dataclass
class Group:
    """One problem seen `count` times: the first entry, a few sample URLs and request ids, shared evidence."""

    count: int = 0
    first: int = 0
    urls: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)

    def note(self, index: int, url: str, ids: list[str]) -> None:
        if not self.count:
            self.first = index
        self.count += 1
        if url not in self.urls and len(self.urls) < GROUP_SAMPLE:
            self.urls.append(url)
        for rid in ids:
            if rid not in self.request_ids and len(self.request_ids) < GROUP_SAMPLE:
                self.request_ids.append(rid)

