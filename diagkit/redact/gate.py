"""The leak gate: scan redacted output again with independent detectors before anything is written.

Whatever a detector still finds in a plain string is redacted on the spot (and counted under
`gate:<rule>`); whatever it finds inside an encoded layer it cannot rewrite (a base64 blob, a JWT
payload, a SAML message) stops the run with LeakDetected naming the location, never the value.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from diagkit.errors import LeakDetected, RedactionError
from diagkit.redact import compressed
from diagkit.redact import secrets as S
from diagkit.redact.pseudonym import PSEUDONYM_RE, PSEUDONYM_URL_RE, Pseudonymizer, is_pseudonym
from diagkit.redact.report import RedactionReport
from diagkit.redact.structured import b64url_decode, jwt_signature_marker, literal_pattern, loc_str


@dataclass(frozen=True)
class Detector:
    """rule: name in reports; kind: pseudonym kind; group: the part that is the secret;
    ok(match) -> True when the match is already redacted (a pseudonym, a redacted JWT...)."""

    rule: str
    kind: str
    pattern: re.Pattern[str]
    group: int = 0
    ok: Callable[[re.Match[str]], bool] | None = None
    # substrings one of which a match must contain; () = always run. For a case-insensitive pattern they are
    # lower-case and looked for in the lower-cased text, otherwise as the pattern writes them: "AKIA" is found
    # at C speed where a lower-cased "akia" turns up in any hex id and runs the pattern over the whole text.
    hints: tuple[str, ...] = ()
    folds_case: bool = field(init=False)  # the pattern ignores case: hints go to the lower-cased text

    def __post_init__(self) -> None:
        object.__setattr__(self, "folds_case", S.case_insensitive(self.pattern))


def _redacted(value: str) -> bool:
    return bool(PSEUDONYM_RE.fullmatch(value) or PSEUDONYM_URL_RE.fullmatch(value)
                or value.startswith(("<", "%3C", "&lt;")) and PSEUDONYM_RE.search(value.replace("&lt;", "<")
                                                                                     .replace("&gt;", ">"))
                or PSEUDONYM_URL_RE.search(value))


@functools.lru_cache(maxsize=4096)  # the jwt and bearer detectors both ask about the same token
def jwt_is_redacted(token: str) -> bool:
    parts = token.split(".")
    if len(parts) != 3 or not jwt_signature_marker(parts[2]):
        return False
    try:
        payload = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return False
    if not isinstance(payload, dict):
        return False
    for claim, value in payload.items():
        if S.is_keep_key(claim):
            continue
        if (S.key_kind(claim) or claim == "name") and isinstance(value, str) and not is_pseudonym(value):
            return False
    return not scan_text(json.dumps(payload, ensure_ascii=False))


def _saml_is_redacted(value: str) -> bool:
    from urllib.parse import unquote

    compact = "".join(unquote(value).split())
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4))
        if raw.lstrip()[:1] != b"<":
            raw = compressed.inflate_raw(raw)
        text = raw.decode("utf-8")
    except (ValueError, binascii.Error, zlib.error, compressed.TooLarge, UnicodeDecodeError):
        return _redacted(value)  # unreadable or a DEFLATE bomb: only a pseudonym of the whole value passes
    names = re.findall(r"<(?:[\w-]+:)?NameID\b[^>]*>([^<]*)<", text)
    return all(_redacted(n.strip()) for n in names) and not scan_text(text)


def _group_ok(m: re.Match[str]) -> bool:
    value = m.group(1)
    return _redacted(value) or bool(S.JWT_RE.fullmatch(value) and jwt_is_redacted(value))


def _param_ok(m: re.Match[str]) -> bool:
    if m.group(1).lower().startswith("saml"):
        return _saml_is_redacted(m.group(2))
    value = m.group(2)
    return _redacted(value) or bool(S.JWT_RE.fullmatch(value) and jwt_is_redacted(value))


def _userinfo_ok(m: re.Match[str]) -> bool:
    return _redacted(m.group(1)) and _redacted(m.group(2))


def _pem_ok(m: re.Match[str]) -> bool:
    return False


_TOKEN_HINTS = {"aws_access_key": ("AKIA", "ASIA", "ABIA", "ACCA"), "github_token": ("gh",),
                "slack_token": ("xox",), "stripe_key": ("_live_", "_test_"), "google_api_key": ("AIza",),
                "google_oauth_token": ("ya29.",), "aws_secret_key": ("aws",)}

DETECTORS: list[Detector] = [
    Detector("email", "EMAIL", S.EMAIL_RE, hints=("@",)),
    Detector("jwt", "TOKEN", S.JWT_RE, ok=lambda m: jwt_is_redacted(m.group(0)), hints=("eyJ",)),
    Detector("pem_private_key", "PRIVATE_KEY", S.PEM_PRIVATE_RE, ok=_pem_ok, hints=("-----BEGIN",)),
    *(Detector(rule, kind, pattern, group, ok=_group_ok, hints=_TOKEN_HINTS[rule])
      for rule, kind, pattern, group in S.TOKEN_PATTERNS if rule in _TOKEN_HINTS),
    Detector("bearer_token", "TOKEN", re.compile(r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{8,}=*)(?![\w=\"-])"), 1,
             ok=_group_ok, hints=("bearer",)),
    Detector("url_userinfo", "CREDENTIALS", re.compile(r"://([^/\s:@\"'<>]+):([^/\s@\"'<>]+)@"), 0, ok=_userinfo_ok,
             hints=("@",)),
    Detector("url_secret_param", "TOKEN", re.compile(
        r"(?i)[?&#](access_token|id_token|refresh_token|client_secret|password|code|samlresponse|samlrequest|"
        r"api_key|apikey)=([^&#\s\"'<>]+)"), 2, ok=_param_ok, hints=("=",)),
]


# Every built-in detector needs one of these; a string without any is clean for the built-ins.
_LITERALS = ("@", "eyJ", "-----BEGIN", "AKIA", "ASIA", "ABIA", "ACCA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
             "github_pat_", "xox", "_live_", "_test_", "AIza", "ya29.", "://")
_WORDS = ("bearer", "access_token", "id_token", "refresh_token", "client_secret", "password", "code=", "saml",
          "api_key", "apikey")


def _could_leak(text: str) -> bool:
    # Substring tests run at C speed; a case-insensitive regex alternation is ~10x slower on long bodies,
    # and a chain of `in` tests ~4x faster than any() over a generator. Keep in step with _LITERALS/_WORDS.
    if ("@" in text or "://" in text or "eyJ" in text or "-----BEGIN" in text or "AKIA" in text or "ASIA" in text
            or "ABIA" in text or "ACCA" in text or "xox" in text
            or ("_" in text and ("ghp_" in text or "gho_" in text or "ghu_" in text or "ghs_" in text
                                 or "ghr_" in text or "github_pat_" in text)) or "_live_" in text
            or "_test_" in text or "AIza" in text or "ya29." in text):
        return True
    lower = text.lower()
    return ("bearer" in lower or "token" in lower or "secret" in lower or "password" in lower or "code=" in lower
            or "saml" in lower or "api_key" in lower or "apikey" in lower)


_CLEAN: dict[str, bool] = {}


_BUILTIN = DETECTORS


def scan_text(text: str, detectors: list[Detector] | None = None) -> list[tuple[Detector, int, int]]:
    """Every unredacted match: (detector, start, end) of the secret part."""
    # The prefilter and the clean-string cache only know the built-in detectors.
    builtin = (DETECTORS if detectors is None else detectors) is _BUILTIN
    if builtin:
        if len(text) < 512 and text in _CLEAN:
            return []
        # A whole file's output nearly always holds a pseudonym's "token" or "secret": there the union test
        # only repeats the passes each detector's own hints make below.
        if len(text) < 65536 and not _could_leak(text):
            if len(text) < 512:
                if len(_CLEAN) > 200_000:
                    _CLEAN.clear()
                _CLEAN[text] = True
            return []
    hits = []
    lower = None
    # in a long text each hint is looked for once (detectors share "@"), by sre's literal search when it has
    # three characters or more: about twice str.find's speed over a text that lacks it
    seen: dict[tuple[str, bool], bool] | None = {} if len(text) >= 65536 else None
    for det in DETECTORS if detectors is None else detectors:
        if det.hints:
            hay = text
            if det.folds_case:
                if lower is None:
                    lower = text.lower()
                hay = lower
            for h in det.hints:
                if seen is None:
                    if h in hay:
                        break
                    continue
                there = seen.get((h, det.folds_case))
                if there is None:
                    there = seen[h, det.folds_case] = (literal_pattern(h).search(hay) is not None if len(h) > 2
                                                       else h in hay)
                if there:
                    break
            else:
                continue
        for m in det.pattern.finditer(text):
            if det.ok is not None and det.ok(m):
                continue
            if det.ok is None and _redacted(m.group(det.group)):
                continue
            hits.append((det, m.start(det.group), m.end(det.group)))
    hits.sort(key=lambda h: (h[1], -h[2]))
    kept: list[tuple[Detector, int, int]] = []
    for hit in hits:
        if kept and hit[1] < kept[-1][2]:
            continue
        kept.append(hit)
    return kept


class Gate:
    """Runs the detectors over one output; fixes plain strings, refuses encoded layers."""

    def __init__(self, pseudo: Pseudonymizer, report: RedactionReport, name: str,
                 detectors: list[Detector] | None = None) -> None:
        self.pseudo = pseudo
        self.report = report
        self.name = name
        self.detectors = detectors
        self._clean: set[str] = set()  # strings already found clean (outside base64 bodies) in this output

    def _fix(self, text: str, hits: list[tuple[Detector, int, int]], where: str, escape: bool = False) -> str:
        out, last = [], 0
        for det, start, end in hits:
            pseudo = self.pseudo(det.kind, text[start:end])
            if escape:
                pseudo = pseudo.replace("<", "&lt;").replace(">", "&gt;")
            out.append(text[last:start])
            out.append(pseudo)
            last = end
            self.report.add(f"gate:{det.rule}", where)
        out.append(text[last:])
        return "".join(out)

    def leak(self, rule: str, where: str) -> LeakDetected:
        return LeakDetected(f"'{self.name}': a value matching '{rule}' is still present at {where} after "
                            "redaction and cannot be redacted there; no output was written",
                            hint="redact that field by hand or report the format to the diagkit maintainers")

    def text(self, text: str, *, escape: bool = False, first: int = 0) -> str:
        """Line by line, so locations are line numbers; `first`: the 0-based number of the text's first line."""
        if not scan_text(text, self.detectors):
            return text
        lines = text.split("\n")
        for i, line in enumerate(lines):
            hits = scan_text(line, self.detectors)
            if hits:
                lines[i] = self._fix(line, hits, f"line {first + i + 1}", escape)
        out = "\n".join(lines)
        remaining = scan_text(out, self.detectors)
        if remaining:
            # A match spanning lines (a PEM block): no line-wise fix is possible.
            line_no = first + out.count("\n", 0, remaining[0][1]) + 1
            raise self.leak(remaining[0][0].rule, f"line {line_no}")
        return out

    def tree(self, node: Any, loc: Any = None, parent: dict[str, Any] | None = None) -> Any:
        """A JSON-like tree, fixed in place (and returned); raises LeakDetected for encoded layers.

        One loop over an explicit stack (no call per node), and every distinct string is checked once per
        run: HAR headers, MIME types and pseudonyms repeat thousands of times."""
        if not isinstance(node, dict | list):
            return self._string(node, loc, parent) if isinstance(node, str) else node
        clean = self._clean
        stack: list[tuple[Any, Any]] = [(node, loc)]
        while stack:
            container, here = stack.pop()
            if isinstance(container, dict):
                encoded = str(container.get("encoding") or "").lower() == "base64"
                items: Any = container.items()
            else:
                encoded, items = False, enumerate(container)
            fixes = None
            for k, v in items:
                if isinstance(v, str):
                    if len(v) < 6 or (v in clean and not encoded):
                        continue
                    new = self._string(v, (here, k), container if encoded else None)
                    if new is not v:
                        fixes = fixes or []
                        fixes.append((k, new))
                elif isinstance(v, dict | list):
                    stack.append((v, (here, k)))
            for k, new in fixes or ():
                container[k] = new
        return node

    def _string(self, node: str, loc: Any, parent: dict[str, Any] | None) -> str:
        if len(node) < 6:
            return node
        if node[0] == "<" and PSEUDONYM_RE.fullmatch(node):
            self._clean.add(node)
            return node
        hits = scan_text(node, self.detectors)
        if hits:
            where = loc_str(loc)
            node = self._fix(node, hits, where)
            if scan_text(node, self.detectors):
                raise self.leak(hits[0][0].rule, where)
        if not self._layers(node, loc, parent):
            # a DEFLATE bomb in a plain value: it cannot be looked into, so it goes as a whole
            self.report.add("gate:deflate_oversize", loc_str(loc))
            return self.pseudo("TOKEN", node)
        if not hits and parent is None:
            self._clean.add(node)
        return node

    def _layers(self, value: str, loc: Any, parent: dict[str, Any] | None) -> bool:
        """Decode what the redactor decodes (base64 bodies and values) and scan inside; never fixable here.

        False for a plain value holding raw DEFLATE beyond the bound (the caller replaces it whole); in a
        base64 body such a stream cannot be replaced and stops the run."""
        encoded = parent is not None and str(parent.get("encoding") or "").lower() == "base64"
        stripped = value.strip()
        if not encoded and not (len(stripped) >= 20 and re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", stripped)):
            return True
        try:
            raw = base64.b64decode(stripped, altchars=b"-_" if ("-" in stripped or "_" in stripped) else None)
        except (ValueError, binascii.Error):
            return True
        how = compressed.kind(raw)
        if how:
            # what the redactor inflated, the gate inflates too; a body it cannot open fails closed
            try:
                raw = compressed.inflate(raw, how, f"'{self.name}' {loc_str(loc)}")
            except compressed.Corrupt as exc:
                raw = exc.partial
            except RedactionError:
                if encoded:
                    raise
                return True  # a base64-looking value that only resembles a compressed stream
        try:
            text = raw.decode("utf-8", "replace" if how else "strict")
        except UnicodeDecodeError:
            try:
                text = compressed.inflate_raw(raw).decode("utf-8")
            except (zlib.error, UnicodeDecodeError):
                return True
            except compressed.TooLarge:
                if not encoded:
                    return False
                raise RedactionError(f"'{self.name}' {loc_str(loc)}: base64 body holds DEFLATE data inflating "
                                     f"beyond {compressed.RAW_DEFLATE_MAX // (1024 * 1024)} MB that cannot be "
                                     "inspected; refused, no output was written") from None
        hits = scan_text(text, self.detectors)
        if hits:
            raise self.leak(hits[0][0].rule, f"{loc_str(loc)} (base64-decoded)")
        return True
