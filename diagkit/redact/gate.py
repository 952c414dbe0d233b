"""The leak gate: the redacted output, in every decoded form, scanned again with the rule table.

It reads rules.VALUE_RULES (those marked `gate`) and the run's terms, so it can never disagree with
what the redactor looks for. Forms: as written, percent-decoded, HTML-unescaped, and each base64 run
and JWT segment decoded; a text that is wholly base64 of readable text, and a JWT, are read as what they
spell rather than as their letters, as the redactor reads them. Pseudonyms and placeholders are not
looked into, nor what the redactor keeps by its shape (rules.KEPT_SHAPE). Anything found means the
redactor missed an encoding: the caller writes nothing and names the place (LeakDetected).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import urllib.parse
from collections.abc import Iterable, Iterator

from diagkit.errors import LeakDetected
from diagkit.redact import decode, rules
from diagkit.redact.pseudonym import PSEUDONYM_RE, PSEUDONYM_URL_RE

GATE_RULES = tuple(rule for rule in rules.VALUE_RULES if rule.gate)
_SCANNER = rules.Table(GATE_RULES)
_REALM = re.compile(r'realm="[^"]*"')
_RUN = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")


def forms(text: str) -> Iterator[str]:
    """`text` and each different decoded form of it (a decoding that changes nothing is not scanned twice).
    A text that is wholly base64 of readable text (a HAR body, a cookie holding JSON) is scanned as the
    text it spells only: its letters as written are an encoding, where a rule could match only by chance
    (random bytes spell UTF-8 text without control characters with odds far below one in a million)."""
    if len(text) < 24 and "%" not in text and "&" not in text:
        yield text
        return
    if _RUN.fullmatch(text) and (spelled := _spelled(text)) is not None:
        yield spelled
        return
    # a JWT is read as its header and claims (its segments are base64 runs), not as its letters; an `x` holds
    # its place, so that what a rule finds around a value (`https://user:…@`) is still found
    yield decode.JWT.sub("x", text) if "eyJ" in text else text
    if "%" in text and (unquoted := urllib.parse.unquote(text)) != text:
        yield unquoted
    if "&" in text and (unescaped := html.unescape(text)) != text:  # `&` mostly joins query parameters
        yield unescaped
    for run in _RUN.findall(text):  # (a run holds no `.`: a JWT's segments are runs of their own)
        spelled = _spelled(run)
        if spelled is not None:
            yield spelled


def _spelled(segment: str) -> str | None:
    """The readable text a base64 or base64url segment decodes to (padded or not), or None."""
    try:
        raw = base64.urlsafe_b64decode(segment.replace("+", "-").replace("/", "_").rstrip("=")
                                       + "=" * (-len(segment.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        return None
    readable = decode.readable(raw)
    return readable[0] if readable is not None else None


def first_leak(text: str, terms: re.Pattern[str] | None = None) -> str | None:
    """The id of the first rule that still matches some form of `text`, or None."""
    if rules.KEPT_SHAPE.fullmatch(text):
        return None  # a timestamp, a short number, a hex id: kept by its shape, as the redactor keeps it
    if "<" in text:  # every pseudonym starts with one
        text = PSEUDONYM_RE.sub(" ", text)
    if "%3" in text:
        text = PSEUDONYM_URL_RE.sub(" ", text)
    if "realm" in text:  # a Digest realm ("api@example.com") is kept on purpose (decide.Redaction.authorization)
        text = _REALM.sub(" ", text)
    if "@" in text:  # a mail's ids, kept on purpose (scan.find)
        text = rules.MAIL_ID.sub(" ", text)
    for form in forms(text):
        form = PSEUDONYM_RE.sub(" ", form) if form is not text and "<" in form else form  # `text`'s are gone
        for rule, _, _ in _SCANNER.hits(form):
            return rule.id
        if terms is not None and terms.search(form):
            return "term"
    return None


def check(strings: Iterable[tuple[str, str]], name: str, terms: re.Pattern[str] | None = None,
          lines: bool = False, tree: object = None) -> None:
    """lines: each string is a text whose line is named when a leak is found in it; tree: the strings
    are that tree's (their place is worked out only when one leaks)."""
    seen: set[str] = set()
    for where, text in strings:
        if text in seen:
            continue
        seen.add(text)
        rule = first_leak(text, terms)
        if rule is not None and lines:
            where = next((f"line {i + 1}" for i, line in enumerate(text.split("\n")) if first_leak(line, terms)), "/")
        if rule is not None and tree is not None:
            where = next(place for place, leaf in leaves(tree) if leaf == text)
        if rule is not None:
            raise LeakDetected(f"'{name}': a value matching '{rule}' is still present at {where or '/'} after "
                               f"redaction and cannot be redacted there; no output was written",
                               hint="redact that field by hand or report the format to the diagkit maintainers")


def strings(node: object) -> Iterator[tuple[str, str]]:
    """("", string) for every distinct string of a JSON-like tree, in document order, without building its place."""
    found: dict[str, None] = {}
    _collect(node, found)
    return (("", text) for text in found)


def _collect(node: object, found: dict[str, None]) -> None:
    if isinstance(node, str):
        found[node] = None
    elif isinstance(node, dict):
        for value in node.values():
            _collect(value, found)
    elif isinstance(node, list):
        for value in node:
            _collect(value, found)


def leaves(node: object, where: str = "") -> Iterator[tuple[str, str]]:
    """(location, string) for every string of a JSON-like tree."""
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from leaves(value, f"{where}[{i}]")
