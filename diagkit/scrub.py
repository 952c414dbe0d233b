"""Last-resort masking for text that leaves diagkit uncontrolled: exception messages and crash details.

Not the redactor (diagkit/redact/ is); this only makes sure a token in a URL or header that ended up
in an exception never reaches a terminal or a finding.
"""

from __future__ import annotations

import re

_PATTERNS = [
    # user:password@ in URLs
    # (the scheme run is bounded: unbounded, it rescanned "a.a.a..." from every word boundary, quadratic)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)[^/\s:@]+:[^/\s@]+@"), r"\1<REDACTED>@"),
    # query and fragment values
    (re.compile(r"([?&#;][A-Za-z0-9_.\-\[\]]+=)[^&#\s'\"]+"), r"\1<REDACTED>"),
    # Authorization-like schemes
    # Authorization schemes followed by a credential; "token" alone is too common a word in prose
    # ("the access token expired") to be treated as a scheme.
    (re.compile(r"\b((?i:bearer|basic|digest|negotiate|apikey|api-key))\s+"
                r"(?=\S*(?:[0-9+/=_.-]|[a-z][A-Z]|[A-Z][a-z]))[A-Za-z0-9._~+/=\-]{8,}"),
     r"\1 <REDACTED>"),
    # JWT / JWS compact form
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "<REDACTED-JWT>"),
    # key=value / key: value for secret-looking names
    (re.compile(r"(?i)\b((?:pass(?:word|wd)?|secret|token|api[_-]?key|cookie|session|auth[a-z]*)\s*[=:]\s*)\S+"),
     r"\1<REDACTED>"),
    # long opaque strings (keys, tokens)
    (re.compile(r"\b[A-Za-z0-9+/_\-]{32,}={0,2}"), "<REDACTED>"),
]


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub_message(text: str) -> str:
    """For diagkit's own one-line errors: URL credentials, query values, auth schemes and JWTs masked,
    but not long path-like strings, which error lines name on purpose."""
    for pattern, replacement in _PATTERNS[:4]:
        text = pattern.sub(replacement, text)
    return text


def scrub_traceback(text: str) -> str:
    """A traceback for --debug: messages and source lines scrubbed, `File "..."` location lines kept
    whole (the long-opaque-string rule would otherwise eat the paths the traceback is for)."""
    return "".join(line if line.lstrip().startswith('File "') else scrub(line)
                   for line in text.splitlines(keepends=True))


def scrub_url(text: str) -> str:
    """Mask user:password@ and query/fragment values of a URL, keeping scheme, host, path and names."""
    if "://" not in text:
        return text
    for pattern, replacement in _PATTERNS[:2]:
        text = pattern.sub(replacement, text)
    return text
