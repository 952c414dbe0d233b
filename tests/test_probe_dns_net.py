"""`diagkit probe dns`: a truncated answer whose TCP retry fails, the negative-cache TTL, private answers.

Real dnslib servers on 127.0.0.1. The truncating server listens on UDP only and holds its port number on
TCP with a socket that is bound but not listening, so the TCP retry is refused (RST), as a firewall that
rejects port 53/TCP does. Checked with dig first: `dig +notcp` shows `flags: qr aa tc`, `dig +tcp`
(and dig's own automatic retry) reports the connection refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import servers
from tests.cli_results import find, ids, run_json

SOA = "test. 3600 IN SOA ns.test. hostmaster.test. 1 7200 900 1209600 300"
ZONE = {
    "www.test.": ["www.test. 60 IN A 192.0.2.10"],
    "big.test.": [f"big.test. 60 IN A 192.0.2.{i}" for i in range(1, 40)],
    "internal.test.": ["internal.test. 60 IN A 10.1.2.3", "internal.test. 60 IN A 192.0.2.20"],
    "loop.test.": ["loop.test. 60 IN A 127.0.0.1"],
    "cgnat.test.": ["cgnat.test. 60 IN A 100.64.1.1"],
    "v6.test.": ["v6.test. 60 IN AAAA fd00::1", "v6.test. 60 IN AAAA fe80::1"],
    "nosoa.test.": ["nosoa.test. 60 IN A 192.0.2.30"],
    "gone.test.": ["gone.test. 60 IN CNAME deleted.test."],
}


class ZoneServer(servers.DnslibServer):
    """dnslib: NXDOMAIN/NODATA carry the zone's SOA in the authority section (RFC 2308 §3), except for
    names under nosoa.test; names in `truncate` get TC=1 and no records over UDP. With tcp=False nothing
    listens on TCP at the same port, so a TCP query is refused."""

    def __init__(self, truncate: tuple[str, ...] = (), tcp: bool = True) -> None:
        from dnslib import QTYPE, RCODE, RR
        from dnslib.server import BaseResolver

        records = {name: [rr for line in lines for rr in RR.fromZone(line)] for name, lines in ZONE.items()}
        soa = RR.fromZone(SOA)[0]
        self.tcp_queries = 0
        outer = self

        class _Resolver(BaseResolver):
            def resolve(self, request: Any, handler: Any) -> Any:
                reply = request.reply()
                qname = str(request.q.qname).lower()
                if handler.protocol == "tcp":
                    outer.tcp_queries += 1
                elif qname in truncate:
                    reply.header.tc = 1
                    return reply
                owned = records.get(qname)
                if owned is None:
                    reply.header.rcode = RCODE.NXDOMAIN
                else:
                    for rr in owned:
                        if rr.rtype in (request.q.qtype, QTYPE.CNAME):
                            reply.add_answer(rr)
                if not reply.rr and not qname.startswith("nosoa") and not qname.endswith("nosoa.test."):
                    reply.add_auth(soa)
                return reply

        self._listen(_Resolver(), tcp=tcp)


@pytest.fixture(scope="module")
def zone() -> Iterator[ZoneServer]:
    srv = ZoneServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def no_tcp() -> Iterator[ZoneServer]:
    srv = ZoneServer(truncate=("big.test.",), tcp=False).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def truncating() -> Iterator[ZoneServer]:
    srv = ZoneServer(truncate=("big.test.",), tcp=True).start()
    yield srv
    srv.stop()


def probe(invoke: Any, *args: str) -> tuple[Any, dict[str, Any]]:
    result, doc = run_json(invoke, "probe", "dns", *args, "--json")
    assert doc is not None, result.stderr
    return result, doc


# ---------------------------------------------------------------- truncated UDP, TCP retry


def test_truncated_answer_with_refused_tcp_is_its_own_finding(invoke, no_tcp):
    result, doc = probe(invoke, "big.test", "--resolver", no_tcp.address)
    assert result.exit_code == 3
    assert ids(doc) == {"dns.tcp.failed"}
    finding = find(doc, "dns.tcp.failed")
    assert finding["severity"] == "fail"
    assert "refused" in finding["evidence"]["tcp_error"]
    assert "truncated" in finding["detail"] and "unreachable" not in finding["title"]
    [seen] = doc["facts"]["resolvers"]
    assert seen["status"] == "tcp_failed" and seen["truncated_udp"] is True


def test_same_resolver_answers_small_names_over_udp(invoke, no_tcp):
    # Control: the resolver is reachable; only the truncated name needs TCP.
    result, doc = probe(invoke, "www.test", "--resolver", no_tcp.address)
    assert result.exit_code == 0
    assert ids(doc) == {"dns.resolve.ok"}


def test_truncated_answer_retried_over_tcp_resolves(invoke, truncating):
    result, doc = probe(invoke, "big.test", "--resolver", truncating.address)
    assert result.exit_code == 0, doc["findings"]
    assert ids(doc) == {"dns.resolve.ok"}
    [seen] = doc["facts"]["resolvers"]
    assert seen["truncated_udp"] is True and len(seen["answers"]) == 39
    assert truncating.tcp_queries >= 1


def test_tcp_failure_does_not_count_as_disagreement(invoke, no_tcp, truncating):
    result, doc = probe(invoke, "big.test", "--resolver", no_tcp.address, "--resolver", truncating.address)
    assert result.exit_code == 3
    assert ids(doc) == {"dns.tcp.failed", "dns.resolve.ok"}


# ---------------------------------------------------------------- negative caching (RFC 2308)


def test_nxdomain_states_the_negative_cache_ttl(invoke, zone):
    result, doc = probe(invoke, "missing.test", "--resolver", zone.address)
    assert result.exit_code == 3
    finding = find(doc, "dns.resolve.nxdomain")
    # min(SOA TTL 3600, SOA MINIMUM 300)
    assert finding["evidence"]["negative_ttl"] == 300
    assert finding["evidence"]["soa"] == {"soa_zone": "test.", "soa_ttl": 3600, "soa_minimum": 300}
    assert "300 s" in finding["detail"] and "RFC 2308" in finding["detail"]
    assert doc["facts"]["resolvers"][0]["negative_cache"]["ttl"] == 300


def test_nodata_states_the_negative_cache_ttl(invoke, zone):
    result, doc = probe(invoke, "www.test", "--type", "MX", "--resolver", zone.address)
    assert result.exit_code == 3
    finding = find(doc, "dns.resolve.nodata")
    assert finding["evidence"]["negative_ttl"] == 300
    assert "300 s" in finding["detail"]


def test_dangling_cname_states_how_long_the_target_stays_invisible(invoke, zone):
    result, doc = probe(invoke, "gone.test", "--resolver", zone.address)
    assert result.exit_code == 3
    finding = find(doc, "dns.cname.dangling")
    assert finding["evidence"]["negative_ttl"] == 300 and "300 s" in finding["detail"]


def test_negative_answer_without_soa_says_ttl_unknown(invoke, zone):
    result, doc = probe(invoke, "nosoa.test", "--type", "TXT", "--resolver", zone.address)
    assert result.exit_code == 3
    finding = find(doc, "dns.resolve.nodata")
    assert finding["evidence"]["negative_ttl"] is None
    assert "no SOA" in finding["detail"]


def test_negative_ttl_is_the_smaller_of_soa_ttl_and_minimum():
    import dns.message
    import dns.rrset

    from diagkit.collectors.dns.query import negative_cache

    response = dns.message.make_response(dns.message.make_query("x.example.", "A"))
    response.authority.append(dns.rrset.from_text("example.", 60, "IN", "SOA",
                                                   "ns.example. h.example. 1 7200 900 1209600 86400"))
    assert negative_cache(response)["ttl"] == 60


# ---------------------------------------------------------------- private answers


@pytest.mark.parametrize(("name", "rtype", "kinds"), [
    ("internal.test", "A", {"10.1.2.3": "private (RFC 1918)"}),
    ("loop.test", "A", {"127.0.0.1": "loopback"}),
    ("cgnat.test", "A", {"100.64.1.1": "shared CGNAT space (RFC 6598)"}),
    ("v6.test", "AAAA", {"fd00::1": "unique local (RFC 4193)", "fe80::1": "link-local"}),
])
def test_private_answers_warn(invoke, zone, name, rtype, kinds):
    result, doc = probe(invoke, name, "--type", rtype, "--resolver", zone.address)
    assert result.exit_code == 4
    assert ids(doc) == {"dns.resolve.ok", "dns.answer.private"}
    finding = find(doc, "dns.answer.private")
    assert finding["severity"] == "warn"
    assert {a["address"]: a["kind"] for a in finding["evidence"]["addresses"]} == kinds
    assert all(address in finding["title"] for address in kinds)


def test_documentation_addresses_are_not_private(invoke, zone):
    # 192.0.2.0/24 is "private" to Python's ipaddress, but it is not an internal network.
    result, doc = probe(invoke, "www.test", "--resolver", zone.address)
    assert result.exit_code == 0
    assert ids(doc) == {"dns.resolve.ok"}


@pytest.mark.parametrize(("address", "kind"), [
    ("192.168.1.1", "private (RFC 1918)"), ("172.31.0.1", "private (RFC 1918)"), ("::1", "loopback"),
    ("169.254.169.254", "link-local"), ("::ffff:10.0.0.1", "private (RFC 1918)"),
    ("0.0.0.0", "unspecified (a DNS sinkhole answer)"), ("8.8.8.8", None), ("172.32.0.1", None),
    ("2606:4700::1111", None), ("100.128.0.1", None),
])
def test_address_kind(address, kind):
    from diagkit.collectors.dns.probe import address_kind

    assert address_kind(address) == kind
