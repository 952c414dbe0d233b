"""Checklist templates: `{{ answers.NAME }}` and `{{ answers.NAME | FILTER }}` in probe targets and options,
filled from the customer's answers. Only these two forms exist, so a template can never run code."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from diagkit.formats.urls import authority_parts

# No braces inside a placeholder, so a line of "{{{{..." is scanned once (linear, never quadratic).
PLACEHOLDER = re.compile(r"\{\{([^{}\n]*)\}\}")
_INNER = re.compile(r"^\s*answers\.([a-z][a-z0-9_]*)\s*(?:\|\s*([a-z_]+)\s*)?$")


def split_hostport(text: str) -> tuple[str, int | None]:
    """HOST or HOST:PORT as a question takes it; an IPv6 host keeps its brackets, a port must be digits."""
    host, port = authority_parts(text)
    if text.startswith("["):
        host = f"[{host}]"
    if port and not port.isdigit():
        raise ValueError("port must be a number")
    return host, int(port) if port else None


def placeholders(template: str) -> list[str]:
    """Question names a template uses; ValueError for anything but `{{ answers.NAME [| FILTER] }}`."""
    names = []
    for match in PLACEHOLDER.finditer(template):
        inner = _INNER.match(match.group(1))
        if inner is None:
            raise ValueError(f"unsupported placeholder '{match.group(0)}' (use {{{{ answers.NAME }}}} "
                             f"or {{{{ answers.NAME | FILTER }}}})")
        if inner.group(2) and inner.group(2) not in FILTERS:
            raise ValueError(f"unknown filter '{inner.group(2)}' (filters: {', '.join(FILTERS)})")
        names.append(inner.group(1))
    if "{{" in PLACEHOLDER.sub("", template) or "}}" in PLACEHOLDER.sub("", template):
        raise ValueError("unbalanced '{{' or '}}' in a placeholder")
    return names


def _url_parts(value: str) -> tuple[str, str, int | None]:
    from urllib.parse import urlsplit

    if "://" in value:
        parts = urlsplit(value)
        return parts.scheme.lower(), parts.hostname or "", parts.port
    host, port = split_hostport(value)
    return "", host.strip("[]"), port


def _host(value: str) -> str:
    return _url_parts(value)[1]


def _port(value: str) -> str:
    scheme, _, port = _url_parts(value)
    return str(port or (80 if scheme == "http" else 443))


def _hostport(value: str) -> str:
    host = _host(value)
    return f"[{host}]:{_port(value)}" if ":" in host else f"{host}:{_port(value)}"


def _origin(value: str) -> str:
    scheme, host, port = _url_parts(value)
    scheme = scheme or "https"
    default = 80 if scheme == "http" else 443
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


FILTERS = {"host": _host, "port": _port, "hostport": _hostport, "origin": _origin}


def fill(template: str, answers: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """(filled text, []) or (None, missing question names). Values are inserted as text, never evaluated."""
    missing = [n for n in placeholders(template) if answers.get(n) in (None, "")]
    if missing:
        return None, sorted(set(missing))

    def substitute(match: re.Match[str]) -> str:
        inner = _INNER.match(match.group(1))
        assert inner is not None  # placeholders() checked every one
        value = answers[inner.group(1)]
        text = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        return FILTERS[inner.group(2)](text) if inner.group(2) else text

    return PLACEHOLDER.sub(substitute, template), []
