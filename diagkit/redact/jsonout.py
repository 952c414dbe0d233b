"""Writing redacted JSON/HAR: orjson in one C call; the standard library for what orjson cannot write.

Layout: input that was indented is written with two-space indentation, compact input compactly.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def indented(head: str) -> bool:
    """True when the document's text (its first 2,000 characters) is laid out over several lines."""
    stripped = head.lstrip("\ufeff \t\r\n")
    first_nl = stripped.find("\n")
    return 0 <= first_nl < 200


def encode(obj: Any, indent: bool, nonfinite: bool = False) -> bytes:
    """UTF-8 JSON of `obj`: two-space indented or compact. nonfinite: write NaN/Infinity back as they were."""
    if not nonfinite:
        try:
            return orjson.dumps(obj, option=orjson.OPT_INDENT_2 if indent else 0)
        except (TypeError, orjson.JSONEncodeError):
            pass  # integers beyond 64 bits, lone surrogates: what json.loads accepted, json.dumps writes back
    separators = (",", ": ") if indent else (",", ":")
    text = json.dumps(obj, ensure_ascii=False, indent=2 if indent else None, separators=separators)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (valid in JSON text, not in UTF-8): as its \u escape
        return json.dumps(obj, ensure_ascii=True, indent=2 if indent else None, separators=separators).encode()
