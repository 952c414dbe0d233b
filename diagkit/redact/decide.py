"""Decide: one string with its context in, its redacted form out. The heart of the redactor.

`Redaction.value(name, text, ctx)` is where every string of every format arrives (formats.py calls it
for each header, parameter, cookie, JSON key's value, XML element or attribute, HTML input, form or
multipart field). In order:

1. the name (rules.name_rule): a URL, an Authorization or Cookie header, a SAML message, `code`/`state`
   (secret only in an OAuth context: OAuth parameters beside them or an OAuth path), a secret or
   personal name -> the whole value becomes a pseudonym (a JWT under a secret name is rewritten
   instead, so that its public claims stay readable);
2. decoding (decode.py): JWT, JWE, base64 (deflate/gzip inside), JSON in a string, markup,
   percent-encoding -> the inner document is redacted as its own format and encoded back;
3. free text (scan.py, then NER): each hit becomes a pseudonym, or is redacted by its part (URL, Authorization).

A pseudonym is always computed from the decoded value, so one value has one pseudonym in every encoding.
"""

from __future__ import annotations

import hashlib
import html
import re
import urllib.parse
from collections.abc import Callable
from typing import Any, NamedTuple

from diagkit.redact import decode, ner, rules, scan
from diagkit.redact.pseudonym import PSEUDONYM_RE, Pseudonymizer, is_pseudonym
from diagkit.redact.report import RedactionReport

_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_HUMAN_NAME = re.compile(r"[A-Z][^\W\d_]+(?:[ '-][A-Z]?[^\W\d_]+){0,3}")
_NAME_PARTS = re.compile(r"given|family|first|last|surname|middle")
_SET_COOKIE_ATTRIBUTE = re.compile(r"(?i);\s*(?:expires|max-age|path|domain|samesite|secure|httponly)\b")
_IP = re.compile(r"\[?[0-9A-Fa-f.:]+\]?")
_EMAIL = next(rule.regex for rule in rules.VALUE_RULES if rule.id == "email")
_AWS_SCOPE = re.compile(r"^(A[A-Z0-9]{3}[A-Z0-9]{16})(/\d{8}/[\w-]+/[\w-]+/aws4_request)$")
_DIGEST_PARAM = re.compile(r'([\w-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
_DIGEST_KEEP = frozenset({"realm", "qop", "uri", "algorithm", "nc", "stale", "charset", "userhash", "domain"})
_SIGV4_PART = re.compile(r"(Credential=)([A-Z0-9]{16,128})(/)|(Signature=)([0-9a-fA-F]+)")
# Names whose values are prose: names and places are looked for in them by NER.
_PROSE_NAMES = re.compile(r"(?:^|_)(?:notes?|comments?|title|message|msg|description|text|body|contact|name|"
                          r"summary|details?|reason|data|content|remarks?|subject)$")
_REDACTED_SIGNATURE = re.compile(r"redacted[0-9a-f]{6,16}")
_URL_SAFE = "/@!$'()*,;~"


_tuple_new = tuple.__new__
_PATH_SEGMENT = object()  # the memo's name for a URL path segment: no header or key name can equal it
_HERE = object()  # Redaction.value's key when ctx is the string's own place


class Ctx(NamedTuple):
    """Where a string is: its location (for the report) and whether OAuth parameters are around it."""

    where: Any  # a string, or (parent's where, key): made a string only when a report asks (report.where_str)
    oauth: bool = False

    def at(self, key: Any) -> Ctx:
        return _tuple_new(Ctx, ((self.where, key), self.oauth))  # Ctx(...) without NamedTuple's Python __new__

    def oauth_if(self, oauth: bool) -> Ctx:
        """This place, in an OAuth context when `oauth` says so (it never leaves one)."""
        return Ctx(self.where, True) if oauth and not self.oauth else self


def _below(where: Any, base: Any) -> tuple:
    """The keys from `base` down to `where` (Ctx.where chains); () when `where` is not below `base`."""
    path = []
    while where is not base:
        if not isinstance(where, tuple):
            return ()
        where, step = where
        path.append(step)
    return tuple(reversed(path))


def _quote_like(text: str, written: str, safe: str = "") -> str:
    """`text` percent-encoded as `written` was: a character it wrote raw stays raw (and those in `safe`)."""
    return urllib.parse.quote(text, safe=safe + "".join(sorted({ch for ch in written if not ch.isalnum() and ch != "%"})))


# what a small number under its name still is: a PIN or one-time code, a person's id or phone, a card, a date
_NUMBER_KINDS = frozenset({"PASSWORD", "USER", "PHONE", "CARD", "ID", "DATE", "CODE"})
_MEMO_TEXT = 256
_MARKUP_START = re.compile(r"\s*<[A-Za-z!?]")  # XML or HTML (not a syslog line's `<15>`)


def memo_key(text: str) -> str | bytes:
    """A long text is remembered by its digest: the cache must not keep a big input alive."""
    if len(text) <= _MEMO_TEXT:
        return text
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


# How a document found inside a string is walked (formats.walk and formats.document). formats.py imports
# this module, so the walkers are handed in by the caller that imports both (engine.Redactor) rather than
# imported here: the redactor's modules stay free of import cycles.
Walk = Callable[["Redaction", Any, "str | None", Ctx], Any]
Document = Callable[["Redaction", str, str, Ctx], str]


class Redaction:
    """One run's state: the pseudonymizer, the report, the terms to hide, NER and the values learned.

    walk(r, node, name, ctx): a parsed tree redacted (a JWT's claims); document(r, text, sniffed, ctx): a
    document in a string (JSON, markup, a form) redacted as its own format."""

    def __init__(self, pseudo: Pseudonymizer, report: RedactionReport, terms: tuple[str, ...] = (),
                 use_ner: bool = False, *, walk: Walk, document: Document) -> None:
        self.walk = walk
        self.document = document
        self.pseudonymizer = pseudo
        self.report = report
        terms = tuple(sorted({t.strip() for t in terms if t.strip()}, key=len, reverse=True))
        self.term_words = terms
        self.terms = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE) if terms else None
        self.ner = ner.Finder() if use_ner else None
        self.learned: dict[str, str] = {}  # personal words met under a name (given_name...): swept everywhere
        self.echoes: dict[str, str] = {}  # secrets met anywhere -> their kind: swept everywhere (rules.echo_worthy)
        # (name, text or its digest, OAuth context) -> (answer, (rule, path below the value) for each replacement)
        self._cache: dict[tuple, tuple[str, tuple[tuple[str, tuple], ...]]] = {}
        self.changes = 0  # pseudonyms and placeholders handed out: a tree redacted in place changed if it grew
        # (rule, where) for each value replaced, so that a cached answer is counted again where it is reused
        self._trail: list[tuple[str, Any]] = []
        self._depth = 0
        # (a list, how to walk it instead of item by item): set by engine.Redactor for a big HAR's entries
        self.spread: tuple[list, Callable[[list, str, Ctx], list]] | None = None

    # ------------------------------------------------------------ the pseudonym

    def pseudo(self, kind: str, value: str, rule: str, ctx: Ctx, learn: bool = False) -> str:
        """learn: the value is a person's name for certain (a given_name, a SAML surname, an OIDC `name`
        claim): its words are also hidden wherever else they appear in the run (sweep)."""
        if is_pseudonym(value) or not value.strip():
            return value
        if kind in rules.PERSONAL_KINDS or kind == "EMAIL":
            value = urllib.parse.unquote(value) if "%" in value else value
            if kind in ("USER", "EMAIL") and _EMAIL.fullmatch(value):
                kind = "EMAIL"
            if learn and _HUMAN_NAME.fullmatch(value.strip()):
                for word in value.split():
                    if len(word) >= 3:
                        self.learned.setdefault(word, word)
        if rules.echo_worthy(kind, value):
            self.echoes.setdefault(value, kind)
        self.report.add(rule, ctx.where)
        self._trail.append((rule, ctx.where))
        self.changes += 1
        return self.pseudonymizer(kind, value)

    # ------------------------------------------------------------ one string with its context

    def value(self, name: str | None, text: str, ctx: Ctx, key: Any = _HERE) -> str:
        """key: the string's key in the object at ctx, its place then built only when a report needs it."""
        memo = (name, text if len(text) <= _MEMO_TEXT else memo_key(text), ctx.oauth)
        cached = self._cache.get(memo)
        if cached is not None and not cached[1]:
            return cached[0]  # seen before, nothing replaced in it: nothing to report again
        if key is not _HERE:
            ctx = ctx.at(key)
        return self.memo(memo, ctx, self._value, name, text, ctx)

    def memo(self, key: tuple, ctx: Ctx, compute: Any, *args: Any) -> str:
        """compute(*args) once per distinct key in a run; a repeat gets the same answer and the same report
        lines."""
        cached = self._cache.get(key)
        if cached is not None:  # counted again at the same places below this one as the first time
            for rule, path in cached[1]:
                where = ctx.where
                for step in path:
                    where = (where, step)
                self.report.add(rule, where)
                if self._depth:
                    self._trail.append((rule, where))
            self.changes += len(cached[1])
            return cached[0]
        start = len(self._trail)
        self._depth += 1
        try:
            out = compute(*args)
            if self.terms is not None:
                out = self.hide_terms(out, ctx)
        finally:
            self._depth -= 1
        self._cache[key] = (out, tuple((rule, _below(where, ctx.where)) for rule, where in self._trail[start:]))
        if not self._depth:
            self._trail.clear()
        return out

    def _value(self, name: str | None, text: str, ctx: Ctx) -> str:
        if not text or is_pseudonym(text):
            return text
        rule = rules.name_rule(name) if name else None
        kind = rule.kind if rule is not None else None
        if kind == rules.URL and "/" not in text and not decode.looks_like_url(text):
            kind = None  # `"origin": "203.0.113.9"` (the caller's address an echo service reports): no URL
        if kind == rules.URL or (kind is None and decode.looks_like_url(text)):
            return self.url(text, ctx)
        if kind == rules.AUTHORIZATION:
            return self.authorization(text, ctx)
        if kind == rules.COOKIE:  # a Set-Cookie by its name, or by its attributes (CDP's blockedCookies[].cookieLine)
            return self.cookie(text, name is not None and name.lower().startswith("set") or
                               _SET_COOKIE_ATTRIBUTE.search(text) is not None, ctx)
        if kind == rules.SAML:  # redacted inside when it decodes to a message; an opaque blob goes whole
            layer = decode.unwrap(text)
            if layer is None or layer.kind != "doc" or layer.sniffed != "markup":
                return self.pseudo("SAML", text, "saml_message", ctx)
            return self.decoded(text, ctx, prose=False)
        if kind == rules.OAUTH_CONTEXT:
            kind = "CODE" if ctx.oauth else None
        if kind is None and name and rules.SERVER_IP_NAME.search(rules.normal_name(name)) and _IP.fullmatch(text):
            return text  # a server's address (HAR serverIPAddress, DNS answers): what an engineer needs
        if kind == "CREDENTIAL" and _AWS_SCOPE.match(text):
            kind = None  # X-Amz-Credential: the key id goes (a value rule), the scope stays
        if kind is not None and kind not in rules.PERSONAL_KINDS and rules.not_secret(kind, text):
            kind = None  # Access-Control-Allow-Credentials: true, Sec-Fetch-User: ?1
        if kind in rules.PERSONAL_KINDS and (text.strip().lower() in rules.NOT_SECRET_WORDS or rules.masked(text)):
            kind = None  # "email_verified": "False", a user masked already ("******", "{PII Removed}")
        if kind in ("SESSION", "CREDENTIAL") and text[:1] in "{[" and decode.unwrap(text) is not None:
            kind = None  # a session's or credentials' record (JSON): judged field by field, its ids kept
        if kind is not None and kind != rules.KEEP:
            assert rule is not None  # every kind comes from the name's rule
            if kind not in rules.PERSONAL_KINDS and decode.JWT.fullmatch(text):
                return self.jwt(text, ctx)
            if kind in ("PHONE", "MAC", "IP", "DATE", "PERSON", "USER") and not scan.plausible(kind, text):
                return self.decoded(text, ctx, False)  # sec-ch-ua-mobile: ?0 is no phone, owner/repo no name, root no one
            learn = kind == "PERSON" and _NAME_PARTS.search(rules.normal_name(name or "")) is not None
            return self.pseudo(kind, _PCT.sub(lambda m: urllib.parse.unquote(m.group(0)), text), rule.id, ctx, learn)
        if kind is None and name and rules.keyed_secret(name, text):
            return self.pseudo("KEY", text, "key", ctx)
        if kind is None and name and ctx.oauth and rules.flow_credential(name, text):
            return self.pseudo("TOKEN", text, "sign_in_value", ctx)
        prose = name is None or _PROSE_NAMES.search(rules.normal_name(name)) is not None or text.count(" ") >= 3
        return self.decoded(text, ctx, prose)

    def decoded(self, text: str, ctx: Ctx, prose: bool = True) -> str:
        """Decode what can be decoded, redact the inside as its own document, encode it back."""
        layer = decode.unwrap(text)
        if layer is None:
            return self.text(text, ctx, prose)
        if layer.kind == "jwt":
            return self.jwt(text, ctx)
        if layer.kind == "jwe":
            return self.pseudo("JWE", text, "jwe", ctx)
        if layer.kind == "binary":
            return self.placeholder(layer.raw, ctx)
        inner = self.document(self, layer.text, layer.sniffed, ctx)
        return text if inner == layer.text else layer.wrap(inner)

    def placeholder(self, raw: bytes, ctx: Ctx) -> str:
        self.report.add("unreadable_content", ctx.where)
        self._trail.append(("unreadable_content", ctx.where))
        self.changes += 1
        return decode.placeholder(raw)

    # ------------------------------------------------------------ free text

    def text(self, text: str, ctx: Ctx, prose: bool = True,
             names: list[tuple[int, int, str]] | None = None, where: Any = None) -> str:
        """names: NER's spans when the caller looked them up itself (a text file's lines, in one batch);
        where(offset) -> the place to report (a line of a text file) instead of ctx."""
        if rules.KEPT_SHAPE.fullmatch(text):
            return text  # startedDateTime, "ts", an id in a URL's path: nothing in it to hide
        hits: list[tuple[int, int, str, str]] = list(scan.find(text))
        if names is None and prose and self.ner is not None and ner.worth_a_look(text):
            names = self.ner.find(text)
        if names:
            taken = scan.Spans([(h[0], h[1]) for h in hits])
            hits += [(s, e, kind, "ner") for s, e, kind in names if taken.free(s, e)]
            hits.sort()
        if not hits:
            return text
        out, last = [], 0
        for start, end, kind, rule in hits:
            out.append(text[last:start])
            out.append(self._hit(kind, text[start:end], rule, ctx if where is None else Ctx(where(start), ctx.oauth)))
            last = end
        out.append(text[last:])
        return "".join(out)

    def _hit(self, kind: str, value: str, rule: str, ctx: Ctx) -> str:
        if kind == rules.URL:
            return self.url(value, ctx)
        if kind == rules.QUERY:
            path, _, query = value.partition("?")
            return self.path_and_query(path, "?" + query, "", ctx)
        if kind == rules.AUTHORIZATION:
            return self.authorization(value, ctx)
        if kind == rules.COOKIE:
            return self.cookie(value, rule == "set_cookie", ctx)
        if kind == "JWT":
            return self.jwt(value, ctx)
        if kind == "B64":  # decoded when it decodes to something; a run of base64 that does not stays
            return value if decode.unwrap(value) is None else self.decoded(value, ctx, prose=False)
        return self.pseudo(kind, value, rule, ctx)

    def hide_terms(self, text: str, ctx: Ctx) -> str:
        """The words the user named (--redact-term), case-insensitively, outside pseudonyms."""
        assert self.terms is not None
        if not self.terms.search(text):
            return text
        taken = [m.span() for m in PSEUDONYM_RE.finditer(text)]

        def one(m: re.Match[str]) -> str:
            if any(s <= m.start() < e for s, e in taken):
                return m.group(0)
            return self.pseudo("TERM", m.group(0).lower(), "term", ctx)
        return self.terms.sub(one, text)

    # ------------------------------------------------------------ structured values

    def url(self, url: str, ctx: Ctx) -> str:
        """Scheme, host and path names stay; user:password, secret path segments and parameter values go."""
        parts = decode.split_url(url)
        if parts is None:
            return self.text(url, ctx, prose=False)
        scheme, userinfo, host, path, query, fragment = parts
        if userinfo:
            user, sep, password = userinfo.partition(":")
            userinfo = self._url_quote(self.pseudo("USER", urllib.parse.unquote(user), "url_userinfo", ctx))
            if sep:
                userinfo += ":" + self._url_quote(self.pseudo("PASSWORD", urllib.parse.unquote(password),
                                                              "url_userinfo", ctx))
            userinfo += "@"
        if self.terms is not None:
            host = self.hide_terms(host, ctx)
        return f"{scheme}{userinfo}{host}{self.path_and_query(path, query, fragment, ctx)}"

    def path_and_query(self, path: str, query: str, fragment: str, ctx: Ctx) -> str:
        """A URL after its host (also one written without scheme and host, `GET /cb?email=... HTTP/1.1`):
        secret path segments and parameter values go."""
        segments = path.split("/")
        for i, segment in enumerate(segments):
            if not segment or is_pseudonym(segment):
                continue
            plain = urllib.parse.unquote(segment)
            if rules.opaque_path_segment(plain):
                new = self.pseudo("SECRET", plain, "url_path_secret", ctx)
            else:  # a path's words repeat from URL to URL ("api", "v1", "orders"): each is scanned once a run
                new = self.memo((_PATH_SEGMENT, memo_key(plain), ctx.oauth), ctx,
                                lambda plain=plain: self.text(plain, ctx, prose=False))
            if new != plain:
                segments[i] = _quote_like(new, segment, _URL_SAFE)  # `SSO;jsessionid=…` keeps its `;` and `=`
        path = "/".join(segments)
        names = decode.param_names(query) | decode.param_names(fragment)
        oauth = (ctx.oauth or bool(names & rules.OAUTH_MARKERS) or rules.OAUTH_PATH.search(path) is not None
                 or names >= {"code", "state"})  # an authorization response, whatever path it comes back to
        here = ctx.oauth_if(oauth)
        if query:
            query = "?" + self.form(query[1:], here, names)
        if fragment:
            fragment = "#" + (self.form(fragment[1:], here) if "=" in fragment else self.text(fragment[1:], here, False))
        return f"{path}{query}{fragment}"

    def form(self, encoded: str, ctx: Ctx, names: set[str] | None = None) -> str:
        """`a=1&b=2` (a query string or a form body): each value judged by its name and its neighbours."""
        pairs = encoded.split("&")
        if not ctx.oauth:
            ctx = ctx.oauth_if(not rules.OAUTH_MARKERS.isdisjoint(decode.param_names(encoded) if names is None else names))
        unencoded = None  # whether the text was written unencoded (`url=jdbc:postgresql://db:5432/x?user=a`)
        for i, pair in enumerate(pairs):
            name, eq, value = pair.partition("=")
            if not eq or not value:
                continue
            plain = urllib.parse.unquote_plus(value) if "%" in value or "+" in value else value
            key = urllib.parse.unquote_plus(name) if "%" in name or "+" in name else name
            new = self.value(key, plain, ctx, key)
            if new != plain:  # encoded as this value was written (a value written raw makes `unencoded` true)
                if unencoded is None:
                    unencoded = any("%" not in v and "+" not in v and self._url_quote(v) != v
                                    for v in (p.partition("=")[2] for p in pairs))
                raw = unencoded and "%" not in value and "+" not in value
                pairs[i] = f"{name}={new if raw else _quote_like(new, value.replace('+', ''))}"
        return "&".join(pairs)

    @staticmethod
    def _url_quote(text: str) -> str:
        return urllib.parse.quote(text, safe=_URL_SAFE)

    def authorization(self, value: str, ctx: Ctx) -> str:
        """Any scheme stays and its credential goes; Digest and AWS SigV4 keep their non-secret structure."""
        lead = value[: len(value) - len(value.lstrip())]
        scheme, sep, credential = value.strip().partition(" ")
        if not sep or not credential.strip():
            return lead + self.pseudo("SECRET", value.strip(), "authorization", ctx)
        if scheme.lower() == "digest":
            return f"{lead}{scheme} {_DIGEST_PARAM.sub(lambda m: self._digest(m, ctx), credential)}"
        if scheme.upper().startswith("AWS4-"):
            return f"{lead}{scheme} {_SIGV4_PART.sub(lambda m: self._sigv4(m, ctx), credential)}"
        credential = credential.strip()
        if decode.JWT.fullmatch(credential):
            return f"{lead}{scheme} {self.jwt(credential, ctx)}"
        return f"{lead}{scheme} {self.pseudo('SECRET', credential, 'authorization', ctx)}"

    def _digest(self, m: re.Match[str], ctx: Ctx) -> str:
        name, raw = m.group(1), m.group(2)
        quoted = raw.startswith('"')
        value = raw[1:-1] if quoted else raw
        if name.lower() in _DIGEST_KEEP:
            new = self.url(value, ctx) if name.lower() == "uri" else value
        elif name.lower() == "username":
            new = self.pseudo("USER", value, "authorization", ctx)
        else:
            new = self.pseudo("SECRET", value, "authorization", ctx)
        return f'{name}="{new}"' if quoted else f"{name}={new}"

    def _sigv4(self, m: re.Match[str], ctx: Ctx) -> str:
        if m.group(1):
            return m.group(1) + self.pseudo("KEY", m.group(2), "authorization", ctx) + m.group(3)
        return m.group(4) + self.pseudo("SIGNATURE", m.group(5), "authorization", ctx)

    def cookie(self, value: str, set_cookie: bool, ctx: Ctx) -> str:
        """Cookie names and Set-Cookie attributes stay; every cookie value goes."""
        if set_cookie and "\n" in value:  # several Set-Cookie headers folded into one value, one a line
            return "\n".join(self.cookie(line, True, ctx) for line in value.split("\n"))
        pairs = value.split(";") if not set_cookie else [value.split(";", 1)[0]]
        rest = value[len(pairs[0]):] if set_cookie else ""
        out = []
        for pair in pairs:
            name, eq, v = pair.partition("=")
            if eq and v.strip():
                lead, core = v[: len(v) - len(v.lstrip())], v.strip()
                quote = '"' if len(core) > 2 and core[0] == core[-1] == '"' else ""  # a quoted value keeps its quotes
                core = core[1:-1] if quote else core
                short = len(core) <= 12  # what is no secret is short (`0`, `en`, `true`); an opaque value is not
                new = core if short and rules.not_secret("COOKIE", core) else self.pseudo("COOKIE", core, "cookie", ctx)
                out.append(f"{name}={lead}{quote}{new}{quote}")  # `brcap=0`, `lang=en` stay
            elif not eq and pair.strip() and not set_cookie:
                out.append(self.pseudo("COOKIE", pair.strip(), "cookie", ctx))
            else:
                out.append(pair)
        return ";".join(out) + rest

    def jwt(self, token: str, ctx: Ctx) -> str:
        """A JWT keeps its header and its public claims (iss, aud, exp, scope ...); personal and secret claims
        become pseudonyms (judged by claim name like any JSON key), and the signature is replaced, so the
        token can no longer be used."""
        parts = decode.jwt_parts(token)
        if parts is None:
            return self.pseudo("JWT", token, "jwt", ctx)
        header, payload = parts  # redacted in place
        # a token diagkit redacted already: a copy as it was, to tell whether anything is left to do
        before = decode.jwt_parts(token) if _REDACTED_SIGNATURE.fullmatch(token.rsplit(".", 1)[-1]) else None
        if isinstance(payload.get("name"), str):  # OpenID Connect's `name` claim: the person's full name
            payload["name"] = self.pseudo("PERSON", payload["name"], "person_name", ctx.at("jwt").at("name"), learn=True)
        claims = self.walk(self, payload, None, ctx.at("jwt"))
        changes = self.changes
        head = self.walk(self, header, None, ctx.at("jwt_header"))
        head_kept = self.changes == changes
        if before is not None and (head, claims) == before:
            return token  # redacted already (by diagkit): nothing left to do
        self.report.add("jwt_signature", ctx.where)
        self._trail.append(("jwt_signature", ctx.where))
        self.changes += 1
        tag = self.pseudonymizer("JWT", token)[5:-1]
        head_segment = token.partition(".")[0] if head_kept else decode.b64url_json(head)  # as its issuer wrote it
        return f"{head_segment}.{decode.b64url_json(claims)}.redacted{tag}"

    def number(self, name: str | None, value: int | float, ctx: Ctx, key: Any = None) -> Any:
        """A number under a secret or personal name (`"pin": 1234`) becomes a pseudonym; others stay.
        key: the number's key in the object at ctx (its place is built only when it is reported)."""
        rule = rules.name_rule(name) if name else None
        if rule is None or rule.kind in (rules.KEEP, rules.URL, rules.OAUTH_CONTEXT, "IP"):
            return value
        if value < 0 or (rule.kind not in _NUMBER_KINDS and value < 100000):
            return value  # a count or a table's code (Chrome's NetLog: `"HTTP2_SESSION": 244`, `"…_PASSWORD": -701`)
        return self.pseudo(rule.kind, str(value), rule.id, ctx if key is None else ctx.at(key))

    # ------------------------------------------------------------ the sweep

    def sweep(self, text: str, where: Any) -> str:
        """Secrets found elsewhere in the run (a cookie, a token, a password) and personal words learned under
        a name (a given_name, a SAML surname) are hidden wherever else they appear: a parameter with a neutral
        name, a page title, a note, a message. where: the string's place, as in Ctx."""
        echoed = bool(self.echoes) and len(text) >= 5 and any(self.echo_of(t) for t in rules.ECHO_TOKEN.findall(text))
        regex = self._learned_regex()
        if not echoed and (regex is None or not regex.search(text)):
            return text  # (a learned word is never inside a pseudonym the echoes would write)
        # in markup (an XML file, a page in a HAR) a pseudonym is written as its text: &lt;KIND:hex&gt;
        write = html.escape if _MARKUP_START.match(text) else str
        ctx = Ctx(where)
        if echoed:
            text = self._echoes(text, ctx, write)
        if regex is None or not regex.search(text):
            return text
        taken = [m.span() for m in PSEUDONYM_RE.finditer(text)]

        def one(m: re.Match[str]) -> str:
            if any(s <= m.start() < e for s, e in taken):
                return m.group(0)
            return write(self.pseudo("PERSON", m.group(0), "learned_name", ctx))
        return regex.sub(one, text)

    def echo_of(self, token: str) -> tuple[int, str] | None:
        """(offset in the token, secret) when a token of text holds a secret met elsewhere (rules.echo_candidates)."""
        if token in self.echoes:
            return 0, token
        return next((found for found in rules.echo_candidates(token) if found[1] in self.echoes), None)

    def _echoes(self, text: str, ctx: Ctx, write: Callable[[str], str]) -> str:
        out: list[str] = []
        last = 0
        for m in rules.ECHO_TOKEN.finditer(text):
            found = self.echo_of(m.group(0))
            if found is not None:
                start, secret = m.start() + found[0], found[1]
                out += (text[last:start], write(self.pseudo(self.echoes[secret], secret, "echo", ctx)))
                last = start + len(secret)
        return "".join(out) + text[last:] if out else text

    def _learned_regex(self) -> re.Pattern[str] | None:
        if not self.learned:
            return None
        if getattr(self, "_learned_key", None) != len(self.learned):
            words = sorted(self.learned, key=len, reverse=True)
            self._learned_re = re.compile(r"(?<![\w])(?:" + "|".join(map(re.escape, words)) + r")(?![\w])")
            self._learned_key = len(self.learned)
        return self._learned_re
