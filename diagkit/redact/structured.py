"""The structural pass: redact by meaning inside HAR, JSON, YAML, XML (SAML), URLs, headers and JWTs.

Every function returns the redacted value and appends the rule names it applied to `found`, so the
walker can record them against the JSON path / XML path / line where they happened. A value that
needs no change is returned as the very same string, so unchanged bodies are never re-serialised.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import json
import re
import zlib
from typing import Any
from urllib.parse import quote, unquote, unquote_plus, urlsplit

from diagkit.errors import InputFormatError, RedactionError
from diagkit.redact import compressed
from diagkit.redact import secrets as S
from diagkit.redact.pseudonym import PSEUDONYM_RE, PSEUDONYM_URL_RE, Pseudonymizer, is_pseudonym
from diagkit.redact.report import RedactionReport
from diagkit.redact.text import TextScanner

Loc = tuple[Any, ...] | None  # linked path: (parent, part); built into a string only when recorded

_B64_RE = re.compile(r"[A-Za-z0-9+/]{20,}={0,2}|[A-Za-z0-9_-]{20,}={0,2}")
_SAML_B64_RE = re.compile(r"[A-Za-z0-9+/=\s]+|[A-Za-z0-9_=-]+")
_FORM_RE = re.compile(r"[\w.\-~%+\[\]]+=[^\s&]*(?:&[\w.\-~%+\[\]]+=?[^\s&]*)*")
_SET_COOKIE_RE = re.compile(r"^(\s*[^=;\s]+\s*=\s*)([^;]*)")
_COOKIE_PAIR_RE = re.compile(r"(^|;)(\s*[^=;]+=)([^;]*)")
_PERSONAL_KINDS = {"EMAIL", "PHONE", "PERSON", "USER", "ADDRESS", "DATE", "ID"}
_TEXTUAL_MIME = re.compile(r"text/|json|xml|javascript|ecmascript|x-www-form-urlencoded|graphql|html|csv|yaml|"
                           r"event-stream|multipart/form-data", re.I)
# JWT claims that identify a session or request rather than a person: opaque, but pseudonymised
_JWT_SECRET_CLAIMS = frozenset({"nonce", "sid", "at_hash", "c_hash", "s_hash", "jti", "uti", "rh", "aio",
                                "sessionid", "session_state"})
SIG_KIND = "SIG"
_NUMBERS = frozenset({int, float})
_BODY_KEYS = frozenset({"content", "postData"})
_CHILD_CTX = {"headers": "headers", "trailers": "headers", "cookies": "cookies", "queryString": "params",
              "params": "params"}
PERSONAL_XML_ATTRS = frozenset({"Address"})
SECRET_XML_ATTRS = frozenset({"SessionIndex"})


class LineFound(list):  # type: ignore[type-arg]
    """A `found` list for a whole text at once: also remembers the line (0-based) of every rule."""

    tracks = True  # whether `where` is kept

    def __init__(self, index: LineIndex | None = None) -> None:
        """`index`: a LineIndex of the text, if the caller made one already (used if it is the text redacted)."""
        super().__init__()
        self.index = index
        self.where: list[int] = []
        self.active = False
        self._text = ""
        self._newlines: list[int] | None = None
        self._line = 0

    def reset(self, text: str) -> None:
        self._text, self._newlines = text, None

    def at(self, pos: int) -> None:
        if self._newlines is None:
            self._newlines = [m.start() for m in _NEWLINE_RE.finditer(self._text)]
        self._line = bisect.bisect_left(self._newlines, pos)

    def line(self, index: int) -> None:
        self._line = index

    @property
    def current(self) -> int:
        """The line the next rule is recorded against."""
        return self._line

    def append(self, rule: str) -> None:
        super().append(rule)
        self.where.append(self._line)

    def extend(self, rules: Any) -> None:
        for rule in rules:
            self.append(rule)


class LineCounts(LineFound):
    """A LineFound for a run without locations (no --report): the rules only, appended by list's own methods
    (a dense log hands out a pseudonym on every line, and each append was a Python call); `where` stays empty.
    Lines are still told apart where a rule needs to know which changed (the text pass's own bookkeeping)."""

    tracks = False
    append = list.append  # type: ignore[assignment]
    extend = list.extend  # type: ignore[assignment]


_NEWLINE_RE = re.compile("\n")


@functools.lru_cache(maxsize=512)
def literal_pattern(needle: str) -> re.Pattern[str]:
    """A needle as a compiled pattern: sre's search for a literal skips along a long text about twice as fast
    as str.find for a needle that is not there (most are not), for three characters or more."""
    return re.compile(re.escape(needle))


class LineIndex:
    """Which lines of a long text hold one of some substrings, found by str.find over the whole text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [m.start() for m in _NEWLINE_RE.finditer(text)]
        self._lower: str | None = None
        # (needle, lower) -> its lines: the rules share needles ("token", "secret"...), and a needle that is not
        # in the text costs a whole pass of str.find to say so
        self._found: dict[tuple[str, bool], set[int]] = {}

    def lines(self, needles: tuple[str, ...], lower: bool) -> set[int] | None:
        """Line numbers (0-based) holding one of the needles, and perhaps a few more: a needle that holds one
        looked for already ("apikey", "key") is given that one's lines instead of a pass of its own (callers
        test each line again). None when they cannot be told (lower-casing changed the length)."""
        hay = self.text
        if lower:
            if self._lower is None:
                low = hay.lower()
                self._lower = low if len(low) == len(hay) else ""
            if not self._lower:
                return None
            hay = self._lower
        newlines, out = self.newlines, set()
        for needle in needles:
            known = self._found.get((needle, lower))
            if known is None:
                known = self._within(needle, lower)
            if known is None:
                known = self._found[needle, lower] = set()
                if len(needle) > 2:
                    # sre's search for a literal skips along the text about twice as fast as str.find for a
                    # needle that is not there (most are not); one character is a memchr for str.find
                    search = literal_pattern(needle).search
                    m = search(hay)
                    while m is not None:
                        line = bisect.bisect_left(newlines, m.start())
                        known.add(line)
                        # one hit a line is enough: go on from the next line
                        m = search(hay, newlines[line] + 1) if line < len(newlines) else None
                else:
                    at = hay.find(needle)
                    while at != -1:
                        line = bisect.bisect_left(newlines, at)
                        known.add(line)
                        at = hay.find(needle, newlines[line] + 1) if line < len(newlines) else -1
            out |= known
        return out

    def _within(self, needle: str, lower: bool) -> set[int] | None:
        """The lines of the fewest-lined needle found already that `needle` holds (every line holding `needle`
        is among them), or None."""
        best = None
        for (found, case), lines in self._found.items():
            if case == lower and found in needle and (best is None or len(lines) < len(best)):
                best = lines
        return best

    def lines_matching(self, hint: re.Pattern[str]) -> set[int]:
        """Line numbers (0-based) holding a match of `hint`, which never spans lines. A hint that starts with a
        literal character is found at C speed over the whole text; one line at a time costs a Python call a
        line, and in a log every line has a '.' and a ':'."""
        text, newlines, out = self.text, self.newlines, set()
        m = hint.search(text)
        while m is not None:
            line = bisect.bisect_left(newlines, m.start())
            out.add(line)
            if line >= len(newlines):
                break
            m = hint.search(text, newlines[line] + 1)
        return out


_IPV4_HINT_RE = re.compile(r"\.\d{1,3}\.\d")
# what every S.IPV6_RE match holds: "::", or the six inner groups of eight with their colons
_IPV6_HINT_RE = re.compile(r"::|:(?:[0-9a-fA-F]{1,4}:){6}")


# JSON key -> (kept by name, pseudonym kind by name): one dict look-up a key in the walk's inner loop
_KEYS: dict[str, tuple[bool, str | None]] = {}


def _key_info(key: str) -> tuple[bool, str | None]:
    info = (S.is_keep_key(key), S.key_kind(key))
    if len(_KEYS) < 65536:  # keys are few in practice; a generated-key document must not grow this forever
        _KEYS[key] = info
    return info


@functools.lru_cache(maxsize=4096)
def _person_like(keys: tuple[str, ...]) -> bool:
    """A dict with a "name" beside personal keys (email, phone...) names a person: its "name" is personal."""
    return any(S.key_kind(k) in _PERSONAL_KINDS for k in keys if k != "name")


def loc_str(loc: Loc) -> str:
    parts: list[Any] = []
    while loc is not None:
        loc, part = loc
        parts.append(part)
    out = ""
    for part in reversed(parts):
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith((" ", ":", "/")):
            out += part
        else:
            out += ("." if out else "") + str(part)
    return out or "$"


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_signature_marker(sig: str) -> bool:
    """True when a JWT signature is diagkit's replacement (base64url of a pseudonym)."""
    try:
        return is_pseudonym(b64url_decode(sig).decode("ascii"))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return False


def _is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip in ("0.0.0.0", "::1", "::")


class Scrubber:
    """The structural and text redaction rules, with one pseudonymizer and one cache per run."""

    def __init__(self, pseudo: Pseudonymizer, scanner: TextScanner, report: RedactionReport) -> None:
        self.pseudo = pseudo
        self.scanner = scanner
        self.report = report
        self.name = "<input>"  # the file, for errors raised from inside the walk
        # (string, prose) -> (output, rules, (pseudonym, value) pairs handed out while making it)
        self._cache: dict[tuple[str, bool], tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]] = {}

    # ------------------------------------------------------------ recording

    def record(self, loc: Loc, found: list[str]) -> None:
        # the path stays a linked tuple: the report builds its string only if a report is written
        add = self.report.add
        for rule in found:
            add(rule, loc if loc is not None else "$")

    def secret(self, kind: str, value: str, rule: str, found: list[str]) -> str:
        """A whole value replaced by a pseudonym (or kept in shape when it is a JWT or SAML message)."""
        if not value or is_pseudonym(value) or not value.strip():
            return value
        if S.JWT_RE.fullmatch(value.strip()):
            return self.jwt(value.strip(), found)
        if S.EMAIL_RE.fullmatch(value):
            kind = "EMAIL"
        found.append(rule)
        return self.pseudo(kind, value)

    # ------------------------------------------------------------ strings

    def string(self, s: str, found: list[str], prose: bool = False) -> str:
        """Any string: find what it is (JWT, URL, JSON, form, base64, SAML, text) and redact by that."""
        if len(s) < 3:
            return s
        key = (s, prose)
        hit = self._cache.get(key)
        journal = self.pseudo.journal
        if hit is not None:
            found.extend(hit[1])
            if journal is not None:  # the pseudonyms this output holds are handed out again
                journal.extend(hit[2])
            return hit[0]
        mine: list[str] = []
        start = len(journal) if journal is not None else 0
        out = self._string(s, mine, prose)
        if len(s) <= 4096:
            self._cache[key] = (out, tuple(mine), tuple(journal[start:]) if journal is not None else ())
        found.extend(mine)
        return out

    def _string(self, s: str, found: list[str], prose: bool) -> str:
        stripped = s.strip()
        if _B64_RE.fullmatch(stripped) and not S.JWT_RE.fullmatch(stripped):
            decoded = self._b64(stripped, found)
            if decoded is not None:
                return decoded
        if not S.could_contain(s) and not self.scanner.could_contain(s, prose):
            return s
        if S.JWT_RE.fullmatch(stripped):
            return s.replace(stripped, self.jwt(stripped, found))
        if S.URL_RE.fullmatch(stripped):
            return s.replace(stripped, self.url(stripped, found))
        if stripped[:1] in "{[" and stripped[-1:] in "}]":
            try:
                obj = json.loads(stripped)
            except ValueError:
                obj = None
            if isinstance(obj, dict | list):
                return self.json_text(s, obj, found)
        if stripped.startswith("<") and "saml" in stripped[:400].lower():
            try:
                return self.xml(s.encode("utf-8"), found).decode("utf-8")
            except (InputFormatError, UnicodeDecodeError):
                pass
        if " " not in stripped and "=" in stripped and _FORM_RE.fullmatch(stripped):
            return s.replace(stripped, self.query(stripped, found))
        return self.text(s, found, prose)

    def _b64(self, value: str, found: list[str]) -> str | None:
        """Base64 text holding something readable: decode, redact, re-encode in the same alphabet."""
        urlsafe = "-" in value or "_" in value
        try:
            raw = (base64.urlsafe_b64decode if urlsafe else base64.b64decode)(value + "=" * (-len(value) % 4))
        except (ValueError, binascii.Error):
            return None
        if raw[:1] != b"<" and raw[:2] != b"{\"":
            try:
                inflated = compressed.inflate_raw(raw)
            except zlib.error:
                inflated = None
            except compressed.TooLarge:  # a DEFLATE bomb: nothing in it can be looked at, so none of it stays
                return self.secret("TOKEN", value, "deflate_oversize", found)
            if inflated and inflated.lstrip()[:1] == b"<":
                return self.saml_param(value, found)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not text.isprintable() and not all(c.isprintable() or c in "\r\n\t" for c in text):
            return None
        if text.lstrip().startswith("<") and "saml" in text[:400].lower():
            return self.saml_param(value, found)
        inner: list[str] = []
        red = self.string(text, inner)
        if red == text:
            return value
        found.extend(inner)
        enc = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(red.encode("utf-8")).decode("ascii")
        return enc if value.endswith("=") else enc.rstrip("=")

    def text(self, s: str, found: list[str], prose: bool = False, urls: bool = True) -> str:
        """Free text: PEM keys, JWTs, URLs, vendor tokens, emails, IPs, then presidio's recognizers.

        With a LineFound (a whole text file at once), every rule is also recorded against its line."""
        lines = found if isinstance(found, LineFound) and not found.active else None
        if lines is not None:
            lines.active = True
        try:
            return self._text(s, found, prose, urls, lines)
        finally:
            if lines is not None:
                lines.active = False

    def _text(self, s: str, found: list[str], prose: bool, urls: bool, lines: LineFound | None) -> str:
        if "-----BEGIN" in s:
            if lines is not None:
                lines.reset(s)
            s = S.PEM_PRIVATE_RE.sub(lambda m: (lines.at(m.start()) if lines is not None else None) or self._hit(
                "PRIVATE_KEY", m.group(0), "pem_private_key", found), s)
        # Line-local patterns run line by line, and only on lines holding what a match needs. In a long text
        # those lines are found with str.find over the whole text (C speed) rather than tested one by one for
        # every pattern; a line an earlier pattern changed is always tested again, and once many have changed
        # the index is made again from the text as it now is.
        parts = s.split("\n") if lines is not None else [s]
        given = lines.index if lines is not None else None
        index = given if given is not None and given.text == s else LineIndex(s) if len(parts) > 32 else None
        dirty: set[int] = set()

        def todo(needles: tuple[str, ...], lower: bool, hint: re.Pattern[str] | None = None) -> Any:
            nonlocal index, dirty
            if index is None:
                return range(len(parts))
            if len(dirty) > 64 + len(parts) // 16:
                # Pseudonyms are masked out: "<TOKEN:…>" would otherwise hold the needle "token" on every line
                # an earlier rule changed. No rule can match on a needle inside a pseudonym: the name before a
                # ':' or '=' never starts at a '<', and no kind is followed by what a token pattern needs.
                index, dirty = LineIndex(PSEUDONYM_RE.sub("<>", "\n".join(parts))), set()
            cand = index.lines_matching(hint) if hint is not None else index.lines(needles, lower)
            return range(len(parts)) if cand is None else sorted(cand | dirty)

        def sub(pattern: re.Pattern[str], fn: Any, needles: tuple[str, ...], hint: re.Pattern[str] | None = None,
                scan: Any = None) -> None:
            """`pattern` on the lines holding one of its needles (compared as S.hints_in says) and `hint`."""
            if scan is not None and index is not None and lines is not None:
                whole(scan, fn)
                return
            for i in todo(needles, S.case_insensitive(pattern), hint):
                part = parts[i]
                if S.hints_in(pattern, part, needles) and (hint is None or hint.search(part)):
                    if lines is not None:
                        lines.line(i)
                    new = pattern.sub(fn, part)
                    if new != part:
                        parts[i] = new
                        dirty.add(i)

        def whole(scan: Any, fn: Any) -> None:
            """One pass of `scan` (the pattern compiled by the `regex` engine, whose search for a pattern's
            literal part is C speed) over the whole text: for patterns that never span lines and see at most
            one character around a match, the very matches a pass line by line finds."""
            assert lines is not None
            text = "\n".join(parts)
            lines.reset(text)
            changed: list[int] = []

            def call(m: Any) -> str:
                lines.at(m.start())
                new = fn(m)
                if new != m.group(0):
                    changed.append(lines.current)
                return new

            out = scan.sub(call, text)
            if changed:
                parts[:] = out.split("\n")
                dirty.update(changed)

        sub(S.JWT_RE, lambda m: self.jwt(m.group(0), found), ("eyJ",))
        if urls:
            sub(S.URL_RE, lambda m: self.url(m.group(0), found), ("://",))
        # header-like pairs anywhere in a line, by the same rules as real headers (scheme kept, every cookie)
        sub(S.AUTH_TEXT_RE, lambda m: self._auth_in_text(m, found), ("authorization",))
        sub(S.COOKIE_TEXT_RE, lambda m: self._cookie_in_text(m, found), ("cookie", "-b "))
        for i in todo(S.PAIR_HINTS, True):
            part = parts[i]
            if "=" in part or ":" in part:
                probe = part.lower()
                if any(n in probe for n in S.PAIR_HINTS):
                    if lines is not None:
                        lines.line(i)
                    new = self._pairs_in_text(part, found)
                    if new != part:
                        parts[i] = new
                        dirty.add(i)
        for rule, kind, pattern, group in S.TOKEN_PATTERNS:
            sub(pattern, lambda m, r=rule, k=kind, g=group: self._sub_group(m, g, k, r, found), S.TOKEN_HINTS[rule])
        sub(S.EMAIL_RE, lambda m: self._hit("EMAIL", m.group(0), "email", found), ("@",))
        sub(S.IPV4_RE, lambda m: self._ip(m.group(0), found) if S.ipv4_in_context(m) else m.group(0), (".",),
            hint=_IPV4_HINT_RE, scan=S.IPV4_SCAN)
        sub(S.IPV6_RE, lambda m: self._ip(m.group(0), found), (":",), hint=_IPV6_HINT_RE)
        s = "\n".join(parts) if lines is not None else parts[0]
        if (len(s) > 4096 or self.scanner.could_contain(s, prose)) and (spans := self.scanner.scan(s, prose)):
            tracks = lines is not None and lines.tracks
            if tracks:
                lines.reset(s)
            out, last = [], 0
            for start, end, kind, rule in spans:
                value = s[start:end]
                if "<" in value and PSEUDONYM_RE.search(value):  # every pseudonym holds a "<"
                    continue
                if tracks:
                    lines.at(start)
                out.append(s[last:start])
                out.append(self._hit(kind, value, rule, found))
                last = end
            out.append(s[last:])
            s = "".join(out)
        return s

    def _auth_in_text(self, m: re.Match[str], found: list[str]) -> str:
        scheme, cred = m.group("scheme"), m.group("cred")
        if is_pseudonym(cred) or (not scheme and cred.lower() in S.AUTH_SCHEMES):  # "Authorization: Bearer" alone
            return m.group(0)
        new = self.authorization(f"{scheme} {cred}" if scheme else cred, found)
        start = m.start("scheme") if scheme else m.start("cred")
        return m.group(0)[: start - m.start()] + new + m.group(0)[m.end("cred") - m.start():]

    def _cookie_in_text(self, m: re.Match[str], found: list[str]) -> str:
        pairs = m.group("pairs")
        new = self.set_cookie(pairs, found) if m.group("set") else self.cookie_header(pairs, found)
        return m.group(0)[: m.start("pairs") - m.start()] + new

    def _pairs_in_text(self, line: str, found: list[str]) -> str:
        """`name: value` / `name=value` pairs with a secret name, wherever they are in the line.

        Names are found first and values read after them, so a value is never taken for a name's context
        ("a: token=x" still finds token=x)."""
        out: list[str] = []
        last = 0
        for m in S.PAIR_NAME_RE.finditer(line):
            if m.start() < last:
                continue  # inside a value already replaced
            kind = S.pair_kind(m.group("name"))
            if kind is None:
                continue
            v = S.PAIR_VALUE_RE.match(line, m.end())
            if v is None:
                continue
            group = "dq" if v.group("dq") is not None else "sq" if v.group("sq") is not None else "bare"
            value = v.group(group)
            start, end = v.span(group)
            if group == "bare":  # a sentence may close on the value: "(token=abc)." keeps its ")."
                trimmed = value.rstrip(").]}")
                end -= len(value) - len(trimmed)
                value = trimmed
            if not value.strip() or PSEUDONYM_RE.search(value) or PSEUDONYM_URL_RE.search(value):
                continue
            new = self.saml_value(value, found) if kind == S.SAML_KIND else self.secret(kind, value, "secret_pair",
                                                                                        found)
            out.append(line[last:start])
            out.append(new)
            last = end
        if not out:
            return line
        out.append(line[last:])
        return "".join(out)

    def _hit(self, kind: str, value: str, rule: str, found: list[str]) -> str:
        found.append(rule)
        return self.pseudo(kind, value)

    def _sub_group(self, m: re.Match[str], group: int, kind: str, rule: str, found: list[str]) -> str:
        value = m.group(group)
        if is_pseudonym(value) or value.startswith("<") or value.startswith("%3C") or S.JWT_RE.match(value):
            return m.group(0)
        start, end = m.span(group)
        base = m.start(0)
        whole = m.group(0)
        return whole[: start - base] + self._hit(kind, value, rule, found) + whole[end - base:]

    def _ip(self, ip: str, found: list[str]) -> str:
        if _is_loopback(ip) or is_pseudonym(ip):
            return ip
        return self._hit("IP", ip, "ip_address", found)

    # ------------------------------------------------------------ JWT

    def jwt(self, token: str, found: list[str]) -> str:
        """Keep header and iss/aud/exp/...; pseudonymise personal claims; replace the signature."""
        parts = token.split(".")
        try:
            header = json.loads(b64url_decode(parts[0]))
            payload = json.loads(b64url_decode(parts[1]))
        except (ValueError, UnicodeDecodeError, binascii.Error, IndexError):
            found.append("jwt")
            return self.pseudo("TOKEN", token)
        if not isinstance(header, dict) or not isinstance(payload, dict) or len(parts) != 3:
            found.append("jwt")
            return self.pseudo("TOKEN", token)
        inner: list[str] = []
        new_payload = self._jwt_claims(payload, inner)
        sig = parts[2]
        changed = bool(inner)
        if sig and not jwt_signature_marker(sig):
            sig = b64url_encode(self.pseudo(SIG_KIND, sig).encode("ascii"))
            changed = True
        if not changed:
            return token
        found.append("jwt")
        found.extend(r for r in inner if r != "jwt")
        body = parts[1] if not inner else b64url_encode(
            json.dumps(new_payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        return f"{parts[0]}.{body}.{sig}"

    def _jwt_claims(self, payload: dict[str, Any], found: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for claim, value in payload.items():
            if S.is_keep_key(claim):
                out[claim] = value
            elif claim in _JWT_SECRET_CLAIMS and isinstance(value, str | int):
                out[claim] = self.secret("TOKEN", str(value), "jwt_claim", found)
            elif claim in ("name", "unique_name") and isinstance(value, str):
                out[claim] = self.secret("PERSON" if claim == "name" else "USER", value, "jwt_claim", found)
            else:
                kind = S.key_kind(claim)
                if kind == S.SAML_KIND:
                    out[claim] = self.saml_value(value, found) if isinstance(value, str) else self.value(value, found)
                elif kind and isinstance(value, str | int | float) and not isinstance(value, bool):
                    out[claim] = self.secret(kind, str(value), "jwt_claim", found)
                else:
                    out[claim] = self.value(value, found, forced=kind)
        return out

    def value(self, node: Any, found: list[str], forced: str | None = None) -> Any:
        """A JSON value inside a JWT or another string (no location of its own)."""
        if forced == S.SAML_KIND:
            if isinstance(node, str):
                return self.saml_value(node, found)
            forced = None
        if isinstance(node, dict):
            return {k: self.value(v, found, forced or S.key_kind(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [self.value(v, found, forced) for v in node]
        if isinstance(node, str):
            return self.secret(forced, node, "key", found) if forced else self.string(node, found)
        if forced and isinstance(node, int | float) and not isinstance(node, bool):
            return self.secret(forced, str(node), "key", found)
        return node

    # ------------------------------------------------------------ URLs and forms

    def url(self, u: str, found: list[str]) -> str:
        """Keep scheme, host and path shape; redact userinfo, secret parameters and personal data."""
        try:
            parts = urlsplit(u)
        except ValueError:
            return self.text_no_urls(u, found)
        rest = u
        scheme_sep = u.find("://")
        head = u[: scheme_sep + 3] if scheme_sep > 0 else ""
        rest = u[len(head):]
        end_netloc = len(rest)
        for ch in "/?#":
            i = rest.find(ch)
            if i != -1:
                end_netloc = min(end_netloc, i)
        netloc, rest = rest[:end_netloc], rest[end_netloc:]
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, colon, password = userinfo.partition(":")
            new_user = self._url_value(self.secret("USER", unquote(user), "url_userinfo", found)) if user else ""
            new_pw = self._url_value(self.secret("PASSWORD", unquote(password), "url_userinfo", found)) if password else ""
            netloc = f"{new_user}{colon}{new_pw}@{host}"
        path, frag_sep, fragment = rest.partition("#")
        path, q_sep, query = path.partition("?")
        if parts.path and (S.could_contain(unquote(path)) or self.scanner.could_contain(unquote(path), False)):
            path = "/".join(self._path_segment(seg, found) for seg in path.split("/"))
        if query:
            query = self.query(query, found)
        if fragment:
            if "=" in fragment and " " not in fragment:
                fragment = self.query(fragment, found)
            else:
                dec = unquote(fragment)
                red = self.string(dec, found)
                if red != dec:
                    fragment = self._url_value(red)
        return f"{head}{netloc}{path}{q_sep}{query}{frag_sep}{fragment}"

    def _path_segment(self, seg: str, found: list[str]) -> str:
        dec = unquote(seg)
        red = self.text(dec, found) if "://" not in dec else self.text_no_urls(dec, found)
        return seg if red == dec else self._url_value(red)

    def text_no_urls(self, s: str, found: list[str]) -> str:
        # A URL we cannot split: still catch tokens and personal data, without recursing into URLs.
        return self.text(s, found, urls=False)

    @staticmethod
    def _url_value(value: str) -> str:
        return quote(value, safe="-._~!$'()*,;@/")

    def query(self, q: str, found: list[str]) -> str:
        """`a=1&b=2` (query, fragment or form body): secret names by name, other values by content."""
        out = []
        for part in q.split("&"):
            name, eq, raw = part.partition("=")
            if not eq or not raw:
                out.append(part)
                continue
            dname, dval = unquote_plus(name), unquote_plus(raw)
            new = self.param(dname, dval, found)
            out.append(part if new == dval else f"{name}={self._url_value(new).replace('/', '%2F')}")
        return "&".join(out)

    def param(self, name: str, value: str, found: list[str]) -> str:
        if not value:
            return value
        kind = S.param_kind(name)
        if kind == S.SAML_KIND:
            return self.saml_value(value, found)
        if kind:
            return self.secret(kind, value, "param", found)
        return self.string(value, found)

    # ------------------------------------------------------------ headers and cookies

    def header(self, name: str, value: str, found: list[str]) -> str:
        kind = S.header_kind(name)
        if kind == "keep" or not value:
            return value
        if kind == "auth":
            return self.authorization(value, found)
        if kind == "cookie":
            return self.cookie_header(value, found)
        if kind == "set-cookie":
            return "\n".join(self.set_cookie(line, found) for line in value.split("\n"))
        if kind == "secret":
            return self.secret("TOKEN", value, "header", found)
        return self.string(value, found)

    def authorization(self, value: str, found: list[str]) -> str:
        if is_pseudonym(value.strip()):
            return value
        scheme, space, cred = value.strip().partition(" ")
        if not space:
            return self.secret("TOKEN", value, "authorization", found)
        cred = cred.strip()
        if is_pseudonym(cred):
            return value
        if scheme.lower() == "bearer" and S.JWT_RE.fullmatch(cred):
            new = self.jwt(cred, found)
            if new != cred:
                found.append("authorization")
            return f"{scheme} {new}"
        kind = "CREDENTIALS" if scheme.lower() in ("basic", "digest", "ntlm", "negotiate") else "TOKEN"
        return f"{scheme} {self.secret(kind, cred, 'authorization', found)}"

    def cookie_value(self, value: str, found: list[str]) -> str:
        stripped = value.strip().strip('"')
        if not stripped or is_pseudonym(stripped):
            return value
        found.append("cookie")
        return self.pseudo("COOKIE", stripped)

    def cookie_header(self, value: str, found: list[str]) -> str:
        return _COOKIE_PAIR_RE.sub(lambda m: m.group(1) + m.group(2) + self.cookie_value(m.group(3), found), value)

    def set_cookie(self, line: str, found: list[str]) -> str:
        return _SET_COOKIE_RE.sub(lambda m: m.group(1) + self.cookie_value(m.group(2), found), line, count=1)

    # ------------------------------------------------------------ SAML / XML

    def saml_value(self, value: str, found: list[str]) -> str:
        """A value under a SAMLResponse/SAMLRequest name: a SAML message (base64, deflated or XML) is decoded
        and redacted inside, failing closed to a pseudonym; anything else (a URL, a word, a diagkit analysis)
        follows the normal rules."""
        stripped = value.strip()
        if stripped.startswith("<"):
            try:
                return self.xml(value.encode("utf-8"), found).decode("utf-8")
            except (InputFormatError, UnicodeDecodeError):
                return self.secret("TOKEN", value, "saml", found)
        if len(stripped) >= 16 and _SAML_B64_RE.fullmatch(stripped):
            return self.saml_param(value, found)
        return self.string(value, found)

    def saml_param(self, value: str, found: list[str]) -> str:
        """A SAML message in base64 (optionally deflated, as in the redirect binding): redact and re-encode."""
        compact = "".join(value.split())
        try:
            raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=False)
        except (ValueError, binascii.Error):
            return self.secret("TOKEN", value, "saml", found)
        deflated = False
        if raw.lstrip()[:1] != b"<":
            try:
                raw = compressed.inflate_raw(raw)
                deflated = True
            except (zlib.error, compressed.TooLarge):  # unreadable or a bomb: the message goes as a whole
                return self.secret("TOKEN", value, "saml", found)
        try:
            inner: list[str] = []
            red = self.xml(raw, inner)
        except InputFormatError:
            return self.secret("TOKEN", value, "saml", found)
        if not inner:
            return value
        found.append("saml")
        found.extend(inner)
        if deflated:
            comp = zlib.compressobj(9, zlib.DEFLATED, -15)
            red = comp.compress(red) + comp.flush()
        return base64.b64encode(red).decode("ascii")

    def xml(self, data: bytes, found: list[str], loc: Loc = None, name: str = "XML") -> bytes:
        """Redact an XML document; NameID and attribute values by meaning, the rest as text."""
        from lxml import etree

        head = data[:4096].upper()
        if b"<!DOCTYPE" in head or b"<!ENTITY" in data.upper():
            raise InputFormatError(f"{name}: XML with a DTD or entity declarations is refused")
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True,
                                 remove_blank_text=False)
        try:
            root = etree.fromstring(data, parser)
        except etree.XMLSyntaxError as exc:
            raise InputFormatError(f"{name}: malformed XML (line {exc.position[0]})") from None
        tree = root.getroottree()
        changed = False
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            local = etree.QName(el).localname
            here: list[str] = []
            if el.text and el.text.strip():
                new = self._xml_text(local, el, el.text, here)
                if new != el.text:
                    el.text, changed = new, True
            if el.tail and el.tail.strip():
                new = self.string(el.tail, here, prose=True)
                if new != el.tail:
                    el.tail, changed = new, True
            for attr, val in el.attrib.items():
                aname = etree.QName(attr).localname
                if is_pseudonym(val):
                    new = val
                elif aname in PERSONAL_XML_ATTRS:
                    new = self._ip(val, here) if S.IPV4_RE.fullmatch(val) or ":" in val else self.secret(
                        "ADDRESS", val, "saml_attribute", here)
                elif aname in SECRET_XML_ATTRS:
                    new = self.secret("TOKEN", val, "saml_session", here)
                elif aname in ("ID", "InResponseTo", "Version", "IssueInstant", "NotBefore", "NotOnOrAfter",
                               "Name", "NameFormat", "Format", "Algorithm", "Value", "Method"):
                    new = val
                else:
                    new = self.string(val, here)
                if new != val:
                    el.set(attr, new)
                    changed = True
            if here:
                found.extend(here)
                if loc is not None:
                    self.record((loc, tree.getpath(el)), here)
                    here.clear()
        if not changed:
            return data
        decl = data.lstrip()[:5] == b"<?xml"
        return etree.tostring(tree, xml_declaration=decl, encoding=tree.docinfo.encoding or "UTF-8")

    def _xml_text(self, local: str, el: Any, text: str, found: list[str]) -> str:
        if local in ("NameID", "NameIdentifier"):
            return self.secret("USER", text.strip(), "saml_nameid", found)
        if local == "AttributeValue":
            parent = el.getparent()
            attr_name = (parent.get("FriendlyName") or parent.get("Name") or "") if parent is not None else ""
            kind = S.key_kind(attr_name.rsplit("/", 1)[-1]) or "ATTR"
            return self.secret(kind, text.strip(), "saml_attribute", found)
        if local in ("X509Certificate", "SignatureValue", "DigestValue", "Issuer", "Audience", "StatusCode",
                     "Modulus", "Exponent"):
            return text
        if local in ("SAMLResponse", "SAMLRequest"):
            return self.saml_param(text, found)
        return self.string(text, found, prose=True)

    # ------------------------------------------------------------ JSON / HAR walk

    def json_text(self, s: str, obj: Any, found: list[str]) -> str:
        inner: list[str] = []
        new = self.walk(obj, None, inner, record=False)
        if not inner:
            return s
        found.extend(inner)
        return json.dumps(new, ensure_ascii=False, indent=2 if "\n" in s.strip() else None,
                          separators=None if "\n" in s.strip() else (", " if ", " in s else ",", ": " if ": " in s else ":"))

    def walk(self, node: Any, loc: Loc, found: list[str] | None = None, *, ctx: str | None = None,
             forced: str | None = None, record: bool = True) -> Any:
        """Walk a JSON-like tree; returns the redacted tree. Copy on write: a container with nothing to
        redact is returned as the very same object, so unchanged subtrees cost no memory."""
        sink = found if found is not None else []
        if forced == S.SAML_KIND:
            if isinstance(node, str):
                here: list[str] = []
                res = self.saml_value(node, here)
                self._emit(loc, here, sink, record)
                return res
            forced = None  # containers under a SAML name: their values follow the normal rules
        if isinstance(node, dict):
            return self._walk_dict(node, loc, sink, ctx, forced, record)
        if isinstance(node, list):
            out: list[Any] | None = None
            for i, v in enumerate(node):
                if v is None or v is True or v is False or (v.__class__ in _NUMBERS and not forced):
                    continue
                new = self.walk(v, (loc, i), sink, ctx=ctx, forced=forced, record=record)
                if new is not v:
                    if out is None:
                        out = list(node)
                    out[i] = new
            return node if out is None else out
        if isinstance(node, str):
            here = []
            res = self.secret(forced, node, "key", here) if forced else self.string(node, here)
            if here:
                self._emit(loc, here, sink, record)
            return res
        if forced and isinstance(node, int | float) and not isinstance(node, bool):
            here = []
            res = self.secret(forced, str(node), "key", here)
            self._emit(loc, here, sink, record)
            return res
        return node

    def _emit(self, loc: Loc, here: list[str], sink: list[str], record: bool) -> None:
        if here:
            if record:
                self.record(loc, here)
            sink.extend(here)

    def _walk_dict(self, node: dict[str, Any], loc: Loc, sink: list[str], ctx: str | None, forced: str | None,
                   record: bool) -> dict[str, Any]:
        if ctx and "name" in node and "value" in node and isinstance(node.get("value"), str):
            here: list[str] = []
            name, value = str(node["name"]), node["value"]
            if ctx == "headers":
                new_value = self.header(name, value, here)
            elif ctx == "cookies":
                new_value = self.cookie_value(value, here) if value else value
            else:
                new_value = self.param(name, value, here)
            self._emit((loc, "value"), here, sink, record)
            if new_value is value or new_value == value:
                return node
            out = dict(node)
            out["value"] = new_value
            return out
        person_like = "name" in node and _person_like(tuple(node))
        changed: dict[str, Any] | None = None
        keys = _KEYS
        for key, value in node.items():
            if value is None or value is True or value is False:
                continue
            keep, key_kind = keys.get(key) or _key_info(key)
            if value.__class__ in _NUMBERS and (keep or not (
                    forced or key_kind not in (None, S.SAML_KIND) or (key == "name" and person_like))):
                continue  # a number is redacted only when its key says it is personal or secret
            child = (loc, key)
            if key in _BODY_KEYS and isinstance(value, dict) and "text" in value \
                    and ("mimeType" in value or "encoding" in value):
                new = self._body(value, child, sink, record)
            elif key in _CHILD_CTX and isinstance(value, list):
                new = self.walk(value, child, sink, ctx=_CHILD_CTX[key], record=record)
            elif keep:
                new = self.walk(value, child, sink, record=record) if isinstance(value, str | dict | list) \
                    and key != "serverIPAddress" else value
            else:
                kind = forced or key_kind or ("PERSON" if key == "name" and person_like else None)
                if key == "url" and isinstance(value, str):
                    here = []
                    new = self.url(value, here) if kind is None else self.secret(kind, value, "key", here)
                    self._emit(child, here, sink, record)
                elif kind is None and value.__class__ is str:  # the common leaf, without a walk() call
                    here = []
                    new = self.string(value, here)
                    if here:
                        self._emit(child, here, sink, record)
                else:
                    new = self.walk(value, child, sink, forced=kind, record=record)
            if new is not value and new != value:
                if changed is None:
                    changed = {}
                changed[key] = new
        if changed is None:
            return node
        return {key: changed.get(key, value) if key in changed else value for key, value in node.items()}

    def _body(self, body: dict[str, Any], loc: Loc, sink: list[str], record: bool) -> dict[str, Any]:
        """HAR content/postData: decode base64, redact by MIME type, re-encode; keep size fields."""
        out = dict(body)
        mime = str(body.get("mimeType") or "")
        text = body.get("text")
        if "params" in body and isinstance(body["params"], list):
            out["params"] = self.walk(body["params"], (loc, "params"), sink, ctx="params", record=record)
        if not isinstance(text, str) or not text:
            return out
        here: list[str] = []
        if str(body.get("encoding") or "").lower() == "base64":
            if mime and not _TEXTUAL_MIME.search(mime):
                return out  # images, fonts: nothing readable to redact
            try:
                raw = base64.b64decode(text, validate=False)
            except (ValueError, binascii.Error):
                return out
            how = compressed.kind(raw)
            where = f"'{self.name}' {loc_str((loc, 'text'))}"
            if how:  # gzip/zlib bytes as sent on the wire: read inside (bounded), or fail closed
                try:
                    raw = compressed.inflate(raw, how, where)
                except compressed.Corrupt as exc:
                    # kept as it is (the damage is evidence) only when what can be read of it is clean
                    self.body_text(exc.partial.decode("utf-8", "replace"), mime, here)
                    if here:
                        raise RedactionError(f"{where}: damaged {how}-compressed body holds values to redact "
                                             "and cannot be rewritten; no output was written") from None
                    return out
            try:
                decoded = raw.decode("utf-8")
            except UnicodeDecodeError:
                return out
            red = self.body_text(decoded, mime, here)
            if red != decoded:
                data = red.encode("utf-8")
                out["text"] = base64.b64encode(compressed.deflate(data, how) if how else data).decode("ascii")
        else:
            out["text"] = self.body_text(text, mime, here)
        self._emit((loc, "text"), here, sink, record)
        return out

    def body_text(self, text: str, mime: str, found: list[str]) -> str:
        m = mime.lower()
        stripped = text.strip()
        if "json" in m or (stripped[:1] in "{[" and stripped[-1:] in "}]"):
            try:
                obj = json.loads(stripped)
            except ValueError:
                obj = None
            if isinstance(obj, dict | list):
                return self.json_text(text, obj, found)
        if "x-www-form-urlencoded" in m and " " not in stripped:
            return self.query(text, found)
        if "xml" in m and stripped.startswith("<"):
            try:
                return self.xml(text.encode("utf-8"), found).decode("utf-8")
            except (InputFormatError, UnicodeDecodeError):
                pass
        if len(text) <= 4096:
            return self.string(text, found)
        return self.text(text, found)
