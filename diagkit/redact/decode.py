"""Decoding, bounded: what a string is wrapped in, so the inside can be redacted and wrapped again.

`unwrap(text)` peels one layer: a JWT or JWE, base64 or base64url (with gzip or raw DEFLATE inside,
as SAML's redirect binding has it), percent-encoding, or a document in a string (JSON, markup, form).
decide.py redacts the inside (which may be wrapped again: each layer goes through `unwrap` in turn)
and `Layer.wrap` puts the result back in the same encoding. Inflating stops at MAX_INFLATED bytes;
JSON and XML nesting is bounded by formats.py.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import re
import urllib.parse
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from diagkit.formats.inflate import GZIP_OR_ZLIB, RAW_DEFLATE, inflate

MAX_INFLATED = 64 * 1024 * 1024
MAX_RATIO = 200  # a stream that inflates more than this (and past 1 MB) is a bomb: left unread

JWT = re.compile(r"eyJ[\w-]{10,}={0,2}\.eyJ[\w-]*={0,2}\.[\w-]*={0,2}")  # some issuers pad their segments
JWE = re.compile(r"eyJ[\w-]{10,}\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+")
_B64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9_-]{16,}={0,2}")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
# Base64 cut into lines: full lines of 40 or more characters, the last line shorter and padded.
_B64_LINE = r"[A-Za-z0-9+/]{40,}\r?"
_B64_LAST = r"[A-Za-z0-9+/]*={0,2}"
_WRAPPED_B64 = re.compile(rf"(?:{_B64_LINE}\n)+{_B64_LAST}\s*")
_B64_LINE_RE, _B64_LAST_RE = re.compile(_B64_LINE), re.compile(_B64_LAST + r"\r?")
# A hex id (trace id, digest, ETag) is hex, not base64: decoded as base64, its bytes can hold no '@', '.', space
# or run of digits (an email, phone or address), nor a secret name; so it is not decoded.
_HEX_ID = re.compile(r"[0-9A-Fa-f]+")
_URL = re.compile(r"(?:https?|wss?|ftp)://[^\s]+|/[^\s/][^\s]*")
_URL_PARTS = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*:)?(?://(?:(?P<userinfo>[^/?#@\s]*)@)?(?P<host>[^/?#]*))?"
                        r"(?P<path>[^?#]*)(?P<query>\?[^#]*)?(?P<fragment>#.*)?", re.S)
_FORM = re.compile(r"[\w.%\[\]-]+=[^&\s]*(?:&[\w.%\[\]-]+=[^&\s]*)+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")


@dataclass
class Layer:
    kind: str                 # "doc": text to redact as `sniffed`; "jwt", "jwe"; "binary": unreadable bytes
    text: str = ""
    sniffed: str = "text"     # json, markup, form or text
    wrap: Callable[[str], str] = lambda inner: inner
    raw: bytes = b""


def unwrap(text: str) -> Layer | None:
    if len(text) < 8:
        return None
    head = text[:1]
    if head == "e" and JWE.fullmatch(text):
        return Layer("jwe")
    if head == "e" and JWT.fullmatch(text):
        return Layer("jwt")
    if head in "{[<" or "=" in text:
        sniffed = sniff(text)
        if sniffed != "text":
            return Layer("doc", text, sniffed)
    if "\n" in text and _WRAPPED_B64.fullmatch(text):
        return _wrapped_base64(text)
    if (len(text) >= 16 and _B64.fullmatch(text) and not text.isalpha() and not text.isdigit()
            and not _HEX_ID.fullmatch(text)):
        layer = _base64(text)
        if layer is not None:
            return layer
    if "%" in text and _PCT.search(text):
        plain = urllib.parse.unquote(text)
        if plain != text:
            return Layer("doc", plain, sniff(plain), lambda inner: urllib.parse.quote(inner, safe="/:=&?@!$'()*,;~+ "))
    return None


def _wrapped_base64(text: str) -> Layer | None:
    """Base64 cut into lines of one width (PEM's 64, MIME's 76, a SAMLResponse some IdPs post): decoded
    whole, as a value may span two lines, and cut again at that width when encoded back."""
    body = text.rstrip()
    newline = "\r\n" if "\r\n" in body else "\n"
    lines = body.split(newline)
    width = len(lines[0])
    if any(len(line) != width for line in lines[:-1]) or len(lines[-1]) > width:
        return None
    layer = _base64("".join(lines))
    if layer is None or layer.kind != "doc":
        return layer
    encode, tail = layer.wrap, text[len(body):]
    layer.wrap = lambda new: newline.join(_chunks(encode(new), width)) + tail
    return layer


def base64_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each run of two or more lines of base64 of one width (the last may be shorter): a text
    file's wrapped base64, which unwrap() then reads whole."""
    out, i = [], 0
    while i < len(lines):
        j = i + 1
        if _B64_LINE_RE.fullmatch(lines[i]):
            while j < len(lines) and len(lines[j]) == len(lines[i]) and _B64_LINE_RE.fullmatch(lines[j]):
                j += 1
            if j < len(lines) and 0 < len(lines[j]) < len(lines[i]) and _B64_LAST_RE.fullmatch(lines[j]):
                j += 1
            if j - i >= 2:
                out.append((i, j))
        i = j
    return out


# curl --trace's dump of what it sent and received: `0000: 47 45 54 20 … GET /a?…`, 16 bytes a row, a value cut
# wherever a row ends and spelled twice (hex and text): read as the bytes it dumps, and dumped again.
_HEX_ROW = re.compile(r"([0-9a-f]{4}): ((?:[0-9a-f]{2} ){1,16}) *(.*)")


def hex_dump_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each run of rows of a hex dump whose offsets count from 0000 by 16."""
    out, i = [], 0
    while i < len(lines):
        j = i
        while j < len(lines) and (m := _HEX_ROW.fullmatch(lines[j])) is not None and int(m.group(1), 16) == 16 * (j - i):
            j += 1
        if j > i:
            out.append((i, j))
        i = max(j, i + 1)
    return out


def hex_dump_text(rows: list[str]) -> str:
    """The bytes a hex dump's rows spell, as Latin-1 text (one character a byte)."""
    matches = [_HEX_ROW.fullmatch(row) for row in rows]  # rows hex_dump_blocks found: each one matches
    return bytes.fromhex("".join(m.group(2) for m in matches if m is not None)).decode("latin-1")


def hex_dump_rows(text: str) -> str:
    """`text` (one character a byte; a pseudonym is ASCII) dumped again as curl --trace does."""
    data = text.encode("latin-1", "replace")
    rows = []
    for at in range(0, len(data), 16):
        chunk = data[at:at + 16]
        shown = "".join(chr(b) if 0x20 <= b < 0x7f else "." for b in chunk)
        rows.append(f"{at:04x}: " + "".join(f"{b:02x} " for b in chunk).ljust(48) + shown)
    return "\n".join(rows)


def _chunks(text: str, width: int) -> list[str]:
    return [text[i:i + width] for i in range(0, len(text), width)] or [""]


def sniff(text: str) -> str:
    stripped = text.strip()
    if stripped[:1] in "{[" and stripped[-1:] in "}]":
        try:
            json.loads(stripped)
            return "json"
        except ValueError:
            pass
    if stripped[:1] == "<" and stripped[-1:] == ">":
        return "markup"
    if _FORM.fullmatch(stripped):
        return "form"
    return "text"


def _base64(text: str) -> Layer | None:
    urlsafe = "-" in text or "_" in text
    body = text.rstrip("=")
    try:
        raw = (base64.urlsafe_b64decode if urlsafe else base64.b64decode)(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return None
    # padded as written: with `=`, or a whole number of 4-character groups without (standard base64 of a
    # length that needed none); unpadded only where the writer dropped it (a length that is not a multiple of 4)
    padded = text.endswith("=") or len(text) % 4 == 0

    def encode(data: bytes) -> str:
        out = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode("ascii")
        return out if padded else out.rstrip("=")

    content = readable(raw)
    if content is not None:
        inner, rewrap = content
        return Layer("doc", inner, sniff(inner), lambda new: encode(rewrap(new)))
    inflated = _inflate(raw, RAW_DEFLATE)
    if inflated is not None:
        inner_text = readable(inflated)
        if inner_text is not None:
            def deflate(new: str) -> str:
                comp = zlib.compressobj(9, zlib.DEFLATED, -15)
                return encode(comp.compress(new.encode("utf-8")) + comp.flush())
            return Layer("doc", inner_text[0], sniff(inner_text[0]), deflate)
    if len(raw) >= 12 and hides_something(raw):
        return Layer("binary", raw=raw)  # a secret readable inside bytes we cannot parse: not passed through
    return None


def hides_something(raw: bytes) -> bool:
    """Whether the printable runs of unparsed bytes (a protobuf, a DER blob) hold what the rule table
    calls a secret or personal value: such bytes become a placeholder; random bytes (a nonce, a
    signature, a public certificate without one) stay as they are."""
    from diagkit.redact import rules

    runs = " ".join(m.decode("ascii") for m in re.findall(rb"[\x20-\x7e]{6,}", raw))
    return bool(runs) and any(rule.gate and any(rule.check is None or rule.check(m.group(rule.group))
                                                for m in rule.regex.finditer(runs)) for rule in rules.VALUE_RULES)


def readable(raw: bytes) -> tuple[str, Callable[[str], bytes]] | None:
    """(text, how to turn redacted text back into bytes) when the bytes are UTF-8 text, gzip'd or not."""
    if raw[:2] == b"\x1f\x8b":
        inflated = _inflate(raw, GZIP_OR_ZLIB)
        if inflated is None:
            return None
        inner = readable(inflated)
        return None if inner is None else (inner[0], lambda new: gzip.compress(inner[1](new), mtime=0))
    bom = raw.startswith(b"\xef\xbb\xbf")
    try:
        text = raw[3:].decode("utf-8") if bom else raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or len(_CONTROL.findall(text[:65536])) > len(text[:65536]) // 100:
        return None
    return text, (lambda new: (b"\xef\xbb\xbf" if bom else b"") + new.encode("utf-8"))


def _inflate(raw: bytes, wbits: int) -> bytes | None:
    """The whole stream inflated within the bound, or None (not this format, cut short, or too large)."""
    limit = min(MAX_INFLATED, max(1024 * 1024, MAX_RATIO * len(raw)))
    try:
        inflated = inflate(raw, wbits, limit)
    except zlib.error:
        return None
    return inflated.data if inflated.complete and not inflated.over_limit else None


def placeholder(raw: bytes) -> str:
    """What unreadable content becomes: its size and digest, nothing of its bytes."""
    return f"<BINARY:{len(raw)} bytes sha256:{hashlib.sha256(raw).hexdigest()}>"


# ---------------------------------------------------------------- URLs and JWTs


def looks_like_url(text: str) -> bool:
    return len(text) > 1 and _URL.fullmatch(text) is not None


def split_url(url: str) -> tuple[str, str, str, str, str, str] | None:
    m = _URL_PARTS.fullmatch(url)
    if m is None:
        return None
    authority = m.group("host") is not None
    scheme = (m.group("scheme") or "") + ("//" if authority else "")
    return (scheme, m.group("userinfo") or "", m.group("host") or "", m.group("path") or "", m.group("query") or "",
            m.group("fragment") or "")


def param_names(encoded: str) -> set[str]:
    encoded = encoded.lstrip("?#")
    return {urllib.parse.unquote_plus(p.partition("=")[0]).lower() for p in encoded.split("&") if "=" in p}


def _b64url_json(segment: str) -> Any:
    segment = segment.rstrip("=")
    data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    return json.loads(data)


def jwt_parts(token: str) -> tuple[dict, dict] | None:
    try:
        header, payload = (_b64url_json(p) for p in token.split(".")[:2])
    except (ValueError, binascii.Error):
        return None
    return (header, payload) if isinstance(header, dict) and isinstance(payload, dict) else None


def b64url_json(obj: Any) -> str:
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
