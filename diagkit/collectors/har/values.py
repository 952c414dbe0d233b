"""Small values the HAR checks share: times, timing numbers, short scrubbed text, and Group, which folds repeated occurrences of one problem into one finding.

HAR exporters fill fields loosely (missing, -1, strings where numbers belong), so every helper here
takes Any and answers None or "" rather than raising.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

GROUP_SAMPLE = 5  # URLs kept per grouped finding




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

