"""Compressed bodies (gzip, zlib) inside HARs: bounded decompression and deterministic recompression.

A browser saves a body it could not decode (or chose not to) as base64 of the bytes on the wire, often
still gzip-compressed. The redactor and the leak gate both look inside; what cannot be opened safely
(corrupt, or a decompression bomb) makes the run fail closed rather than pass an unread body through.
"""

from __future__ import annotations

import zlib

# The cap the SAML decoder uses for HTTP-Redirect messages: a real one is a few KB.
from diagkit.collectors.saml_xml import _MAX_INFLATE as RAW_DEFLATE_MAX
from diagkit.errors import RedactionError

MAX_BYTES = 50 * 1024 * 1024  # never inflate a body beyond this
MAX_RATIO = 100  # ... nor beyond 100x its compressed size once past FREE_BYTES
FREE_BYTES = 1024 * 1024  # small bodies may compress very well (repeated JSON keys): no ratio check below this
_WBITS = {"gzip": 31, "zlib": 15}


def kind(raw: bytes) -> str | None:
    """'gzip' or 'zlib' when `raw` starts like such a stream, else None."""
    if raw[:2] == b"\x1f\x8b":
        return "gzip"
    # zlib: CMF 0x78 (deflate, 32K window) and a header checksum that is a multiple of 31
    if len(raw) > 2 and raw[0] == 0x78 and (raw[0] << 8 | raw[1]) % 31 == 0:
        return "zlib"
    return None


class Corrupt(Exception):
    """A stream that stops being valid part way; `partial` is what inflated before that point."""

    def __init__(self, partial: bytes) -> None:
        super().__init__("corrupt compressed stream")
        self.partial = partial


def inflate(raw: bytes, how: str, where: str) -> bytes:
    """Decompress every member of a gzip/zlib stream within the bounds.

    RedactionError beyond the bounds (nothing can be said about the rest); Corrupt, carrying what did
    inflate, for a stream that is damaged or truncated: callers check that part and keep the body as it
    is when it is clean (a broken body is itself evidence an engineer needs)."""
    limit = min(MAX_BYTES, max(FREE_BYTES, MAX_RATIO * len(raw)))
    out: list[bytes] = []
    size = 0
    data = raw
    while data:
        engine = zlib.decompressobj(_WBITS[how])
        try:
            chunk = engine.decompress(data, limit + 1 - size)
        except zlib.error:
            # decompress() keeps nothing on error: redo it in small steps to get what was readable
            raise Corrupt(b"".join(out) + _readable_prefix(data, how, limit - size)) from None
        size += len(chunk)
        out.append(chunk)
        if size > limit or engine.unconsumed_tail:
            raise RedactionError(f"{where}: {how}-compressed body inflates beyond {limit // (1024 * 1024)} MB "
                                 f"(limits {MAX_BYTES // (1024 * 1024)} MB and {MAX_RATIO}x); refused, no output "
                                 "was written")
        if not engine.eof:
            raise Corrupt(b"".join(out))
        data = engine.unused_data if how == "gzip" else b""  # gzip allows several members back to back
    return b"".join(out)


class TooLarge(Exception):
    """Raw DEFLATE that inflates beyond RAW_DEFLATE_MAX: what it holds cannot be inspected."""


def inflate_raw(raw: bytes, cap: int = RAW_DEFLATE_MAX) -> bytes:
    """Raw DEFLATE (a SAML HTTP-Redirect message), as zlib.decompress(raw, -15) but never past `cap`.

    zlib.error when `raw` is not a complete DEFLATE stream; TooLarge beyond the cap (a 1 MB bomb would
    otherwise inflate to 1 GB before anything looked at it)."""
    engine = zlib.decompressobj(-15)
    out = engine.decompress(raw, cap + 1)
    if len(out) > cap or engine.unconsumed_tail:
        raise TooLarge(f"DEFLATE data inflates beyond {cap // (1024 * 1024)} MB")
    if not engine.eof:
        raise zlib.error("incomplete or truncated stream")
    return out


def _readable_prefix(data: bytes, how: str, limit: int) -> bytes:
    engine = zlib.decompressobj(_WBITS[how])
    out: list[bytes] = []
    size = 0
    for i in range(0, len(data), 256):
        try:
            chunk = engine.decompress(data[i:i + 256], limit - size)
        except zlib.error:
            break
        out.append(chunk)
        size += len(chunk)
        if size >= limit or engine.eof:
            break
    return b"".join(out)


def deflate(data: bytes, how: str) -> bytes:
    """Recompress in the same container; fixed mtime, so the same input gives the same bytes."""
    if how == "gzip":
        import gzip

        return gzip.compress(data, compresslevel=6, mtime=0)
    return zlib.compress(data, 6)
