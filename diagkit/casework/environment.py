"""Facts about the computer `collect` runs on: OS, Python, diagkit, proxies, time zone and clock offset.

Only what helps an engineer reproduce the case; no user names, home paths or host names. Proxy URLs
lose their user:password part here, and the whole dict still goes through the redactor before packing.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
CLOCK_SKEW_LIMIT_S = 60  # SAML and most JWT validators allow a few minutes at most; a minute is worth saying


def _without_credentials(value: str) -> str:
    try:
        parts = urlsplit(value if "://" in value else "//" + value)
    except ValueError:
        return "<unparseable>"
    if parts.username is None and parts.password is None:
        return value
    host = parts.hostname or ""
    netloc = f"<credentials>@{host}" + (f":{parts.port}" if parts.port else "")
    text = urlunsplit(parts._replace(netloc=netloc))
    return text if "://" in value else text.lstrip("/")


def proxy_settings() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in _PROXY_VARS:
        value = os.environ.get(name) or os.environ.get(name.lower())
        if value:
            found[name.lower()] = value if name == "NO_PROXY" else _without_credentials(value)
    return found


def timezone_facts() -> dict[str, Any]:
    local = _dt.datetime.now().astimezone()
    offset = local.utcoffset() or _dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    facts: dict[str, Any] = {"name": local.tzname() or "", "utc_offset": f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"}
    if os.environ.get("TZ"):
        facts["tz_env"] = os.environ["TZ"]
    return facts


def gather(probe_names: list[str] | None = None) -> dict[str, Any]:
    """The environment facts; integers and strings only (the packet manifest refuses floats)."""
    from diagkit import __version__

    facts: dict[str, Any] = {
        "os": {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
               "platform": platform.platform(terse=True)},
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "diagkit": {"version": __version__},
        "proxy": proxy_settings(),
        "timezone": timezone_facts(),
        "fixed_clock": bool(os.environ.get("DIAGKIT_NOW")),
        "stdin_is_terminal": sys.stdin.isatty() if hasattr(sys.stdin, "isatty") else False,
    }
    if probe_names:
        facts["probes"] = _probe_versions(probe_names)
    return facts


def _probe_versions(names: list[str]) -> dict[str, str]:
    from diagkit import plugins

    registered = plugins.registered()
    return {n: registered[n].distribution for n in sorted(set(names)) if n in registered}


def clock_offset(url: str, timeout: float) -> dict[str, Any] | None:
    """This computer's clock compared with the Date header of `url` (HEAD, no redirects, certificate not
    verified: only the time is read). None when the server cannot be reached or sends no usable Date.

    `offset_s` is local minus server: positive means this computer is ahead. Date has one-second
    resolution, so the offset is whole seconds, give or take one.
    """
    import httpx

    from diagkit.context import Context, parse_http_date

    ctx = Context(timeout=timeout)
    try:
        with ctx.http_client(verify=False) as client:
            sent = time.time()
            response = client.head(url)
            received = time.time()
    except (httpx.HTTPError, OSError, ValueError):
        return None
    server = parse_http_date(response.headers.get("date"), assume_utc=False)
    if server is None or server.tzinfo is None:
        return None
    # The server's second began somewhere in [Date, Date+1): its midpoint is the best single estimate.
    server_s = server.timestamp() + 0.5
    local_s = (sent + received) / 2
    parts = urlsplit(url)
    return {
        "offset_s": round(local_s - server_s),
        "source": f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}",
        "round_trip_ms": round((received - sent) * 1000),
        "resolution_s": 1,
    }


def clock_probe_url(probe: str, target: str) -> str | None:
    """An https/http origin worth asking for the time, from a probe run's target."""
    if "://" in target:
        parts = urlsplit(target)
        if parts.scheme in ("http", "https") and parts.hostname:
            return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/"
        return None
    if probe == "tls":
        from diagkit.formats.urls import split_host_port

        try:
            host, port = split_host_port(target)
        except Exception:  # noqa: BLE001 - a bad target simply gives no clock source
            return None
        host = f"[{host}]" if ":" in host else host
        return f"https://{host}:{port}/"
    return None
