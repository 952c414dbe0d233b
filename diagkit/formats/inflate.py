"""Bounded inflation of zlib, gzip and raw DEFLATE data: the one place diagkit expands compressed input.

At most `limit` bytes ever come out, however small the input, so a decompression bomb costs nothing.
Callers decide what an incomplete stream, a stream beyond the limit or trailing bytes mean for them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

RAW_DEFLATE = -15  # no header (SAML HTTP-Redirect, ZIP members)
ZLIB = 15
GZIP_OR_ZLIB = 47  # 32 + 15: either header, detected


@dataclass(frozen=True)
class Inflated:
    data: bytes
    complete: bool  # the compressed stream ended
    over_limit: bool  # more would have come out than `limit`
    trailing: bytes  # input after the end of the stream


def inflate(data: bytes, wbits: int, limit: int) -> Inflated:
    """Inflate up to `limit` bytes; raises zlib.error when `data` is not a stream of that format."""
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, limit)
    return Inflated(out, inflater.eof, bool(inflater.unconsumed_tail), inflater.unused_data)
