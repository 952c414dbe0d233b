"""DNS probe: ask each resolver (and the OS) about a name, follow CNAMEs hop by hop, compare the answers.

Every resolver is asked separately, so a split-horizon or stale resolver shows up instead of being hidden
behind the first one that answers. CNAME chains are followed by querying each hop ourselves, so loops and
dangling targets are found even from a resolver that returns only part of the chain (or SERVFAIL).

This module turns the answers into findings; asking is query.py's.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from diagkit.collectors.dns.query import (
    MAX_CHAIN,
    SYSTEM_RESOLVERS_ENV,
    Outcome,
    ask,
    os_lookup,
    parse_resolver,
    system_resolvers,
)
from diagkit.context import Context
from diagkit.errors import InputError
from diagkit.probe import Option, Probe, Report

RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "CAA", "NS")


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
