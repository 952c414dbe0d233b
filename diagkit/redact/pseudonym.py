"""Stable, typed pseudonyms: HMAC-SHA256 of the original value under a per-run (or per-case) key.

`<EMAIL:3f9a1c>`: the kind says what was there, the hex lets an engineer correlate the same value
across files, places and encodings without learning it.
"""

from __future__ import annotations

import hmac
import os
import re

# What a pseudonym looks like, so detectors and the gate never re-redact their own output.
# Also the placeholders diagkit's probes write themselves ("<redacted>", "<redacted-jwt>"): left alone, so
# redacting diagkit output (or redacting twice, with any key) changes nothing.
PSEUDONYM_RE = re.compile(r"<(?:[A-Z][A-Z_]*:[0-9a-f]{6,16}|redacted(?:-[a-z]{1,16})?)>")
# Percent-encoded form, as it appears inside URLs.
PSEUDONYM_URL_RE = re.compile(r"%3C(?:[A-Z][A-Z_]*(?:%3A|:)[0-9a-f]{6,16}|redacted(?:-[a-z]{1,16})?)%3E",
                              re.IGNORECASE)

_HEX = 8  # 32 bits: no collisions to speak of even across a 50 MB case


def is_pseudonym(text: str) -> bool:
    # asked of nearly every value: most start with neither "<" nor "%", which settles it without a regex
    first = text[:1]
    if first == "<":
        return PSEUDONYM_RE.fullmatch(text) is not None
    return first == "%" and PSEUDONYM_URL_RE.fullmatch(text) is not None


class Pseudonymizer:
    """Maps values to pseudonyms; remembers pseudonym -> original for --map."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key if key else os.urandom(32)
        self.mapping: dict[str, str] = {}
        self._cache: dict[tuple[str, str], str] = {}

    def digest(self, value: str, length: int = _HEX) -> str:
        # hmac.digest: the same HMAC-SHA256 as hmac.new(...), in one C call (a third of the time)
        return hmac.digest(self.key, value.encode("utf-8", "surrogatepass"), "sha256").hex()[:length]

    def __call__(self, kind: str, value: str) -> str:
        cached = self._cache.get((kind, value))
        if cached is not None:
            return cached
        if is_pseudonym(value):
            return value
        length = _HEX
        while True:
            pseudo = f"<{kind}:{self.digest(value, length)}>"
            known = self.mapping.get(pseudo)
            # A 24-bit prefix can collide within one big case; lengthen instead of merging two values.
            if known is None or known == value or length >= 16:
                break
            length += 2
        self.mapping[pseudo] = value
        self._cache[(kind, value)] = pseudo
        return pseudo

    def merge(self, mapping: dict[str, str]) -> None:
        self.mapping.update(mapping)
