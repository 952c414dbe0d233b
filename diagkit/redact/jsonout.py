"""Writing redacted JSON/HAR: orjson in one C call, with the standard library as the fallback.

The Python json encoder (json.dump, and json.dumps whenever indent is set) cost as much as the whole
redaction walk on a big HAR; orjson writes the same document about six times faster. Layout: input
that was indented is written with two-space indentation, compact input compactly.

`write_spliced` lets a process pool serialise HAR entries in the workers: the skeleton is encoded with a
sentinel where the entries go and the workers' encoded chunks are written in its place, byte for
byte what encoding the whole tree at once gives.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any

try:
    import orjson
except ImportError:  # pragma: no cover - a core dependency; the fallback keeps a broken install working
    orjson = None  # type: ignore[assignment]


def indented(head: str) -> bool:
    """True when the document's text (its first 2,000 characters) is laid out over several lines."""
    stripped = head.lstrip("\ufeff \t\r\n")
    first_nl = stripped.find("\n")
    return 0 <= first_nl < 200


def has_nonfinite(text: str) -> bool:
    """True when JSON text may hold NaN or Infinity (which json.loads accepts and orjson would write as null)."""
    return "NaN" in text or "Infinity" in text


def encode(obj: Any, indent: bool, nonfinite: bool = False) -> bytes:
    """UTF-8 JSON of `obj`: two-space indented or compact. nonfinite: write NaN/Infinity back as they were."""
    if orjson is not None and not nonfinite:
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


def encode_items(items: list[Any], indent: bool, depth: int, nonfinite: bool = False) -> bytes:
    """The members of a JSON array as they appear inside it at nesting `depth` (0 = the root array)."""
    whole = encode(items, indent, nonfinite)
    if not items:
        return b""
    if not indent:
        return whole[1:-1]
    # "[\n  {...},\n  {...}\n]": items at depth 1; shift every line (JSON text never holds a raw
    # newline inside a string) by the extra depth, and drop the brackets and the first line's indent.
    body = whole[2:-2]
    shift = b"  " * (depth - 1)
    return body.replace(b"\n", b"\n" + shift)[2:]


def write_spliced(skeleton: Any, slot: list[Any], chunks: list[bytes], indent: bool, depth: int,
                  handle: IO[bytes], trailing_newline: bool, nonfinite: bool = False) -> None:
    """Write `skeleton` with the empty list `slot` inside it filled by `chunks` (from encode_items).

    depth: the nesting depth of the slot's items (HAR entries: 3). At least one chunk must hold items:
    an empty slot is encoded as "[]", which a splice cannot produce."""
    chunks = [c for c in chunks if c]
    if not chunks or slot:
        raise ValueError("write_spliced needs an empty slot and at least one item")
    sentinel = f"diagkit-splice-{os.urandom(8).hex()}"
    slot.append(sentinel)
    try:
        text = encode(skeleton, indent, nonfinite)
    finally:
        slot.pop()
    marker = json.dumps(sentinel).encode("ascii")
    at = text.find(marker)
    handle.write(text[:at])
    separator = b",\n" + b"  " * depth if indent else b","
    for i, chunk in enumerate(chunks):
        handle.write(chunk if not i else separator + chunk)
    handle.write(text[at + len(marker):])
    if trailing_newline:
        handle.write(b"\n")
