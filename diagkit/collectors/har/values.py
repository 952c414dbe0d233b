"""Small values the HAR checks share: times, timing numbers, short scrubbed text, and Group, which folds repeated occurrences of one problem into one finding.

HAR exporters fill fields loosely (missing, -1, strings where numbers belong), so every helper here
takes Any and answers None or "" rather than raising.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

GROUP_SAMPLE = 5  # URLs kept per grouped finding





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

