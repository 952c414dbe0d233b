"""Parser for WWW-Authenticate / Proxy-Authenticate header values (RFC 9110 §11.6.1, §11.3).

One header value may hold several challenges, a challenge holds either a token68 or a list of
auth-params, and quoted strings may contain commas and backslash escapes. Shared by the HTTP and
HAR probes and the redactor, so it is lenient: malformed pieces are skipped, never raised.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass, field

_TCHAR = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
_TOKEN68 = frozenset(string.ascii_letters + string.digits + "-._~+/")
_WS = " \t"

# Parameters that carry per-exchange secrets or opaque state; callers showing challenges hide these.
SENSITIVE_PARAMS = frozenset({"nonce", "opaque", "cnonce", "response", "data", "sid", "snonce"})


@dataclass
class Challenge:
    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None

    def is_scheme(self, name: str) -> bool:
        """Schemes compare case-insensitively (RFC 9110 §11.1)."""
        return self.scheme.lower() == name.lower()

    def safe_dict(self) -> dict[str, object]:
        """A display form without token68 data or nonce-like params."""
        params = {k: ("<redacted>" if k in SENSITIVE_PARAMS else v) for k, v in self.params.items()}
        out: dict[str, object] = {"scheme": self.scheme, "params": params}
        if self.token68 is not None:
            out["token68"] = "<present>"
        return out


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WS:
            self.pos += 1

    def skip_list_separators(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WS + ",":
            self.pos += 1

    def token(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _TCHAR:
            self.pos += 1
        return self.text[start:self.pos]

    def quoted_string(self) -> str:
        """Reads "..." with quoted-pairs; an unterminated string runs to the end (lenient)."""
        assert self.peek() == '"'
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if ch == '"':
                break
            out.append(ch)
        return "".join(out)

    def skip_to_comma(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] != ",":
            if self.text[self.pos] == '"':
                self.quoted_string()
            else:
                self.pos += 1

    def try_param(self) -> tuple[str, str] | None:
        """auth-param = token BWS "=" BWS ( token / quoted-string ); restores the position on failure."""
        start = self.pos
        name = self.token()
        if name:
            self.skip_ws()
            if self.peek() == "=":
                self.pos += 1
                self.skip_ws()
                if self.peek() == '"':
                    return name.lower(), self.quoted_string()
                value = self.token()
                if value:
                    return name.lower(), value
        self.pos = start
        return None

    def try_token68(self) -> str | None:
        """token68 must be followed by the end of the element (comma or end), else it is not one."""
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _TOKEN68:
            self.pos += 1
        if self.pos == start:
            return None
        while self.peek() == "=":
            self.pos += 1
        value = self.text[start:self.pos]
        self.skip_ws()
        if self.at_end() or self.peek() == ",":
            return value
        self.pos = start
        return None


def parse(value: str) -> list[Challenge]:
    """All challenges in one header value, in order. Param names are lower-cased; first one wins."""
    scanner = _Scanner(value or "")
    challenges: list[Challenge] = []
    current: Challenge | None = None
    while True:
        scanner.skip_list_separators()
        if scanner.at_end():
            break
        if current is not None:
            # After a comma: either another param of the current challenge or a new challenge.
            param = scanner.try_param()
            if param is not None:
                current.params.setdefault(*param)
                continue
        scheme = scanner.token()
        if not scheme:
            scanner.pos += 1  # stray character: skip it rather than fail the whole header
            scanner.skip_to_comma()
            continue
        current = Challenge(scheme)
        challenges.append(current)
        if scanner.at_end() or scanner.peek() not in _WS:
            continue  # bare scheme, followed by a comma or the end
        scanner.skip_ws()
        if scanner.at_end() or scanner.peek() == ",":
            continue
        param = scanner.try_param()
        if param is not None:
            current.params.setdefault(*param)
            continue
        token68 = scanner.try_token68()
        if token68 is not None:
            current.token68 = token68
            current = None  # a token68 challenge takes no params; what follows is a new challenge
            continue
        scanner.skip_to_comma()
    return challenges


def parse_all(values: Iterable[str]) -> list[Challenge]:
    """Challenges from repeated header fields, in order (equivalent to one comma-joined value)."""
    out: list[Challenge] = []
    for value in values:
        out.extend(parse(value))
    return out


def find(challenges: Iterable[Challenge], scheme: str) -> Challenge | None:
    for challenge in challenges:
        if challenge.is_scheme(scheme):
            return challenge
    return None
