"""Untrusted text made safe to print: control, bidi and other invisible characters shown escaped.

CONTRACT.md: text from outside (a packet, a server's answer) is shown with such characters made
visible (`\\x1b`, `\\u202e`), in the terminal, in Markdown and in error messages, so it can neither
drive the terminal nor reorder what a reader sees.
"""

from __future__ import annotations

import unicodedata

# Control, format (bidi overrides such as U+202E), separators, surrogates, private use, unassigned.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: object, *, keep_newlines: bool = False) -> str:
    """`text` as a string with every invisible character escaped (newlines kept only when asked)."""
    value = text if isinstance(text, str) else str(text)
    return "".join(ch if (ch == "\n" and keep_newlines) or unicodedata.category(ch) not in _INVISIBLE
                   else _escape(ch) for ch in value)


def visible_obj(value: object) -> object:
    """A JSON-like value with `visible` applied to every string in it, keys included."""
    if isinstance(value, str):
        return visible(value, keep_newlines=True)
    if isinstance(value, dict):
        return {visible(k) if isinstance(k, str) else k: visible_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [visible_obj(v) for v in value]
    return value
