"""Cookies in a HAR as the SAML flow checks need them: which the SP set (with SameSite/Secure/Domain/Path)
and which a request carried.

Exporters differ: Chrome fills `cookies` arrays (with `sameSite`) and the headers, Firefox joins several
Set-Cookie lines with newlines in one header, Safari may leave the arrays empty; so headers and arrays are
both read, the header winning. Only names and attributes are kept, never values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from diagkit.formats import har as hf
from diagkit.formats.har import parse_har_time


def url_parts(url: str | None) -> tuple[str, str, str]:
    """(scheme, lower-case host, path) of a URL; empty parts for one that does not parse (crafted HARs)."""
    try:
        parts = urlsplit(url or "")
        return parts.scheme.lower(), (parts.hostname or "").lower(), parts.path or "/"
    except ValueError:
        return "", "", "/"


@dataclass
class Cookie:
    name: str
    domain: str  # the host that set it, or the Domain attribute without its leading dot
    host_only: bool
    path: str
    samesite: str | None  # as written: "Lax", "Strict", "None", or None when absent
    secure: bool
    entry: int
    set_by: str
    deleted: bool = False

    def applies_to(self, host: str, path: str) -> bool:
        host = host.lower()
        if self.host_only:
            if host != self.domain:
                return False
        elif host != self.domain and not host.endswith("." + self.domain):
            return False
        return path == self.path or path.startswith(self.path.rstrip("/") + "/") or self.path == "/"

    def describe(self) -> str:
        if self.samesite is None:
            return "no SameSite attribute, so SameSite=Lax in browsers"
        text = f"SameSite={self.samesite}"
        return text + ("" if self.secure or self.samesite.lower() != "none" else " without Secure")


def site(host: str) -> str:
    """A rough registrable domain (last two labels): enough to tell an IdP's site from an SP's."""
    if re.fullmatch(r"[\d.]+|\[?[0-9a-fA-F:]+\]?", host):
        return host
    return ".".join(host.lower().rstrip(".").split(".")[-2:])


def set_cookies(resp: dict, url: str, index: int, shown: str) -> list[Cookie]:
    """Cookies a response sets, from Set-Cookie headers and the exporter's cookies array."""
    _scheme, host, path = url_parts(url)
    # RFC 6265 §5.1.4: without Path, the directory of the request path.
    default_path = (path.rsplit("/", 1)[0] or "/") if path.startswith("/") else "/"
    found: dict[str, Cookie] = {}
    for value in hf.headers(resp, "set-cookie"):
        for line in value.split("\n"):  # Firefox joins several Set-Cookie lines with newlines
            cookie = _parse_set_cookie(line, host, default_path, index, shown)
            if cookie is not None:
                found[cookie.name] = cookie
    listed = resp.get("cookies")
    for item in listed if isinstance(listed, list) else ():
        if not isinstance(item, dict) or not item.get("name") or str(item["name"]) in found:
            continue
        domain = str(item.get("domain") or "").lower()
        samesite = item.get("sameSite", item.get("samesite"))
        expires = parse_har_time(item.get("expires"))
        found[str(item["name"])] = Cookie(
            name=str(item["name"]), domain=domain.lstrip(".") or host, host_only=not domain,
            path=str(item.get("path") or default_path), samesite=str(samesite).capitalize() if samesite else None,
            secure=bool(item.get("secure")), entry=index, set_by=shown,
            deleted=expires is not None and expires.year < 1980)
    return list(found.values())


def _parse_set_cookie(line: str, host: str, default_path: str, index: int, shown: str) -> Cookie | None:
    pair, *attrs = line.split(";")
    name, eq, value = pair.partition("=")
    name = name.strip()
    if not eq or not name:
        return None
    cookie = Cookie(name=name, domain=host, host_only=True, path=default_path, samesite=None, secure=False,
                    entry=index, set_by=shown)
    for attr in attrs:
        key, _, val = attr.partition("=")
        key, val = key.strip().lower(), val.strip()
        if key == "domain" and val:
            cookie.domain, cookie.host_only = val.lower().lstrip("."), False
        elif key == "path" and val.startswith("/"):
            cookie.path = val
        elif key == "samesite":
            cookie.samesite = val.capitalize() or None
        elif key == "secure":
            cookie.secure = True
        elif key == "max-age" and re.fullmatch(r"-?\d{1,18}", val) and int(val) <= 0:
            cookie.deleted = True
        elif key == "expires" and re.search(r"\b19[0-7]\d\b", val):
            cookie.deleted = True  # the usual "Thu, 01 Jan 1970" deletion
    return cookie


def sent_cookies(req: dict) -> set[str]:
    """Names of the cookies a request carried: its cookies array and its Cookie header(s)."""
    listed = req.get("cookies")
    items = listed if isinstance(listed, list) else []
    names = {str(c.get("name")) for c in items if isinstance(c, dict) and c.get("name")}
    for value in hf.headers(req, "cookie"):
        for part in value.split(";"):
            name = part.split("=", 1)[0].strip()
            if name:
                names.add(name)
    return names
