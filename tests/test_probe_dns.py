"""`diagkit probe dns` against real loopback dnslib servers: every contract id, JSON shape, timeouts."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import dns.message
import pytest

from diagkit.collectors.dns.query import parse_resolver
from diagkit.errors import InputError
from tests import servers

ZONE = """
www.test.      60 IN A     192.0.2.10
www.test.      60 IN A     192.0.2.11
www.test.      60 IN TXT   "v=spf1 -all"
alias.test.    30 IN CNAME mid.test.
mid.test.      30 IN CNAME www.test.
loop-a.test.   30 IN CNAME loop-b.test.
loop-b.test.   30 IN CNAME loop-c.test.
loop-c.test.   30 IN CNAME loop-a.test.
dangling.test. 30 IN CNAME deleted.test.
mail.test.     60 IN MX    10 mx1.test.
mail.test.     60 IN CAA   0 issue "letsencrypt.org"
v6only.test.   60 IN AAAA  2001:db8::1
"""

FINDING_KEYS = {"id", "severity", "title", "detail", "evidence", "remediation", "refs"}
RESULT_KEYS = {"diagkit_version", "probe", "target", "started_at", "duration_ms", "findings", "facts"}


@pytest.fixture(scope="module")
def zone() -> Iterator[servers.DNSServer]:
    # One server for the module: stopping a dnslib server takes most of a second.
    srv = servers.DNSServer(ZONE, servfail=("broken.test",), refused=("private.test",)).start()
    yield srv
    srv.stop()


def run_json(invoke, *args: str, env: dict[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    result = invoke("probe", "dns", *args, "--json", env=env)
    return result, json.loads(result.stdout)


def ids(doc: dict[str, Any]) -> list[str]:
    return [f["id"] for f in doc["findings"]]


def assert_contract_shape(doc: dict[str, Any]) -> None:
    assert set(doc) - {"options", "diagnosis"} == RESULT_KEYS
    assert doc["probe"] == "dns"
    assert isinstance(doc["duration_ms"], int) and doc["started_at"].endswith("Z")
    assert doc["findings"], "a probe always reports at least one finding"
    for finding in doc["findings"]:
        assert set(finding) == FINDING_KEYS
        assert finding["severity"] in {"pass", "info", "warn", "fail", "error"}
        assert isinstance(finding["evidence"], dict) and isinstance(finding["refs"], list)


# ---------------------------------------------------------------- healthy


def test_healthy_name_passes_with_answers_and_ttls(invoke, zone):
    result, doc = run_json(invoke, "www.test", "--resolver", zone.address)
    assert result.exit_code == 0, result.stdout
    assert_contract_shape(doc)
    assert ids(doc) == ["dns.resolve.ok"]
    [seen] = doc["facts"]["resolvers"]
    assert seen["status"] == "NOERROR"
    assert sorted(a["value"] for a in seen["answers"]) == ["192.0.2.10", "192.0.2.11"]
    assert {a["ttl"] for a in seen["answers"]} == {60}
    assert doc["facts"]["type"] == "A"


def test_cname_chain_is_followed_hop_by_hop(invoke, zone):
    # The loopback server returns one CNAME per answer (a partial chain); the probe asks for each hop.
    result, doc = run_json(invoke, "alias.test", "--resolver", zone.address)
    assert result.exit_code == 0
    [seen] = doc["facts"]["resolvers"]
    assert [(h["name"], h["target"]) for h in seen["cname_chain"]] == [
        ("alias.test.", "mid.test."), ("mid.test.", "www.test.")]
    assert sorted(a["value"] for a in seen["answers"]) == ["192.0.2.10", "192.0.2.11"]
    assert ("mid.test.", "A") in zone.queries and ("www.test.", "A") in zone.queries


@pytest.mark.parametrize(("rtype", "expected"), [
    ("TXT", '"v=spf1 -all"'), ("MX", "10 mx1.test."), ("CAA", '0 issue "letsencrypt.org"'),
    ("AAAA", "2001:db8::1"),
])
def test_record_types(invoke, zone, rtype, expected):
    name = "v6only.test" if rtype == "AAAA" else "mail.test" if rtype in ("MX", "CAA") else "www.test"
    result, doc = run_json(invoke, name, "--type", rtype, "--resolver", zone.address)
    assert result.exit_code == 0
    assert [a["value"] for a in doc["facts"]["resolvers"][0]["answers"]] == [expected]


def test_cname_type_returns_the_alias_itself(invoke, zone):
    result, doc = run_json(invoke, "alias.test", "--type", "CNAME", "--resolver", zone.address)
    assert result.exit_code == 0
    assert doc["facts"]["resolvers"][0]["answers"][0]["value"] == "mid.test."


def test_human_output(invoke, zone):
    result = invoke("probe", "dns", "www.test", "--resolver", zone.address)
    assert result.exit_code == 0
    assert "PASS" in result.stdout and "[dns.resolve.ok]" in result.stdout
    assert "192.0.2.10" in result.stdout
    assert result.stderr == ""


# ---------------------------------------------------------------- contract ids


@pytest.mark.parametrize(("name", "args", "finding", "severity", "code"), [
    ("nope.test", (), "dns.resolve.nxdomain", "fail", 3),
    ("www.test", ("--type", "MX"), "dns.resolve.nodata", "fail", 3),
    ("broken.test", (), "dns.resolve.servfail", "fail", 3),
    ("private.test", (), "dns.resolve.refused", "fail", 3),
    ("loop-a.test", (), "dns.cname.loop", "fail", 3),
    ("dangling.test", (), "dns.cname.dangling", "fail", 3),
])
def test_each_failure_has_its_id(invoke, zone, name, args, finding, severity, code):
    result, doc = run_json(invoke, name, *args, "--resolver", zone.address)
    assert result.exit_code == code
    assert_contract_shape(doc)
    assert ids(doc) == [finding]
    assert doc["findings"][0]["severity"] == severity
    assert doc["findings"][0]["evidence"]["resolver"] == zone.address


def test_loop_evidence_names_every_hop(invoke, zone):
    _, doc = run_json(invoke, "loop-a.test", "--resolver", zone.address)
    chain = doc["findings"][0]["evidence"]["cname_chain"]
    assert [h["target"] for h in chain] == ["loop-b.test.", "loop-c.test.", "loop-a.test."]


def test_dangling_names_the_missing_target(invoke, zone):
    _, doc = run_json(invoke, "dangling.test", "--resolver", zone.address)
    assert doc["findings"][0]["evidence"]["dangling_target"] == "deleted.test."


def test_nodata_after_a_cname_names_the_final_name(invoke, zone):
    result, doc = run_json(invoke, "alias.test", "--type", "MX", "--resolver", zone.address)
    assert result.exit_code == 3
    assert ids(doc) == ["dns.resolve.nodata"]
    assert "www.test." in doc["findings"][0]["title"]


def test_resolvers_disagree(invoke, dns_server):
    first = dns_server("www.test. 60 IN A 192.0.2.10")
    second = dns_server("www.test. 300 IN A 198.51.100.7")
    result, doc = run_json(invoke, "www.test", "--resolver", first.address, "--resolver", second.address)
    assert result.exit_code == 4
    assert ids(doc).count("dns.resolve.ok") == 2
    [disagree] = [f for f in doc["findings"] if f["id"] == "dns.resolvers.disagree"]
    assert disagree["severity"] == "warn"
    assert disagree["evidence"]["answers"][second.address]["records"] == ["198.51.100.7"]


def test_resolvers_disagree_on_rcode(invoke, dns_server, zone):
    empty = dns_server("")
    result, doc = run_json(invoke, "www.test", "--resolver", zone.address, "--resolver", empty.address)
    assert result.exit_code == 3
    assert set(ids(doc)) == {"dns.resolve.ok", "dns.resolve.nxdomain", "dns.resolvers.disagree"}


def test_same_records_with_different_ttls_agree(invoke, dns_server):
    first = dns_server("www.test. 60 IN A 192.0.2.10\nwww.test. 60 IN A 192.0.2.11")
    second = dns_server("www.test. 5 IN A 192.0.2.11\nwww.test. 5 IN A 192.0.2.10")
    result, doc = run_json(invoke, "www.test", "--resolver", first.address, "--resolver", second.address)
    assert result.exit_code == 0
    assert "dns.resolvers.disagree" not in ids(doc)


def test_silent_resolver_times_out_within_the_timeout(invoke, silent_server):
    silent = silent_server(udp=True)
    result, doc = run_json(invoke, "www.test", "--resolver", f"127.0.0.1:{silent.port}", "--timeout", "0.2")
    assert result.exit_code == 5
    assert ids(doc) == ["dns.resolve.timeout"]
    assert doc["findings"][0]["severity"] == "error"
    # One question, asked once: the probe waited for it and did not retry past its budget.
    asked = silent.datagrams_so_far()
    assert len(asked) == 1
    assert dns.message.from_wire(asked[0]).question[0].to_text() == "www.test. IN A"
    assert "dns.resolve.timeout" in result.stderr  # a check that could not run is said on stderr too


def test_timeout_does_not_hide_the_other_resolver(invoke, silent_server, zone):
    silent = silent_server(udp=True)
    result, doc = run_json(invoke, "www.test", "--resolver", zone.address,
                           "--resolver", f"127.0.0.1:{silent.port}", "--timeout", "0.2")
    assert result.exit_code == 5
    assert sorted(ids(doc)) == ["dns.resolve.ok", "dns.resolve.timeout"]  # a timeout is no disagreement


def test_several_names_give_results_list(invoke, zone):
    result = invoke("probe", "dns", "www.test", "nope.test", "--resolver", zone.address, "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert [r["target"] for r in doc["results"]] == ["www.test", "nope.test"]
    assert [ids(r) for r in doc["results"]] == [["dns.resolve.ok"], ["dns.resolve.nxdomain"]]


# ---------------------------------------------------------------- EDNS and Extended DNS Errors


class _EDEServer:
    """Answers every query SERVFAIL with EDE 9 (DNSKEY Missing), like a validating resolver."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(servers.POLL)
        self.port = self.sock.getsockname()[1]
        self.saw_edns = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from dnslib import QTYPE, RCODE, RR, DNSRecord, EDNSOption

        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            request = DNSRecord.parse(data)
            self.saw_edns = self.saw_edns or any(rr.rtype == QTYPE.OPT for rr in request.ar)
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
            reply.add_ar(RR("", QTYPE.OPT, rclass=1232, ttl=0,
                            rdata=[EDNSOption(15, (9).to_bytes(2, "big") + b"no DNSKEY for test.")]))
            self.sock.sendto(reply.pack(), peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def test_extended_dns_error_is_reported(invoke):
    server = _EDEServer()
    try:
        result, doc = run_json(invoke, "www.test", "--resolver", f"127.0.0.1:{server.port}", "--timeout", "2")
    finally:
        server.stop()
    assert server.saw_edns, "queries must carry EDNS so resolvers can return Extended DNS Errors"
    assert result.exit_code == 3
    assert ids(doc) == ["dns.resolve.servfail"]
    finding = doc["findings"][0]
    assert finding["evidence"]["extended_errors"] == [{"code": 9, "name": "DNSKEY_MISSING", "text": "no DNSKEY for test."}]
    assert "DNSKEY_MISSING" in finding["detail"]


# ---------------------------------------------------------------- the system's view


def test_os_lookup_differs_from_dns(invoke, dns_server, monkeypatch):
    # "localhost" comes from the hosts file; this DNS server has never heard of it.
    server = dns_server("www.test. 60 IN A 192.0.2.10")
    monkeypatch.setenv("DIAGKIT_SYSTEM_RESOLVERS", server.address)
    result, doc = run_json(invoke, "localhost")
    assert result.exit_code == 3
    assert set(ids(doc)) == {"dns.resolve.nxdomain", "dns.system.differs"}
    differs = next(f for f in doc["findings"] if f["id"] == "dns.system.differs")
    assert differs["evidence"]["only_in_os"] == ["127.0.0.1"]
    assert doc["facts"]["resolvers"][0]["source"] == "system"
    assert "127.0.0.1" in doc["facts"]["getaddrinfo"]["addresses"]


def test_system_flag_adds_system_resolvers(invoke, dns_server, monkeypatch):
    given = dns_server("www.test. 60 IN A 192.0.2.10")
    system = dns_server("www.test. 60 IN A 192.0.2.10")
    monkeypatch.setenv("DIAGKIT_SYSTEM_RESOLVERS", system.address)
    _, only_given = run_json(invoke, "www.test", "--resolver", given.address)
    assert [r["source"] for r in only_given["facts"]["resolvers"]] == ["--resolver"]
    assert "getaddrinfo" not in only_given["facts"]
    _, both = run_json(invoke, "www.test", "--resolver", given.address, "--system")
    assert [r["source"] for r in both["facts"]["resolvers"]] == ["--resolver", "system"]
    assert "getaddrinfo" in both["facts"]


# ---------------------------------------------------------------- input


@pytest.mark.parametrize(("text", "ip", "port"), [
    ("9.9.9.9", "9.9.9.9", 53), ("127.0.0.1:5353", "127.0.0.1", 5353), ("::1", "::1", 53),
    ("[::1]:5353", "::1", 5353), ("[2001:db8::53]", "2001:db8::53", 53),
])
def test_parse_resolver(text, ip, port):
    parsed = parse_resolver(text)
    assert (parsed.ip, parsed.port) == (ip, port)


@pytest.mark.parametrize("text", ["dns.google", "1.2.3.4:99999", "[::1:53", "1.2.3.4:x", "[::1]x"])
def test_parse_resolver_rejects(text):
    with pytest.raises(InputError):
        parse_resolver(text)


def test_ipv6_resolver_is_accepted_on_the_command_line(invoke, silent_server):
    # A silent resolver on [::1]: the bracketed syntax parses, the query goes there over IPv6, and waits.
    silent = silent_server(udp=True, host="::1")
    result, doc = run_json(invoke, "www.test", "--resolver", f"[::1]:{silent.port}", "--timeout", "0.2")
    assert result.exit_code == 5
    assert doc["facts"]["resolvers"][0]["resolver"] == f"[::1]:{silent.port}"
    assert ids(doc) == ["dns.resolve.timeout"]
    asked = silent.datagrams_so_far()
    assert [dns.message.from_wire(q).question[0].to_text() for q in asked] == ["www.test. IN A"]


def test_bad_resolver_is_one_line_error(invoke):
    result = invoke("probe", "dns", "www.test", "--resolver", "not-an-ip")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not-an-ip" in lines[0] and "Traceback" not in result.stderr


def test_bad_name_is_one_line_error(invoke, zone):
    result = invoke("probe", "dns", "a" * 70 + ".test", "--resolver", zone.address)
    assert result.exit_code == 1
    assert "not a valid DNS name" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unknown_type_is_usage_error(invoke, zone):
    result = invoke("probe", "dns", "www.test", "--type", "SRV", "--resolver", zone.address)
    assert result.exit_code == 2
