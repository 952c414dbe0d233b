"""Loading HAR 1.2 files, whole or streamed, and small accessors for the parts of an entry probes need.

Shared by the HAR probe and the redactor. Exports from Chrome, Firefox, Safari, Edge, Charles, Insomnia,
mitmproxy and Playwright differ in which optional fields they fill, so every accessor tolerates missing or
oddly typed fields. Big files are streamed entry by entry with ijson (C backend) so memory stays small.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import datetime as _dt
import io
import json
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

from diagkit.errors import InputError, InputFormatError, InputNotFound, read_input_bytes
from diagkit.formats.inflate import GZIP_OR_ZLIB, RAW_DEFLATE, ZLIB, inflate
from diagkit.gcpause import gc_paused

# A body stored compressed is never inflated beyond this (a 1 MB gzip bomb would be 1 GB).
MAX_INFLATED_BODY = 64 * 1024 * 1024
# Below this size the whole file is parsed at once; its memory (about 5x the file) is bounded by it.
STREAM_THRESHOLD = 16 * 1024 * 1024

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _label(path: str) -> str:
    return f"HAR file '{path}'"


def _check_structure(doc: Any, path: str) -> dict:
    """A HAR is {"log": {"entries": [...]}}; say precisely what else it is."""
    if isinstance(doc, dict):
        log = doc.get("log")
        if isinstance(log, dict) and isinstance(log.get("entries"), list):
            return doc
        if "request" in doc and "response" in doc:
            raise InputFormatError(f"{_label(path)} is a single HAR entry, not a HAR log (no log.entries)")
        if isinstance(log, dict):
            raise InputFormatError(f"{_label(path)} has no log.entries list")
        raise InputFormatError(f"{_label(path)} is JSON but not a HAR: no log.entries")
    kind = type(doc).__name__.replace("dict", "object").replace("list", "array")
    raise InputFormatError(f"{_label(path)} is JSON but not a HAR: the top level is an {kind}, no log.entries")


def parse_har_bytes(data: bytes, path: str = "<input>") -> dict:
    """Parse HAR bytes (UTF-8 with or without BOM, UTF-16/32 with BOM) and check it is a HAR log."""
    return parse_har_text(decode_har_bytes(data, path), path)


def decode_har_bytes(data: bytes, path: str = "<input>") -> str:
    """The text of a HAR file, in whichever Unicode encoding it was saved."""
    # json.detect_encoding also recognises UTF-16/32 without a BOM (RFC 8259 §8.1 / RFC 4627 §3).
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None) or json.detect_encoding(data)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"{_label(path)} is not valid {encoding.upper()} text "
                               f"(bad byte at offset {exc.start})") from None


def parse_har_text(text: str, path: str = "<input>", parse_constant: Callable[[str], Any] | None = None) -> dict:
    """Parse the text of a HAR file and check it is a HAR log. parse_constant: json.loads' hook, called for
    each NaN, Infinity and -Infinity the text holds."""
    if not text.strip():
        raise InputFormatError(f"{_label(path)} is empty")
    try:
        with gc_paused():
            doc = json.loads(text, parse_constant=parse_constant)
    except json.JSONDecodeError as exc:
        # exc.msg is a fixed description ("Expecting ',' delimiter"), never file content.
        raise InputFormatError(f"{_label(path)} is not valid JSON: {exc.msg.removesuffix(' at')} at line "
                               f"{exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InputFormatError(f"{_label(path)} is not a HAR: JSON nested too deeply") from None
    except ValueError:  # the only other ValueError of json.loads: an integer past Python's digit limit
        raise InputFormatError(f"{_label(path)} holds a number too long to read "
                               f"(over {sys.get_int_max_str_digits()} digits)") from None
    return _check_structure(doc, path)


def load_har(path: str) -> dict:
    """The whole HAR as a dict. InputNotFound for a missing file, InputFormatError for anything not a HAR."""
    # A path on disk (open_har has looked it up already): "-" is a file of that name here, not stdin.
    return parse_har_bytes(read_input_bytes(path, "HAR file", stdin=False), path)


def iter_entries(har: dict) -> Iterator[dict]:
    """The entries of a loaded HAR that are objects (a stray null or string is skipped, not fatal)."""
    log = har.get("log") if isinstance(har, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    for entry in entries or ():
        if isinstance(entry, dict):
            yield entry


# ----------------------------------------------------------------------------------- streaming


class _Utf8Reader:
    """Presents a UTF-16/32 text stream as UTF-8 bytes, which is what ijson reads."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self._pending = b""

    def __enter__(self) -> _Utf8Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._text.close()

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        size = 65536 if size is None or size < 0 else size
        while len(self._pending) < size:
            chunk = self._text.read(size)
            if not chunk:
                break
            self._pending += chunk.encode("utf-8")
        out, self._pending = self._pending[:size], self._pending[size:]
        return out


class _CountingReader:
    """Counts bytes handed to the parser so a syntax error can say roughly where it is."""

    def __init__(self, raw: IO[bytes] | _Utf8Reader) -> None:
        self._raw = raw
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.offset += len(data)
        return data


@dataclass
class HarSource:
    """A HAR opened for one pass over its entries; `meta` holds version, creator, browser and pages."""

    path: str
    size: int
    streamed: bool
    meta: dict[str, Any] = field(default_factory=dict)
    _entries: Iterator[dict] | None = None

    def entries(self) -> Iterator[dict]:
        if self._entries is None:
            raise RuntimeError("HarSource.entries() can be iterated only once")
        entries, self._entries = self._entries, None
        return entries


def _open_binary(path: str) -> IO[bytes] | _Utf8Reader:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the generator that owns it
    except FileNotFoundError:
        raise InputNotFound(f"{_label(path)} does not exist") from None
    except OSError as exc:
        raise InputError(f"{_label(path)} cannot be read: {exc.strerror or exc}") from None
    head = handle.read(4)
    handle.seek(0)
    for bom, name in _BOMS:
        if head.startswith(bom):
            if name == "utf-8-sig":
                handle.seek(len(bom))
                return handle
            return _Utf8Reader(io.TextIOWrapper(handle, encoding=name))
    name = json.detect_encoding(head)
    if name != "utf-8":  # UTF-16/32 without a BOM
        return _Utf8Reader(io.TextIOWrapper(handle, encoding=name))
    return handle


def _syntax_error(path: str, exc: Exception, offset: int) -> InputFormatError:
    # yajl's message quotes the input after its first line; keep only the fixed description.
    first = (str(exc).splitlines() or ["parse error"])[0].strip()
    return InputFormatError(f"{_label(path)} is not valid JSON: {first} (near byte {offset})")


def _scan_meta(path: str) -> dict[str, Any]:
    """Read log.version/creator/browser/pages up to log.entries without building the entries."""
    import ijson

    meta: dict[str, Any] = {}
    handle = _open_binary(path)
    reader = _CountingReader(handle)
    builder: Any = None
    building: str | None = None
    seen_entries = False
    top_keys: list[str] = []
    try:
        with handle:
            for prefix, event, value in ijson.parse(reader, use_float=True):
                if building is not None:
                    builder.event(event, value)
                    if prefix == building and event in ("end_map", "end_array"):
                        meta[building.split(".")[1]] = builder.value
                        building = None
                    continue
                if prefix == "" and event == "map_key":
                    top_keys.append(value)
                elif prefix == "log.entries" and event == "start_array":
                    seen_entries = True
                    break
                elif prefix == "log.version" and event == "string":
                    meta["version"] = value
                elif prefix in ("log.creator", "log.browser", "log.pages") and event in ("start_map", "start_array"):
                    builder = ijson.ObjectBuilder()
                    builder.event(event, value)
                    building = prefix
    except ijson.JSONError as exc:
        raise _syntax_error(path, exc, reader.offset) from None
    if not seen_entries:
        if "request" in top_keys and "response" in top_keys:
            raise InputFormatError(f"{_label(path)} is a single HAR entry, not a HAR log (no log.entries)")
        raise InputFormatError(f"{_label(path)} is JSON but not a HAR: no log.entries")
    return meta


def _stream(path: str) -> Iterator[dict]:
    import ijson

    handle = _open_binary(path)
    reader = _CountingReader(handle)
    try:
        with handle:
            for entry in ijson.items(reader, "log.entries.item", use_float=True):
                if isinstance(entry, dict):
                    yield entry
    except ijson.JSONError as exc:
        raise _syntax_error(path, exc, reader.offset) from None


def open_har(path: str, *, stream_threshold: int | None = None) -> HarSource:
    """Open a HAR for analysis: small files are loaded whole, big ones streamed.

    Structure errors (not JSON at the start, no log.entries, a bare entry) raise here; a syntax error
    further into a streamed file is raised by the entries iterator, after the entries before it.
    """
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise InputNotFound(f"{_label(path)} does not exist") from None
    except OSError as exc:
        raise InputError(f"{_label(path)} cannot be read: {exc.strerror or exc}") from None
    if os.path.isdir(path):
        raise InputError(f"{_label(path)} is a directory, not a file")
    if size <= (STREAM_THRESHOLD if stream_threshold is None else stream_threshold):
        har = load_har(path)
        log = har["log"]
        meta = {k: log[k] for k in ("version", "creator", "browser", "pages") if k in log}
        return HarSource(path, size, False, meta, iter_entries(har))
    meta = _scan_meta(path)
    return HarSource(path, size, True, meta, _stream(path))


# ----------------------------------------------------------------------------------- entry access


def _as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def request_of(entry: dict) -> dict:
    return _as_dict(entry.get("request"))


def response_of(entry: dict) -> dict:
    return _as_dict(entry.get("response"))


def _pairs(items: Any) -> Iterator[tuple[str, str]]:
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and item.get("name") is not None:
            value = item.get("value")
            yield str(item["name"]), "" if value is None else str(value)


def headers(part: dict, name: str) -> list[str]:
    """All values of one header (request or response part), by case-insensitive name."""
    wanted = name.lower()
    return [v for k, v in _pairs(part.get("headers")) if k.lower() == wanted]


def header(part: dict, name: str) -> str | None:
    """The first value of a header, or None."""
    values = headers(part, name)
    return values[0] if values else None


def header_map(part: dict) -> dict[str, str]:
    """Lower-case name -> first value (HTTP/2 exports already use lower case)."""
    out: dict[str, str] = {}
    for k, v in _pairs(part.get("headers")):
        out.setdefault(k.lower(), v)
    return out


def status_of(entry: dict) -> int:
    try:
        status = int(response_of(entry).get("status") or 0)
    except (TypeError, ValueError, OverflowError):  # junk, NaN, Infinity
        return 0
    # HTTP status codes have three digits; anything else is as good as no response.
    return status if 100 <= status <= 999 else 0


def query_params(request: dict) -> list[tuple[str, str]]:
    """queryString when the exporter filled it, else parsed from the URL."""
    pairs = list(_pairs(request.get("queryString")))
    if pairs:
        return pairs
    url = request.get("url")
    if not isinstance(url, str):
        return []
    try:
        return parse_qsl(urlsplit(url).query, keep_blank_values=True)
    except ValueError:  # "http://[::1?..." is not a URL
        return []


def fragment_params(url: str) -> list[tuple[str, str]]:
    """key=value pairs of a URL fragment (implicit/hybrid OAuth responses put tokens and errors there)."""
    try:
        fragment = urlsplit(url).fragment
    except ValueError:
        return []
    return parse_qsl(fragment, keep_blank_values=True) if "=" in fragment else []


def form_params(request: dict) -> list[tuple[str, str]]:
    """Form fields of a POST: postData.params when present, else an urlencoded postData.text."""
    post = _as_dict(request.get("postData"))
    pairs = list(_pairs(post.get("params")))
    if pairs:
        return pairs
    text = post.get("text")
    mime = str(post.get("mimeType") or header(request, "content-type") or "").lower()
    if isinstance(text, str) and text and ("urlencoded" in mime or (not mime and "=" in text and "{" not in text)):
        return parse_qsl(text, keep_blank_values=True)
    return []


def _decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """Some exporters store the still-compressed body; undo gzip/deflate only when it really is."""
    if "gzip" in encoding and data[:2] == b"\x1f\x8b":
        return inflate(data, GZIP_OR_ZLIB, limit).data  # cut at the limit, as stored bodies are
    if "deflate" in encoding:
        for wbits in (ZLIB, RAW_DEFLATE):
            try:
                return inflate(data, wbits, limit).data
            except zlib.error:
                continue
    return data


def response_bytes(entry: dict, limit: int | None = None) -> bytes | None:
    """The response body as bytes (base64 decoded, decompressed if stored compressed), or None.

    Corrupt base64 or a body labelled gzip that is not gzip gives the bytes as stored, never an error.
    """
    content = _as_dict(response_of(entry).get("content"))
    text = content.get("text")
    if not isinstance(text, str) or not text:
        return None
    if str(content.get("encoding") or "").lower() == "base64":
        try:
            data = base64.b64decode(text[: limit * 2] if limit else text, validate=False)
        except (binascii.Error, ValueError):
            return None
        encoding = (header(response_of(entry), "content-encoding") or "").lower()
        try:
            data = _decompress(data, encoding, limit or MAX_INFLATED_BODY)
        except zlib.error:
            pass
    else:
        data = text.encode("utf-8", "surrogatepass")
    return data[:limit] if limit else data


def response_text(entry: dict, limit: int | None = None) -> str | None:
    """The response body as text (see response_bytes), decoded with the charset, errors replaced."""
    data = response_bytes(entry, limit)
    if data is None:
        return None
    content_type = header(response_of(entry), "content-type") or str(
        _as_dict(response_of(entry).get("content")).get("mimeType") or "")
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip("\"' ")
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def mime_type(entry: dict) -> str:
    content = _as_dict(response_of(entry).get("content"))
    value = content.get("mimeType") or header(response_of(entry), "content-type") or ""
    return str(value).split(";")[0].strip().lower()


# ---------------------------------------------------------------- times and timings


def parse_har_time(value: Any) -> _dt.datetime | None:
    """startedDateTime as an aware datetime, or None when it is missing or not a time."""
    from diagkit.context import parse_time

    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        pass
    # Some exporters write more than 6 fractional digits or a space separator.
    text = value.strip().replace(" ", "T", 1)
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return parse_time(text)
    except ValueError:
        return None


_MAX_TIMING_MS = 1e10  # about 115 days; nothing a browser records takes longer


def number(value: Any) -> float | None:
    """A timing value, or None for -1 / missing / junk (HAR uses -1 for "does not apply")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # NaN, Infinity and absurd values (crafted or corrupt exports) would overflow date arithmetic.
    return float(value) if 0 <= value <= _MAX_TIMING_MS else None


def phases(timings: Any) -> dict[str, float]:
    """Exclusive timing phases in ms; ssl is taken out of connect, which already includes it (HAR 1.2)."""
    if not isinstance(timings, dict):
        return {}
    out = {name: v for name in ("blocked", "dns", "connect", "ssl", "send", "wait", "receive")
           if (v := number(timings.get(name))) is not None}
    if "ssl" in out and "connect" in out:
        # mitmproxy reports ssl apart from connect; only subtract when connect really contains it.
        if out["connect"] >= out["ssl"]:
            out["connect"] -= out["ssl"]
    return out
