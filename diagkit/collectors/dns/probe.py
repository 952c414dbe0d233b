"""DNS probe: ask each resolver (and the OS) about a name, follow CNAMEs hop by hop, compare the answers.

Every resolver is asked separately, so a split-horizon or stale resolver shows up instead of being hidden
behind the first one that answers. CNAME chains are followed by querying each hop ourselves, so loops and
dangling targets are found even from a resolver that returns only part of the chain (or SERVFAIL).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from diagkit.context import Context
from diagkit.errors import InputError
from diagkit.probe import Option, Probe, Report

RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "CAA", "NS")
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
    host, port = value, 53
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InputError(f"resolver '{text}' is not IP[:PORT] (IPv6 with a port is written [::1]:5353)")
        if rest:
            port = _port(text, rest[1:])
    elif value.count(":") == 1:
        host, port_text = value.split(":")
        port = _port(text, port_text)
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
            for ns in configured.nameservers if isinstance(ns, str) and _is_ip(ns)]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


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


# ---------------------------------------------------------------- findings


def _report_outcome(report: Report, name: str, rtype: str, out: Outcome) -> None:
    where = out.resolver.label
    evidence: dict[str, Any] = {"resolver": where, "type": rtype}
    if out.ede:
        evidence["extended_errors"] = out.ede
    ede_text = "; ".join(f"EDE {e['code']} {e['name']}" + (f": {e['text']}" if e["text"] else "") for e in out.ede)
    ede_note = f" Extended DNS Error: {ede_text}." if ede_text else ""
    if out.problem == "loop" or out.problem == "too_long":
        evidence["cname_chain"] = out.chain
        what = "loops" if out.problem == "loop" else f"is longer than {MAX_CHAIN} hops"
        report.add("dns.cname.loop", f"The CNAME chain of {name} {what} ({where})",
                   detail=" -> ".join([out.chain[0]["name"], *(h["target"] for h in out.chain)])
                   + (f" (resolver said {out.status})" if out.status != "NOERROR" else "") + "." + ede_note,
                   evidence=evidence)
        return
    if out.problem == "dangling":
        evidence["cname_chain"] = out.chain
        evidence["dangling_target"] = out.chain[-1]["target"]
        if out.status == "NXDOMAIN":
            evidence.update(_negative_evidence(out))
        report.add("dns.cname.dangling", f"{name} is a CNAME to {out.chain[-1]['target']}, which does not exist ({where})",
                   detail=" -> ".join([out.chain[0]["name"], *(h["target"] for h in out.chain)])
                   + f": the last target is NXDOMAIN{' (the resolver answered ' + out.status + ')' if out.status != 'NXDOMAIN' else ''}."
                   + (_negative_note(out) if out.status == "NXDOMAIN" else "") + ede_note, evidence=evidence)
        return
    if out.chain:
        evidence["cname_chain"] = out.chain
    if out.status == "NOERROR":
        evidence["answers"] = [a["value"] for a in out.answers]
        report.add("dns.resolve.ok", f"{name} {rtype} resolves via {where} ({len(out.answers)} record(s))",
                   detail="Answer: " + ", ".join(evidence["answers"]), evidence=evidence)
    elif out.status == "NXDOMAIN":
        evidence.update(_negative_evidence(out))
        report.add("dns.resolve.nxdomain", f"{name} does not exist (NXDOMAIN from {where})",
                   detail=f"The resolver {where} says the name does not exist.{_negative_note(out)}{ede_note}",
                   evidence=evidence)
    elif out.status == "NODATA":
        final = out.final_name or name
        evidence.update(_negative_evidence(out))
        report.add("dns.resolve.nodata", f"{final} has no {rtype} record (NODATA from {where})",
                   detail=f"The name exists but has no {rtype} record.{_negative_note(out)}{ede_note}",
                   evidence=evidence)
    elif out.status == "SERVFAIL":
        report.add("dns.resolve.servfail", f"{where} failed to resolve {name} (SERVFAIL)",
                   detail=f"The resolver answered SERVFAIL.{ede_note}", evidence=evidence)
    elif out.status == "REFUSED":
        report.add("dns.resolve.refused", f"{where} refused the query for {name} (REFUSED)",
                   detail=f"The resolver answered REFUSED.{ede_note}", evidence=evidence)
    elif out.status == "timeout":
        report.add("dns.resolve.timeout", f"{where} did not answer within the timeout",
                   detail=f"No answer for {name} {rtype}: {out.error}.", evidence=evidence)
    elif out.status == "tcp_failed":
        evidence["truncated_udp"] = True
        evidence["tcp_error"] = out.error
        report.add("dns.tcp.failed", f"{where} answered over UDP, but the TCP retry failed",
                   detail=f"The UDP answer for {name} {rtype} was truncated (TC=1), so clients must ask again over "
                          f"TCP, and that failed: {out.error}. The resolver is reachable; its TCP side (or a "
                          "firewall dropping port 53/TCP) is broken, so large answers never arrive.",
                   evidence=evidence)
    elif out.status == "unreachable":
        report.add("dns.resolve.unreachable", f"{where} could not be reached",
                   detail=f"Sending the query failed: {out.error}.", evidence=evidence)
    else:
        evidence["rcode"] = out.status
        report.add("dns.resolve.error", f"{where} answered {out.status} for {name}",
                   detail=(out.error or f"The resolver answered {out.status}.") + ede_note, evidence=evidence)


def _negative_evidence(out: Outcome) -> dict[str, Any]:
    if out.negative is None:
        return {"negative_ttl": None}
    return {"negative_ttl": out.negative["ttl"], "soa": {k: v for k, v in out.negative.items() if k != "ttl"}}


def _negative_note(out: Outcome) -> str:
    """How long the "does not exist" answer is cached (RFC 2308): how long a new record stays invisible."""
    neg = out.negative
    if neg is None:
        return (" The answer carries no SOA record, so resolvers should not cache it (RFC 2308 §5): the "
                "negative-cache TTL is unknown.")
    return (f" Resolvers cache this negative answer for {neg['ttl']} s (negative-cache TTL = min(SOA TTL "
            f"{neg['soa_ttl']}, SOA MINIMUM {neg['soa_minimum']}) of {neg['soa_zone']}, RFC 2308 §5): a record "
            f"added now stays invisible through them for up to {neg['ttl']} s.")


# Address ranges that a public name should not resolve to (IANA special-purpose registries). The
# documentation ranges (192.0.2.0/24, 2001:db8::/32) are deliberately not listed, although Python's
# is_private includes them: they are examples, not a sign of split-horizon DNS or a sinkhole.
_NON_PUBLIC = (
    ("10.0.0.0/8", "private (RFC 1918)"), ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.168.0.0/16", "private (RFC 1918)"), ("100.64.0.0/10", "shared CGNAT space (RFC 6598)"),
    ("fc00::/7", "unique local (RFC 4193)"),
)


def address_kind(value: str) -> str | None:
    """What is special about an answer address, or None for an ordinary public one."""
    try:
        ip = ipaddress.ip_address(value.split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified (a DNS sinkhole answer)"
    return next((kind for net, kind in _NON_PUBLIC if ip in ipaddress.ip_network(net)), None)


def _report_private(report: Report, name: str, out: Outcome) -> None:
    special = [{"address": a["value"], "kind": kind} for a in out.answers
               if a["type"] in ("A", "AAAA") and (kind := address_kind(a["value"]))]
    if not special:
        return
    listed = ", ".join(f"{s['address']} ({s['kind']})" for s in special)
    report.add("dns.answer.private", f"{name} resolves to a non-public address via {out.resolver.label}: {listed}",
               detail="Clients outside this network (or a VPN) cannot reach such an address; an internal answer "
                      "usually means split-horizon DNS, a hosts-style override or a sinkhole.",
               evidence={"resolver": out.resolver.label, "addresses": special})


def _compare(report: Report, name: str, outcomes: list[Outcome]) -> None:
    answered = [o for o in outcomes if o.status not in ("timeout", "unreachable", "tcp_failed")]
    views = {o.resolver.label: o.comparable() for o in answered}
    if len(answered) >= 2 and len(set(views.values())) > 1:
        report.add("dns.resolvers.disagree", f"Resolvers give different answers for {name}",
                   detail="; ".join(f"{label}: {status} {', '.join(values) or '(no records)'}"
                                    for label, (status, values) in views.items()),
                   evidence={"answers": {label: {"status": s, "records": list(v)} for label, (s, v) in views.items()}})


def _compare_os(report: Report, name: str, rtype: str, outcomes: list[Outcome], lookup: dict[str, Any]) -> None:
    dns_addresses = {str(ipaddress.ip_address(a["value"])) for o in outcomes for a in o.answers
                     if a["type"] == rtype}
    os_addresses = set(lookup.get("addresses") or [])
    if lookup.get("timeout") or not any(o.status not in ("timeout", "unreachable", "tcp_failed") for o in outcomes):
        return  # nothing to compare against
    if os_addresses == dns_addresses or (os_addresses and os_addresses <= dns_addresses):
        return
    only_os = sorted(os_addresses - dns_addresses)
    report.add("dns.system.differs", f"The OS resolves {name} differently from DNS",
               detail=(f"getaddrinfo returned {', '.join(sorted(os_addresses)) or 'nothing'}"
                       + (f" ({lookup['error']})" if lookup.get("error") else "")
                       + f"; DNS returned {', '.join(sorted(dns_addresses)) or 'no address'}."),
               evidence={"getaddrinfo": sorted(os_addresses), "dns": sorted(dns_addresses), "only_in_os": only_os})


# ---------------------------------------------------------------- the probe


def run(ctx: Context, report: Report, target: str, type: str = "A", resolver: tuple[str, ...] = (),
        system: bool = False) -> None:
    import concurrent.futures

    import dns.exception
    import dns.name
    import dns.rdatatype

    rtype = (type or "A").upper()
    if rtype not in RECORD_TYPES:
        raise InputError(f"record type '{type}' is not one of {', '.join(RECORD_TYPES)}")
    try:
        qname = dns.name.from_text(target.strip().rstrip(".") + ".")
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise InputError(f"'{target}' is not a valid DNS name ({exc})") from None
    name = qname.to_text()
    given = [parse_resolver(r) for r in resolver]
    use_system = system or not given
    resolvers = given + (system_resolvers() if use_system else [])
    report.facts.update({"name": name, "type": rtype, "resolvers": []})
    if not resolvers:
        report.add("dns.resolve.unreachable", "No resolver to ask",
                   detail="No --resolver was given and the system has no resolver configured.")
        return
    rdtype = dns.rdatatype.from_text(rtype)
    want_os = use_system and rtype in ("A", "AAAA")
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(resolvers) + 1)) as pool:
        os_future = pool.submit(os_lookup, name, rtype, ctx.timeout) if want_os else None
        futures = [pool.submit(ask, r, qname, rdtype, ctx.timeout) for r in resolvers]
        outcomes = [f.result() for f in futures]
        lookup = os_future.result() if os_future else None
    report.facts["resolvers"] = [o.to_fact() for o in outcomes]
    shown = name.rstrip(".") or "."
    for out in outcomes:
        _report_outcome(report, shown, rtype, out)
        _report_private(report, shown, out)
    _compare(report, shown, outcomes)
    if lookup is not None:
        report.facts["getaddrinfo"] = lookup
        _compare_os(report, shown, rtype, [o for o in outcomes if o.resolver.source == "system"] or outcomes, lookup)


probe = Probe(
    name="dns",
    summary="Resolve a name through each resolver and the OS; find NXDOMAIN, CNAME loops and disagreement.",
    target="NAME",
    run=run,
    options=(
        Option("type", "Record type to ask for.", default="A", choices=RECORD_TYPES),
        Option("resolver", "Ask this resolver (IP[:PORT], IPv6 as [::1]:5353); repeatable. "
               "Without it the system's resolvers and the OS lookup are used.", multiple=True, metavar="IP[:PORT]"),
        Option("system", "Also ask the system's resolvers and the OS lookup when --resolver is given.", is_flag=True),
    ),
    default_timeout=5.0,
    max_calls=3,
    example="diagkit probe dns api.example.com --type AAAA --resolver 9.9.9.9 --resolver 1.1.1.1",
    description=(
        "Resolve NAME through each resolver separately (rcode, answers, TTLs, Extended DNS Errors), follow the "
        "CNAME chain hop by hop (loops, dangling targets), report resolvers that disagree, and compare with what "
        "the OS itself returns (getaddrinfo: hosts file, VPN split DNS). The system's resolvers can be overridden "
        f"with {SYSTEM_RESOLVERS_ENV}=IP[:PORT],..."
    ),
)
