"""Asking DNS: the resolvers to ask (given, or the system's), one resolver asked with UDP and a TCP retry,
CNAME chains followed hop by hop, SERVFAIL explained, and the operating system's own lookup."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from diagkit.errors import InputError
from diagkit.formats.urls import authority_parts, is_ip

MAX_CHAIN = 16
# Lets tests and containers point "the system's resolvers" somewhere else: "IP[:PORT],IP[:PORT]".
SYSTEM_RESOLVERS_ENV = "DIAGKIT_SYSTEM_RESOLVERS"


@dataclass(frozen=True)
class Resolver:
    ip: str
    port: int = 53
    source: str = "--resolver"  # or "system"

    @property
    def label(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}"


@dataclass
class Outcome:
    """What one resolver said about the name, after following the CNAME chain."""

    resolver: Resolver
    # NOERROR, NODATA, NXDOMAIN, SERVFAIL, REFUSED, other rcode, timeout, unreachable, tcp_failed
    status: str = "timeout"
    answers: list[dict[str, Any]] = field(default_factory=list)
    chain: list[dict[str, Any]] = field(default_factory=list)
    ede: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None  # "loop", "dangling", "too_long"
    final_name: str = ""
    error: str | None = None
    queries: int = 0
    elapsed_ms: int = 0
    truncated: bool = False  # some UDP answer had TC=1, so the query was repeated over TCP
    negative: dict[str, Any] | None = None  # NXDOMAIN/NODATA: the SOA and the negative-cache TTL (RFC 2308)

    def comparable(self) -> tuple[str, tuple[str, ...]]:
        # TTLs differ between caches by design; only the rcode and the record set matter.
        return self.status, tuple(sorted(a["value"] for a in self.answers))

    def to_fact(self) -> dict[str, Any]:
        fact: dict[str, Any] = {"resolver": self.resolver.label, "source": self.resolver.source, "status": self.status}
        if self.answers:
            fact["answers"] = self.answers
        if self.chain:
            fact["cname_chain"] = self.chain
        if self.ede:
            fact["extended_errors"] = self.ede
        if self.problem:
            fact["cname_problem"] = self.problem
        if self.error:
            fact["error"] = self.error
        if self.truncated:
            fact["truncated_udp"] = True
        if self.negative:
            fact["negative_cache"] = self.negative
        fact["queries"] = self.queries
        fact["time_ms"] = self.elapsed_ms
        return fact


def parse_resolver(text: str, source: str = "--resolver") -> Resolver:
    """IP, IP:PORT, IPv6, or [IPv6]:PORT."""
    value = text.strip()
    if value.startswith("[") and re.fullmatch(r"\[[^\]]*\](?::.*)?", value) is None:
        raise InputError(f"resolver '{text}' is not IP[:PORT] (IPv6 with a port is written [::1]:5353)")
    host, port_text = authority_parts(value)
    port = _port(text, port_text) if port_text or value.endswith(":") else 53
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"resolver '{text}' is not an IP address (expected IP[:PORT], e.g. 9.9.9.9 or [::1]:5353)") from None
    return Resolver(str(ip), port, source)


def _port(text: str, port_text: str) -> int:
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InputError(f"resolver '{text}': port '{port_text}' is not a number between 1 and 65535")
    return int(port_text)


def system_resolvers() -> list[Resolver]:
    override = os.environ.get(SYSTEM_RESOLVERS_ENV)
    if override is not None:
        return [parse_resolver(item, "system") for item in override.split(",") if item.strip()]
    import dns.resolver

    try:
        configured = dns.resolver.Resolver(configure=True)
    except dns.resolver.NoResolverConfiguration:
        return []
    return [Resolver(str(ipaddress.ip_address(ns)), configured.port, "system")
            for ns in configured.nameservers if isinstance(ns, str) and is_ip(ns)]




# ---------------------------------------------------------------- asking one resolver


class _Budget:
    """One resolver's whole conversation must fit in a bounded time, not only each query."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class TCPFallbackFailed(Exception):
    """The resolver answered over UDP with TC=1 (truncated) and the same query over TCP then failed."""

    def __init__(self, reason: str, udp_records: int) -> None:
        super().__init__(reason)
        self.reason, self.udp_records = reason, udp_records


def _exchange(query: Any, resolver: Resolver, timeout: float, outcome: Outcome) -> Any:
    """UDP first; a truncated answer is asked again over TCP (RFC 7766 §5), as every stub resolver does.

    Unlike dns.query.udp_with_fallback, a TCP failure after a truncated answer is kept apart from "no
    answer at all": the resolver did answer, only its TCP side (or a firewall on port 53/TCP) is broken.
    """
    import dns.exception
    import dns.message
    import dns.query

    started = time.monotonic()
    try:
        return dns.query.udp(query, resolver.ip, timeout=timeout, port=resolver.port, raise_on_truncation=True)
    except dns.message.Truncated as exc:
        outcome.truncated = True
        partial = exc.message()
        udp_records = sum(len(rrset) for rrset in partial.answer) if partial is not None else 0
    left = max(0.1, timeout - (time.monotonic() - started))
    try:
        return dns.query.tcp(query, resolver.ip, timeout=left, port=resolver.port)
    except dns.exception.Timeout:
        raise TCPFallbackFailed(f"no answer over TCP within {timeout:g} s", udp_records) from None
    except ConnectionRefusedError:
        raise TCPFallbackFailed("TCP connection refused (nothing listens on port "
                                f"{resolver.port}/TCP, or a firewall rejects it)", udp_records) from None
    except (OSError, EOFError) as exc:
        what = "the connection was closed without an answer" if isinstance(exc, EOFError) else \
            (exc.strerror or type(exc).__name__)
        raise TCPFallbackFailed(f"TCP query failed: {what}", udp_records) from None
    except dns.exception.DNSException as exc:
        raise TCPFallbackFailed(f"TCP answer unreadable: {type(exc).__name__}", udp_records) from None


def _query(resolver: Resolver, qname: Any, rdtype: Any, timeout: float, outcome: Outcome) -> Any:
    """One query with EDNS (so Extended DNS Errors can come back); retried without EDNS on FORMERR."""
    import dns.message
    import dns.rcode

    if timeout <= 0:
        raise TimeoutError
    outcome.queries += 1
    query = dns.message.make_query(qname, rdtype, use_edns=0, payload=1232)
    response = _exchange(query, resolver, timeout, outcome)
    if response.rcode() == dns.rcode.FORMERR:
        outcome.queries += 1
        query = dns.message.make_query(qname, rdtype, use_edns=False)
        response = _exchange(query, resolver, timeout, outcome)
    for ede in response.extended_errors():
        item = {"code": int(ede.code), "name": _ede_name(ede.code), "text": ede.text or ""}
        if item not in outcome.ede:
            outcome.ede.append(item)
    return response


def negative_cache(response: Any) -> dict[str, Any] | None:
    """How long resolvers cache this NXDOMAIN/NODATA: min(SOA TTL, SOA MINIMUM) from the authority
    section (RFC 2308 §3 and §5). None when the answer carries no SOA (then it is not cached at all)."""
    import dns.rdatatype

    soa = next((rr for rr in response.authority if rr.rdtype == dns.rdatatype.SOA and len(rr)), None)
    if soa is None:
        return None
    minimum = int(soa[0].minimum)
    return {"ttl": min(int(soa.ttl), minimum), "soa_zone": soa.name.to_text(), "soa_ttl": int(soa.ttl),
            "soa_minimum": minimum}


def _ede_name(code: Any) -> str:
    import dns.edns

    try:
        return dns.edns.EDECode(int(code)).name
    except ValueError:
        return str(int(code))


def _walk_answer(response: Any, start: Any, rdtype: Any, outcome: Outcome, seen: set[Any]) -> tuple[Any, list[Any], bool]:
    """Follow the CNAMEs inside one answer from `start`; returns (last name, its records of rdtype, looped)."""
    import dns.rdatatype

    name = start
    while True:
        cname = next((rr for rr in response.answer if rr.name == name and rr.rdtype == dns.rdatatype.CNAME), None)
        if cname is None or rdtype == dns.rdatatype.CNAME:
            break
        target = cname[0].target
        outcome.chain.append({"name": name.to_text(), "target": target.to_text(), "ttl": cname.ttl})
        if target in seen:
            return target, [], True
        seen.add(target)
        name = target
        if len(outcome.chain) >= MAX_CHAIN:
            break
    records = [rr for rr in response.answer if rr.name == name and rr.rdtype == rdtype]
    return name, records, False


def ask(resolver: Resolver, qname: Any, rdtype: Any, timeout: float) -> Outcome:
    """The full story from one resolver: rcode, CNAME chain (each hop queried), final records."""
    import dns.exception
    import dns.rcode

    outcome = Outcome(resolver)
    budget = _Budget(timeout * 2)
    t0 = time.monotonic()
    try:
        _follow(resolver, qname, rdtype, timeout, budget, outcome)
    except TCPFallbackFailed as exc:
        outcome.status = "tcp_failed"
        outcome.error = exc.reason
        outcome.answers = []
        if exc.udp_records:
            outcome.error += f" (the truncated UDP answer held {exc.udp_records} record(s))"
    except (dns.exception.Timeout, TimeoutError):
        outcome.status = "timeout"
        outcome.error = f"no answer within {timeout:g} s"
    except OSError as exc:
        outcome.status = "unreachable"
        outcome.error = exc.strerror or type(exc).__name__
    except dns.exception.DNSException as exc:
        outcome.status = "bad_response"
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.elapsed_ms = int((time.monotonic() - t0) * 1000)
    return outcome


def _follow(resolver: Resolver, qname: Any, rdtype: Any, timeout: float, budget: _Budget, outcome: Outcome) -> None:
    import dns.rcode

    current = qname
    seen = {qname}
    while True:
        response = _query(resolver, current, rdtype, min(timeout, budget.left()), outcome)
        rcode = response.rcode()
        last, records, looped = _walk_answer(response, current, rdtype, outcome, seen)
        outcome.final_name = last.to_text()
        if looped:
            outcome.status, outcome.problem = "NOERROR" if rcode == dns.rcode.NOERROR else dns.rcode.to_text(rcode), "loop"
            return
        if len(outcome.chain) >= MAX_CHAIN and not records:
            outcome.status, outcome.problem = dns.rcode.to_text(rcode), "too_long"
            return
        if rcode == dns.rcode.NXDOMAIN:
            # RFC 6604: the rcode speaks about the last name of the chain, so a chain ending here dangles.
            outcome.status = "NXDOMAIN"
            outcome.negative = negative_cache(response)
            if outcome.chain:
                outcome.problem = "dangling"
            return
        if rcode == dns.rcode.SERVFAIL and outcome.chain == [] and rdtype != _cname_type():
            outcome.status = "SERVFAIL"
            # Resolvers often answer a looping or broken chain with SERVFAIL; walk it by CNAME queries to say why.
            _explain_servfail(resolver, current, timeout, budget, outcome)
            return
        if rcode != dns.rcode.NOERROR:
            outcome.status = dns.rcode.to_text(rcode)
            return
        if records:
            outcome.status = "NOERROR"
            outcome.answers = [{"name": rr.name.to_text(), "type": _type_text(rr.rdtype), "ttl": rr.ttl,
                                "value": rd.to_text()} for rr in records for rd in rr]
            return
        if last != current:
            current = last  # a partial chain: ask about the last target ourselves
            continue
        outcome.status = "NODATA"
        outcome.negative = negative_cache(response)
        return


def _explain_servfail(resolver: Resolver, start: Any, timeout: float, budget: _Budget, outcome: Outcome) -> None:
    import dns.exception
    import dns.rcode
    import dns.rdatatype

    name, seen = start, {start}
    hops: list[dict[str, Any]] = []
    try:
        while len(hops) < MAX_CHAIN:
            response = _query(resolver, name, dns.rdatatype.CNAME, min(timeout, budget.left()), outcome)
            cname = next((rr for rr in response.answer if rr.name == name and rr.rdtype == dns.rdatatype.CNAME), None)
            if response.rcode() == dns.rcode.NXDOMAIN and hops:
                outcome.chain, outcome.problem = hops, "dangling"
                return
            if cname is None:
                return
            target = cname[0].target
            hops.append({"name": name.to_text(), "target": target.to_text(), "ttl": cname.ttl})
            if target in seen:
                outcome.chain, outcome.problem = hops, "loop"
                return
            seen.add(target)
            name = target
    except (dns.exception.DNSException, OSError, TimeoutError, TCPFallbackFailed):
        return  # the SERVFAIL itself is the finding; the explanation is a bonus


def _cname_type() -> Any:
    import dns.rdatatype

    return dns.rdatatype.CNAME


def _type_text(rdtype: Any) -> str:
    import dns.rdatatype

    return dns.rdatatype.to_text(rdtype)


# ---------------------------------------------------------------- the OS view


def os_lookup(name: str, rdtype: str, timeout: float) -> dict[str, Any]:
    """getaddrinfo, as applications see it (hosts file, VPN split DNS, nsswitch); bounded by a thread."""
    family = socket.AF_INET if rdtype == "A" else socket.AF_INET6
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            infos = socket.getaddrinfo(name.rstrip("."), None, family, socket.SOCK_STREAM)
            result["addresses"] = sorted({str(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos})
        except socket.gaierror as exc:
            result["error"] = exc.strerror or str(exc)
            result["addresses"] = []

    thread = threading.Thread(target=work, name="getaddrinfo", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return {"addresses": [], "error": f"getaddrinfo did not return within {timeout:g} s", "timeout": True}
    return result
