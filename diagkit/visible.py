"""Untrusted text made safe to show: control, bidi and other invisible characters become visible escapes.

Text from outside (a packet, a HAR, a server's answer) is passed through `visible` before it reaches a
terminal, Markdown, HTML or an error message, so it cannot move the cursor, recolour or erase a line, or
reorder text (e.g. to draw a fake "pinned" signer line). A packet is attacker-controlled until proven
otherwise, and even a validly signed packet from an unpinned signer is only as honest as its builder.
"""

from __future__ import annotations

import unicodedata
from typing import Any

# Cc control (ESC, CR, DEL, C1), Cf format (bidi overrides and isolates, zero-width), Zl/Zp line and
# paragraph separators, Cs lone surrogates, Co private use, Cn unassigned (could become format later).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: Any, *, multiline: bool = False) -> str:
    """`text` (made a string) with every invisible or control character written as `\\x1b`, `\\u202e`...

    With `multiline`, newlines are kept (the caller indents each line); all else is escaped the same.
    """
    value = text if isinstance(text, str) else str(text)
    out = []
    for char in value:
        if char == "\n" and multiline:
            out.append(char)
        elif unicodedata.category(char) in _ESCAPED_CATEGORIES:
            out.append(_escape(char))
        else:
            out.append(char)
    return "".join(out)


def visible_tree(value: Any, *, multiline_keys: frozenset[str] = frozenset()) -> Any:
    """A copy of a JSON-like value with every string (keys too) passed through `visible`.

    Strings held under a key in `multiline_keys` keep their newlines.
    """
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {visible(k): (visible(v, multiline=True) if isinstance(v, str) and k in multiline_keys
                             else visible_tree(v, multiline_keys=multiline_keys))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [visible_tree(v, multiline_keys=multiline_keys) for v in value]
    return value


def visible_all(value: Any) -> Any:
    """A copy of a JSON-like value with every string made visible, newlines kept (keys made visible too)."""
    if isinstance(value, str):
        return visible(value, multiline=True)
    if isinstance(value, dict):
        return {visible(k): visible_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [visible_all(v) for v in value]
    return value
