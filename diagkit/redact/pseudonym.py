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
PSEUDONYM_RE = re.compile(r"<(?:[A-Z][A-Z_]*:[0-9a-f]{6,16}|(?:redacted|REDACTED)(?:-[a-zA-Z]{1,16})?|BINARY:\d+ bytes sha256:[0-9a-f]{64})>")
# Percent-encoded form, as it appears inside URLs.
PSEUDONYM_URL_RE = re.compile(r"%3C(?:[A-Z][A-Z_]*(?:%3A|:)[0-9a-f]{6,16}|redacted(?:-[a-z]{1,16})?)%3E",
                              re.IGNORECASE)

# 40 bits. A 50 MB HAR holds ~100,000 distinct values: at 32 bits two of them share a prefix about once
# a file (the birthday bound, n²/2³³), at 40 bits once in some 200 files. A collision lengthens the later
# value's pseudonym, so which value gets the short one depends on the order they are met in.
_HEX = 10


def default_hex() -> int:
    """Hex digits in a pseudonym whose prefix no other value holds (read when asked: tests shorten it)."""
    return _HEX


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
        # keyed once: a copy per value skips hashing the key's two padded blocks again (a third of the time of a
        # one-shot hmac.digest, measured; copying takes the object's lock, so threads may share it)
        self._keyed = hmac.new(self.key, digestmod="sha256")
        self.mapping: dict[str, str] = {}
        self._cache: dict[tuple[str, str], str] = {}

    def digest(self, value: str, length: int = _HEX) -> str:
        """HMAC-SHA256 of the value under the key, in hex, its first `length` digits."""
        mac = self._keyed.copy()
        mac.update(value.encode("utf-8", "surrogatepass"))
        return mac.hexdigest()[:length]

    def __call__(self, kind: str, value: str) -> str:
        key = (kind, value)
        pseudo = self._cache.get(key)
        if pseudo is None:
            if is_pseudonym(value):
                return value
            # assign()'s first step, inline: a dense log hands out a new pseudonym on every line
            full = self.digest(value, 16)
            pseudo = f"<{kind}:{full[:_HEX]}>"
            held = self.mapping.setdefault(pseudo, value)
            if held != value:  # the prefix is another value's: a longer pseudonym
                pseudo = self.assign(kind, value, self.mapping, known_hex=full)
                assert pseudo is not None  # the whole digest was at hand
            self._cache[key] = pseudo
        return pseudo

    def assign(self, kind: str, value: str, mapping: dict[str, str], known_hex: str | None = None) -> str | None:
        """The pseudonym `value` gets given what `mapping` (pseudonym -> value) holds already; added to it.

        known_hex: the HMAC's hex as far as it is known (from a pseudonym the value was given elsewhere)
        instead of computing it; None when the answer needs more of it than that."""
        full = known_hex if known_hex is not None else self.digest(value, 16)
        length = _HEX
        while True:
            if length > len(full):
                return None
            pseudo = f"<{kind}:{full[:length]}>"
            known = mapping.get(pseudo)
            # two values sharing a prefix: the later one gets a longer pseudonym instead of the same one
            if known is None or known == value or length >= 16:
                break
            length += 2
        mapping[pseudo] = value
        return pseudo

    def merge(self, mapping: dict[str, str]) -> None:
        self.mapping.update(mapping)
