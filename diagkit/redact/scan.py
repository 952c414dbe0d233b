"""Free text: where secrets and personal data sit in a string, found with the rule table (rules.py).

`find(text)` returns non-overlapping hits, each a span with the kind of what is there. It knows the
shapes a secret takes in prose, logs, config lines and command lines (after detect-secrets' keyword
plugin: one list of name words, a short list of syntaxes):

  value shapes          rules.VALUE_RULES (keys, tokens, emails, cards, phones, addresses ...)
  URLs                  kind URL: decide.py redacts their parts
  Authorization lines   kind AUTH: the scheme stays, the credential goes
  name = value          `name=value`, `name: value`, `"name": "value"`, `<name>value</name>`, `--name value`
  command lines         `-u user:pass`, `mysql -pX`, `docker login -p X`
  secret words          `password is X`, only when X looks like a credential

Hits are claimed in that order; a later hit that overlaps an earlier one is dropped.
"""

from __future__ import annotations

import bisect
import re
from typing import NamedTuple

from diagkit.redact import rules
from diagkit.redact.pseudonym import PSEUDONYM_RE


class Hit(NamedTuple):
    start: int
    end: int
    kind: str   # a pseudonym kind, or rules.URL / rules.AUTHORIZATION / "JWT" / "JWE" / "B64" for decide.py
    rule: str


_URL = re.compile(r"\b(?:https?|wss?|ftp)://[^\s\"'<>\\`]+")
_RELATIVE_QUERY = re.compile(r"(?<![\w/.:-])/[^\s?\"'<>#`]*\?[\w.%~+\[\]-]+=[^\s\"'<>#`]*")
_AUTH_LINE = re.compile(r"(?i)\b(?:proxy-)?authorization[\"']?\s*[:=]\s*(?:\"([^\"\r\n]+)\"|'([^'\r\n]+)'|([A-Za-z][\w-]*[ \t]+(?:(?:[\w-]+=(?:\"[^\"\r\n]*\"|[^\s,\"']*)(?:,[ \t]*)?)+|[\w.~+/=:@%!$*-]+)))")
_COOKIE_LINE = re.compile(r"(?i)(?:\b|_)(set-)?cookie2?(?: pair)?[\"']?\s*[:=]\s*[\"']?((?:[^=;,\s\"'\\]+(?:=(?:\"[^\"\r\n]*\"|[^;,\s\"'\\]*))?(?:;[ \t]*)?)+)")  # not into a capture export's `\r\n`
_COOKIE_PAIR = re.compile(r"[^;\s]+")
_SCHEMES = ("Bearer", "Basic", "SSWS", "Negotiate")  # _BARE_SCHEME's literals
# a credential is a token, or (Basic written by hand, not encoded) user:password
_BARE_SCHEME = re.compile(r"\b(?:Bearer|Basic|SSWS|Negotiate)\s+([\w.~+/=-]{8,}(?::[^\s'\"]+)?)")
# the value: quoted, quoted with escaped quotes (`\"v\"` in a log line quoting JSON, `\\\"v\\\"` quoted twice),
# in brackets (`code=[v]`, a Java map printed), or bare; never an object or list that opens there (`"user": {`)
_NAME_VALUE = re.compile(r"(?<![\w.-])[\"']?([A-Za-z_][\w.-]{0,60})(?:\\*[\"'])?[ \t]{0,3}(:=|=>|=|:)[ \t]{0,3}"
                         r"(?:\"([^\"\r\n]{1,4096})\"|'([^'\r\n]{1,4096})'|\\+\"([^\"\\\r\n]{1,4096})\\+\"|"
                         r"\[([^\s\[\]]{1,4096})\]|(?![{\[\\])([^\s;,&\"'<>)\]}]+))")
_NAME_WORDS = re.compile(r"(?: [A-Z][^\W\d_][\w'-]*){1,3}(?![\w@.])")


def _name_end(text: str, m: re.Match[str], group: int, kind: str) -> int:
    """Where a value ends: a person's name written bare (`Display Name: Jane Roe`) goes on to the name's
    other capitalised words."""
    if kind == "PERSON" and m.lastindex == group and text[m.start(group) - 1:m.start(group)] not in "\"'":
        words = _NAME_WORDS.match(text, m.end(group))
        if words is not None:
            return words.end()
    return m.end(group)


_NEXT_LINE_VALUE = re.compile(r"(?<![\w.-])([A-Za-z_][\w.-]{0,40})[ \t]*:[ \t]*\n[ \t]*([A-Za-z0-9+/=_.~-]{16,})[ \t]*(?=\n|$)")
_JS_WORDS = frozenset({"var", "let", "const"})
_JS_DECLARATION = re.compile(r"\b(?:var|let|const)\s+$")
_MEMBER_CHAIN = re.compile(r"(?:[A-Za-z_$][\w$.]*(?:\|\||&&|[?:+]))*[A-Za-z_$][\w$.]*(?:\|\||&&|[?:+])?")
_LABEL_END = re.compile(r"(?i) (?:id|token|key|secret|password|name|number)[ \t]*[:=]")  # where _LABEL may end
_LABEL_HEAD = re.compile(r"[A-Za-z]{2,20}$")  # and its first word, just before
_LABEL = re.compile(r"(?i)(?<![\w.-])([a-z]{2,20} (?:id|token|key|secret|password|name|number))[ \t]*([:=])[ \t]*"
                    r"(?:\"([^\"\r\n]{1,4096})\"|'([^'\r\n]{1,4096})'|(?![{\[])([^\s;,&\"'<>)\]}]+))")
_XML_ELEMENT = re.compile(r"<([A-Za-z_][\w:.-]{0,60})>([^<>\r\n]{1,1024})</\1>")
_FLAG = re.compile(r"(?<!\S)--([A-Za-z][\w-]{1,40})(?:=|[ \t]+)(?!-)(\"[^\"\r\n]*\"|'[^'\r\n]*'|\S+)")
_USER_PASS_FLAG = re.compile(r"(?<!\S)(?:-u|--user)[ \t=]+([^\s:'\"]+):([^\s'\"]+)")
_P_ATTACHED = re.compile(r"(?<!\S)-p(?![\s\d]*:)(\S+)")     # mysql -pSECRET (not docker's -p 8080:80)
_P_SEPARATE = re.compile(r"(?<!\S)(?:-p|--password-stdin=?)[ \t]+(\S+)")
_FIRST = rules.Table(rules.VALUE_RULES[:3])
_VALUES = rules.Table(rules.VALUE_RULES[3:])
_FLAG_START = re.compile(r"(?<!\S)-")
_PORT_AND_PATH = re.compile(r":\d{1,5}/")
_BASE64_RUN = re.compile(r"(?<![\w+/=])[A-Za-z0-9+/]{40,}={0,2}(?![\w+/=])")


_OAUTH_WORDS = re.compile(r"\b(?:client_id|redirect_uri|response_type|grant_type|code_verifier|code_challenge|"
                          r"scope|id_token|access_token|session_state|authuser)\b")


_PERSON_WORDS = re.compile(r"\b(?:given_?name|family_?name|first_?name|last_?name|e_?mail|preferred_username|upn|"
                           r"phone_number|birthdate)\b", re.I)


def _written_near(text: str, pos: int, reach: int, *patterns: re.Pattern[str]) -> bool:
    """Whether one of `patterns` matches within `reach` characters of `pos`: the context a pair sits in (an
    OAuth request or response around `code=`/`state=`, a person's claims around `name:`)."""
    start = max(0, pos - reach)
    return any(p.search(text, start, pos + reach) is not None for p in patterns)


def _line(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start:end if end >= 0 else len(text)]


class Spans:
    """Non-overlapping spans, sorted: `add` takes a span only if it overlaps none already taken."""

    def __init__(self, spans: list[tuple[int, int]] | None = None) -> None:
        self.spans: list[tuple[int, int]] = sorted(spans or [])

    def free(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self.spans, (start, end))
        return ((i == 0 or self.spans[i - 1][1] <= start) and
                (i == len(self.spans) or self.spans[i][0] >= end))

    def add(self, start: int, end: int) -> bool:
        if start >= end or not self.free(start, end):
            return False
        bisect.insort(self.spans, (start, end))
        return True


class _Claims:
    """Hits whose spans do not overlap (pseudonyms already in the input count as taken)."""

    def __init__(self, text: str) -> None:
        self.hits: list[Hit] = []
        self.taken = Spans([m.span() for m in PSEUDONYM_RE.finditer(text)] if "<" in text else [])

    def add(self, start: int, end: int, kind: str, rule: str) -> None:
        if self.taken.add(start, end):
            self.hits.append(Hit(start, end, kind, rule))


def _value_kind(name: str, value: str, sep: str, text: str = "", pos: int = 0) -> str | None:
    """The kind a `name<sep>value` pair hides, or None: kept. text, pos: where the pair was found."""
    rule = rules.name_rule(name)
    if rule is None and rules.keyed_secret(name, value.strip("'\"")):
        return "KEY"
    if rule is not None and rule.kind == rules.OAUTH_CONTEXT and _written_near(text, pos, 400, rules.OAUTH_PATH,
                                                                                _OAUTH_WORDS):
        return "CODE"  # `code=`/`state=` where an OAuth request or response is written nearby
    if name.lower() == "name" and _written_near(text, pos, 300, _PERSON_WORDS) and plausible("PERSON", value):
        return "PERSON"  # `name: "…"` among a person's claims (a token's payload pasted as text)
    if rule is None or rule.kind in (rules.KEEP, rules.URL, rules.OAUTH_CONTEXT):
        return None
    if rule.kind in (rules.COOKIE, rules.AUTHORIZATION):
        return None  # whole header lines: _AUTH_LINE and _COOKIE_LINE
    if value.lower().strip("'\"") in rules.NOT_SECRET_WORDS or PSEUDONYM_RE.fullmatch(value) or rules.code_value(value):
        return None
    if ((name.startswith("this.") or _JS_DECLARATION.search(text, max(0, pos - 8), pos))
            and "." in value and _MEMBER_CHAIN.fullmatch(value)):
        return None  # `var user = parameters.user`, `this.credentials=e.credentials`: a script's code
    if rule.kind not in rules.PERSONAL_KINDS and rules.not_secret(rule.kind, value):
        return None
    # `password: X` in prose is a secret when X looks like one; `password=X` always is
    if (sep == ":" and rule.kind not in rules.PERSONAL_KINDS and not rules.looks_secret(value)
            and not (rule.kind == "PASSWORD" and value.isdigit() and len(value) >= 4)):  # `pin: 4821`
        return None
    if rule.kind in rules.PERSONAL_KINDS and not plausible(rule.kind, value):
        return None  # `mac:e.platform` in minified code is not a MAC address
    return "SECRET" if rule.kind == rules.SAML else rule.kind


_MAC = re.compile(r"[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}")
_WORDS = re.compile(r"[\w .@'+,/-]{2,80}")


def plausible(kind: str, value: str) -> bool:
    """Whether a value after a personal name in free text has that kind's shape."""
    if kind == "MAC":
        return _MAC.fullmatch(value) is not None
    if kind == "IP":
        return rules.ip_ok(value.strip("[]"))
    if kind == "PHONE":
        return sum(ch.isdigit() for ch in value) >= 6
    if kind == "EMAIL":
        return "@" in value or "%40" in value
    if kind == "DATE":
        return any(ch.isdigit() for ch in value)
    if kind == "PERSON":  # not a path (`Codertocat/Hello-World`, a repository's full name)
        return "/" not in value
    if kind == "USER":  # not a structured header's boolean (`Sec-Fetch-User: ?1`), nor a system's account (by
        plain = value.strip("'\"")  # name, or by a number below 1000: `uid=0`), nor a field left empty (`-`)
        return (value not in ("?0", "?1", "-") and plain.lower() not in rules.SYSTEM_ACCOUNTS
                and not (plain.isdigit() and int(plain) < 1000))
    return _WORDS.fullmatch(value) is not None


def find(text: str) -> list[Hit]:
    claims = _Claims(text)
    for rule, m, group in _FIRST.hits(text):  # private keys, JWE, JWT: before URLs that may carry them
        claims.add(*m.span(group), rule.kind, rule.id)
    if "://" in text:
        for m in _URL.finditer(text):
            url = m.group(0).rstrip(".,;:!?)]}")
            claims.add(m.start(), m.start() + len(url), rules.URL, "url")
    if "?" in text:  # `GET /cb?email=a%40b.test HTTP/1.1`: a URL without scheme and host
        for m in _RELATIVE_QUERY.finditer(text):
            claims.add(*m.span(), rules.QUERY, "query")
    if "uthoriz" in text or "UTHORIZ" in text:
        for m in _AUTH_LINE.finditer(text):
            group = next(i for i in (1, 2, 3) if m.group(i) is not None)
            claims.add(*m.span(group), rules.AUTHORIZATION, "authorization")
    if "ookie" in text or "OOKIE" in text:
        for m in _COOKIE_LINE.finditer(text):
            if m.group(1):
                claims.add(*m.span(2), rules.COOKIE, "set_cookie")
                continue
            # one claim a cookie: a value hidden by hand (`esctx=…<REDACTED>`) leaves the others to be redacted
            for cookie in _COOKIE_PAIR.finditer(text, *m.span(2)):
                if cookie.group(0)[:1] != "[":  # `Cookie: [342 bytes were stripped]` (Chrome's NetLog)
                    claims.add(*cookie.span(), rules.COOKIE, "cookie")
    if any(scheme in text for scheme in _SCHEMES):  # every _BARE_SCHEME match holds one of them
        for m in _BARE_SCHEME.finditer(text):
            claims.add(*m.span(1), "TOKEN", "authorization")
    mail_ids: Spans | None = None
    for rule, m, group in _VALUES.hits(text):
        if rule.kind == "IP" and (rules.SERVER_IP_CONTEXT.search(text, max(0, m.start() - 40), m.start())
                                  or _PORT_AND_PATH.match(text, m.end())):
            continue  # a server's address: named so, or with a port and a path after it (`10.0.0.5:8090/api`)
        if rule.kind == "EMAIL":  # a mail's id (`Message-ID: <…@mail.example>`, an image's `cid:`) is no address
            if mail_ids is None:  # looked for once, at the text's first email
                mail_ids = Spans([id_.span() for id_ in rules.MAIL_ID.finditer(text)])
            if not mail_ids.free(m.start(), m.end()):
                continue
        claims.add(*m.span(group), rule.kind, rule.id)
    for end in _LABEL_END.finditer(text):  # `Session ID: "d0bf…"`, `Client Secret = …`: a label of two words
        head = _LABEL_HEAD.search(text, max(0, end.start() - 21), end.start())  # (a page copied as text)
        label = _LABEL.match(text, head.start()) if head is not None and head.group(0) not in _JS_WORDS else None
        if label is not None:
            group = next(i for i in (3, 4, 5) if label.group(i) is not None)
            kind = _value_kind(label.group(1), label.group(group), label.group(2), text, label.start())
            if kind is not None:
                claims.add(label.start(group), _name_end(text, label, group, kind), kind, "name_value")
    if ":\n" in text:  # `botocore.auth - DEBUG - Signature:` and the signature alone on the next line
        for m in _NEXT_LINE_VALUE.finditer(text):
            kind = _value_kind(m.group(1), m.group(2), ":", text, m.start())
            if kind is not None and kind not in rules.PERSONAL_KINDS:
                claims.add(*m.span(2), kind, "name_value")
    pos = 0 if "=" in text or ":" in text else len(text)
    while (found := _NAME_VALUE.search(text, pos)) is not None:
        m = found
        group = next(i for i in (3, 4, 5, 6, 7) if m.group(i) is not None)
        kind = _value_kind(m.group(1), m.group(group), m.group(2), text, m.start())
        if kind is not None:
            claims.add(m.start(group), _name_end(text, m, group, kind), kind, "name_value")
        # `a: token=X`: a value that is not a secret may hold the next pair, so look again inside it
        pos = m.end() if kind is not None else m.start(group)
    if "</" in text:
        for m in _XML_ELEMENT.finditer(text):
            kind = _value_kind(m.group(1).rsplit(":", 1)[-1], m.group(2), "=")
            if kind is not None:
                claims.add(*m.span(2), kind, "name_value")
    if "-" in text and _FLAG_START.search(text):
        _command_lines(text, claims)
    # casefold, as the pattern's IGNORECASE does: "ſecret" (long s) is "secret" to both, never skipped here
    folded = text.casefold()
    if any(word in folded for word in rules.SECRET_WORDS) or ("key" in folded and rules.API_KEY_WORD.search(text)):
        for m in rules.SECRET_WORD_IN_PROSE.finditer(text):
            value = m.group(1).rstrip(".:!?]}")  # the sentence's or the bracket's end is not the secret's
            if rules.looks_secret(value) and not _RESOURCE_COMMAND.search(_line(text, m.start())):
                claims.add(m.start(1), m.start(1) + len(value), "SECRET", "secret_word")
        last = -1
        for word in _SECRET_PART.finditer(text):  # `aws configure set aws_secret_access_key X`, `requirepass X`
            start = word.start()  # _SPACED_NAME from the start of the identifier holding the word (a name is
            while start > word.start() - 64 and start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
                start -= 1  # at most 64 characters: a run longer than that, base64 say, is no name)
            if start == last or (pair := _SPACED_NAME.match(text, start)) is None:
                continue
            last = start
            if pair.group(1).lower() in _PROSE_WORDS:
                continue  # `secret X` is the prose rule's above (a resource's name after kubectl's `secret`)
            value = pair.group(2).rstrip(".:!?]}")
            if len(value) < 16 and not any(ch.isdigit() for ch in value):
                continue  # a word in prose (`secretKeyRef someName`); a generated value has digits or length
            kind = _value_kind(pair.group(1), value, ":", text, pair.start())
            if kind is not None and kind not in rules.PERSONAL_KINDS:
                claims.add(pair.start(2), pair.start(2) + len(value), kind, "name_value")
    for m in _BASE64_RUN.finditer(text):
        claims.add(*m.span(), "B64", "base64")
    return sorted(claims.hits)


# An identifier naming a secret (`aws_secret_access_key`, `requirepass`, `_authToken`), a space, then its value:
# a command's or a config directive's argument. The value is judged as after `name:` (it must look like one).
_SECRET_PART = re.compile(r"(?i)token|pass|secret|key|pwd")
_SPACED_NAME = re.compile(r"(?i)(?<![\w.$-])([A-Za-z_][\w.-]*(?:token|pass|secret|key|pwd)[\w.-]*)[ \t]+[\"']?"
                          r"(?!-)([^\s\"',;()=:<>]{8,})")
_PROSE_WORDS = frozenset({"token", "tokens", "password", "passwd", "secret", "secrets", "passcode", "key", "keys"})
# `kubectl get secret app-creds`: a command naming a cluster's resources names a Secret object, never its value
_RESOURCE_COMMAND = re.compile(r"\b(?:kubectl|oc|helm|gcloud|aws|az|vault|gh)\s")


def _command_lines(text: str, claims: _Claims) -> None:
    # each pattern runs only on a text holding its literal: "-u" (also in "--user"), "--", "-p" (also in "--password-stdin")
    for m in _USER_PASS_FLAG.finditer(text) if "-u" in text else ():
        if m.group(1).isdigit() and m.group(2).isdigit():
            continue  # `docker run -u 501:20`: a user and a group id
        claims.add(*m.span(1), "USER", "command_line")
        claims.add(*m.span(2), "PASSWORD", "command_line")
    for m in _FLAG.finditer(text) if "--" in text else ():
        value = m.group(2).strip("'\"")
        kind = _value_kind(m.group(1), value, "=")
        if kind is not None:  # inside its quotes: the same value gets the same pseudonym quoted or not
            start = m.start(2) + (m.group(2)[:1] in "'\"" and len(value) < len(m.group(2)))
            claims.add(start, start + len(value), kind, "command_line")
    for m in _P_ATTACHED.finditer(text) if "-p" in text else ():
        if re.search(r"\b(?:mysql\w*|mariadb\w*)\b", _line(text, m.start())):
            claims.add(*m.span(1), "PASSWORD", "command_line")
    for m in _P_SEPARATE.finditer(text) if "-p" in text else ():
        if re.search(r"\blogin\b", _line(text, m.start())):
            claims.add(*m.span(1), "PASSWORD", "command_line")
