"""A leak checker independent of the redactor: every readable form of an output, searched for planted values.

Forms: raw and case-folded, percent-decoded, HTML-unescaped, JSON-unescaped, every base64/base64url run
decoded (and inflated when it is DEFLATE or gzip), every JWT/JWE segment decoded, the bytes of a hex dump's
rows and of a JSON array of hex strings (inflated when gzip), recursively (bounded);
digits of phone and card numbers are also looked for in runs of digits and separators.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import urllib.parse
import zlib

_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_B64_WRAPPED = re.compile(r"(?:[A-Za-z0-9+/]{16,}\r?\n)+[A-Za-z0-9+/]*={0,2}")  # PEM/MIME-style lines
_DIGIT_RUN = re.compile(r"[0-9][0-9 ()+.\-]{5,}[0-9]")
_HEX_DUMP_ROW = re.compile(r"^[0-9a-fA-F]{4,8}: ((?:[0-9a-fA-F]{2} ){1,16})", re.M)  # curl --trace, xxd-like
_JSON_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}|\\[\\/\"bfnrt]")
_HEX_CHUNKS = re.compile(r'\[(?:\s*"[0-9a-f]+",?)+\s*\]')  # Polly.JS: a body's bytes as a JSON array of hex strings


def _json_unescape(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        try:
            return json.loads(f'"{m.group(0)}"')
        except ValueError:
            return m.group(0)
    return _JSON_ESCAPE.sub(one, text)


def _decode_b64(run: str) -> str | None:
    data = run.replace("-", "+").replace("_", "/")
    data += "=" * (-len(data.rstrip("=")) % 4)
    try:
        raw = base64.b64decode(data.rstrip("=") + "=" * (-len(data.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        return None
    for inflate in (lambda b: zlib.decompress(b, -15), lambda b: zlib.decompress(b, 47)):
        try:
            raw = inflate(raw)
            break
        except zlib.error:
            pass
    text = raw.decode("utf-8", "replace")
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return text if printable >= 0.3 * max(len(text), 1) or len(text) < 64 else text


def forms(text: str, depth: int = 0) -> list[str]:
    """Every readable form of `text` (and of what it decodes to), depth-bounded."""
    out = [text, text.casefold()]
    steps = [urllib.parse.unquote_plus(text), html.unescape(text), _json_unescape(text)]
    steps.append(html.unescape(urllib.parse.unquote(_json_unescape(text))))
    out.extend(s for s in steps if s != text)
    if depth < 3:
        decoded = []
        dumped = "".join(_HEX_DUMP_ROW.findall(text))  # the bytes a hex dump spells, rows joined
        if dumped:
            decoded.append(bytes.fromhex(dumped).decode("latin-1"))
        for chunks in _HEX_CHUNKS.findall(steps[-1]):  # the chunks joined: a value may be cut between two
            spelled = "".join(re.findall(r"[0-9a-f]+", chunks))
            if len(spelled) % 2 == 0:
                raw = bytes.fromhex(spelled)
                try:
                    raw = zlib.decompress(raw, 47)  # gzip or zlib
                except zlib.error:
                    pass
                decoded.append(raw.decode("utf-8", "replace"))
        for source in {text, steps[-1]}:
            for block in _B64_WRAPPED.findall(source):  # a value may span two lines: the lines joined
                d = _decode_b64(re.sub(r"\s", "", block))
                if d:
                    decoded.append(d)
            for run in _B64_RUN.findall(source):
                for part in run.split(".") if "." in run else [run]:
                    d = _decode_b64(part)
                    if d:
                        decoded.append(d)
            for token in re.findall(r"[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){1,4}", source):
                for part in token.split("."):
                    d = _decode_b64(part) if len(part) >= 8 else None
                    if d:
                        decoded.append(d)
        for d in decoded:
            out.extend(forms(d, depth + 1))
    return out


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def leaks(output: str, secrets: list[str]) -> list[str]:
    """Planted values readable in some form of the output."""
    all_forms = forms(output)
    folded = [f.casefold() for f in all_forms]
    runs = {_digits(r) for f in all_forms for r in _DIGIT_RUN.findall(f)}
    found = []
    for secret in secrets:
        s = secret.casefold()
        hit = any(s in f for f in folded)
        digits = _digits(secret)
        if not hit and len(digits) >= 9 and len(digits) >= len(secret.replace(" ", "")) - 4:
            hit = any(digits in r for r in runs)
        if hit:
            found.append(secret)
    return found


def lost(output: str, keep: list[str]) -> list[str]:
    """Values an engineer needs that no form of the output holds any more."""
    all_forms = forms(output)
    return [k for k in keep if not any(k in f for f in all_forms)]
