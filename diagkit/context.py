"""What a probe gets from the runner: the clock, the timeout, and factories for network clients.

Probes never open sockets themselves without a timeout from here; tests inject the clock.
"""

from __future__ import annotations

import datetime as _dt
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diagkit.errors import InputError
from diagkit.findings import utc_now

if TYPE_CHECKING:
    import dns.resolver
    import httpx


def env_clock() -> Callable[[], _dt.datetime]:
    """The real clock, or a fixed instant from DIAGKIT_NOW (ISO 8601) to reproduce a past run."""
    fixed = os.environ.get("DIAGKIT_NOW")
    if not fixed:
        return utc_now
    try:
        moment = parse_time(fixed)
    except ValueError:
        raise InputError(f"DIAGKIT_NOW={fixed!r} is not an ISO 8601 time") from None
    return lambda: moment


def parse_time(text: str) -> _dt.datetime:
    """ISO 8601 / RFC 3339 with Z or offset; naive times are UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = _dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment.astimezone(_dt.UTC)


def parse_http_date(value: str | None, *, assume_utc: bool = True) -> _dt.datetime | None:
    """An HTTP Date header (RFC 9110 §5.6.7); None when absent or not a date.

    A date without a zone ("-0000") is UTC unless assume_utc is False, for callers that would rather
    not trust it.
    """
    import email.utils

    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):  # IndexError: some malformed dates on older Pythons
        return None
    if moment is not None and moment.tzinfo is None and assume_utc:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment


@dataclass
class Context:
    timeout: float = 10.0
    clock: Callable[[], _dt.datetime] = field(default_factory=env_clock)
    ca_file: str | None = None
    debug: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def now(self) -> _dt.datetime:
        return self.clock()

    def ssl_context(self, *, verify: bool = True) -> ssl.SSLContext:
        """System trust store plus --ca-file (so a private CA works without losing public roots)."""
        if not verify:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        ctx = ssl.create_default_context()
        if self.ca_file:
            try:
                ctx.load_verify_locations(cafile=self.ca_file)
            except FileNotFoundError:
                raise InputError(f"CA file '{self.ca_file}' does not exist") from None
            except (ssl.SSLError, OSError) as exc:
                raise InputError(f"CA file '{self.ca_file}' is not a PEM certificate bundle ({exc})") from None
        return ctx

    def http_client(self, *, verify: bool = True, follow_redirects: bool = False, **kwargs: Any) -> httpx.Client:
        """An httpx client bounded by the timeout; honours HTTP(S)_PROXY/NO_PROXY and --ca-file."""
        import httpx

        return httpx.Client(
            timeout=httpx.Timeout(self.timeout),
            verify=self.ssl_context(verify=verify),
            follow_redirects=follow_redirects,
            trust_env=True,
            **kwargs,
        )

    def resolver(self, nameservers: list[str] | None = None, port: int = 53) -> dns.resolver.Resolver:
        """A dnspython resolver; the system's configuration unless nameservers are given."""
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=nameservers is None)
        if nameservers is not None:
            resolver.nameservers = list(nameservers)
            resolver.port = port
        resolver.timeout = self.timeout
        resolver.lifetime = self.timeout
        return resolver
