"""Canonical JSON for the signed manifest: RFC 8785 (JCS) restricted to integers, one byte form per value.

The manifest is signed as bytes; a verifier then reads those bytes as JSON. If several byte strings
could mean the same document (whitespace, key order, escapes, `1.0` vs `1`, a BOM) or one byte string
could mean different documents to different parsers (duplicate keys, NaN, `1e400`, lone surrogates),
diagkit and a third-party in-toto tool could disagree about what was signed. So `dumps` writes exactly
one form, and `loads` accepts a document only when its bytes are that form:

- UTF-8, no byte order mark; no whitespace between tokens; no trailing newline;
- object keys sorted by their UTF-16 code units (RFC 8785 section 3.2.3), each key once;
- strings as RFC 8785 writes them: only `"`, `\\` and U+0000..U+001F escaped (`\\b \\t \\n \\f \\r`,
  else `\\u00xx` lowercase), everything else literal; no lone surrogates;
- numbers: integers only, -(2**53 - 1) .. 2**53 - 1, no sign on zero, no fraction or exponent;
  so no floats, NaN or Infinity;
- at most MAX_DEPTH nested arrays/objects.
Any JCS implementation gives the same bytes for such a document.
"""

from __future__ import annotations

import json
from typing import Any

from diagkit.packet.format import DuplicateKeyError, refuse_duplicate_keys

MAX_DEPTH = 32
MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalError(ValueError):
    """The bytes are not canonical JSON; the message says what is wrong, in words, never the content."""


def _key_order(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _has_lone_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _write(value: Any, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CanonicalError(f"nested more than {MAX_DEPTH} levels deep")
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalError(f"integer outside +-(2**53 - 1): {value}")
        out.append(str(value))
    elif isinstance(value, str):
        if _has_lone_surrogate(value):
            raise CanonicalError("string with a lone surrogate")
        out.append(json.dumps(value, ensure_ascii=False))  # the same escapes as RFC 8785 section 3.2.2.2
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out, depth + 1)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        for index, key in enumerate(sorted(value, key=_key_order)):
            if not isinstance(key, str):
                raise CanonicalError("object key that is not a string")
            if index:
                out.append(",")
            _write(key, out, depth + 1)
            out.append(":")
            _write(value[key], out, depth + 1)
        out.append("}")
    else:
        # float included: no float has one agreed text form, so signed JSON never holds one.
        raise CanonicalError(f"{type(value).__name__} value cannot be written as canonical JSON")


def dumps(value: Any) -> bytes:
    """The canonical bytes of `value` (None, bool, int, str, list, dict with str keys)."""
    out: list[str] = []
    _write(value, out, 1)
    return "".join(out).encode("utf-8")


def _refuse_float(text: str) -> Any:
    raise CanonicalError(f"number {text[:24]!r} is not an integer (no floats, exponents or fractions)")


def _refuse_constant(text: str) -> Any:
    raise CanonicalError(f"{text} is not JSON")


def _check_tree(document: Any) -> None:
    """Depth, integer range and lone surrogates, walked with an explicit stack (no recursion)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CanonicalError(f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalError("integer outside +-(2**53 - 1)")
        if isinstance(value, str) and _has_lone_surrogate(value):
            raise CanonicalError("string with a lone surrogate")
        if isinstance(value, list):
            stack += [(item, depth + 1) for item in value]
        if isinstance(value, dict):
            for key, item in value.items():
                if _has_lone_surrogate(key):
                    raise CanonicalError("object key with a lone surrogate")
                stack.append((item, depth + 1))


def loads(data: bytes) -> Any:
    """The document in `data`, only if `data` is exactly its canonical form; else CanonicalError."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise CanonicalError("starts with a UTF-8 byte order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CanonicalError("not valid UTF-8") from None
    try:
        document = json.loads(text, object_pairs_hook=refuse_duplicate_keys, parse_float=_refuse_float,
                              parse_constant=_refuse_constant)
    except RecursionError:
        raise CanonicalError(f"nested more than {MAX_DEPTH} levels deep") from None
    except CanonicalError:
        raise
    except DuplicateKeyError:
        raise CanonicalError("an object names the same key twice") from None
    except ValueError as exc:
        # json's own message names a position only (never the content around it).
        raise CanonicalError(f"not JSON ({str(exc).splitlines()[0]})") from None
    _check_tree(document)
    if dumps(document) != data:
        raise CanonicalError("not in canonical form (RFC 8785: no whitespace, keys sorted, minimal escapes)")
    return document
