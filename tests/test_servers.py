"""The loopback server fixtures work, so probe tests can rely on them (HTTP(S), TLS, silent, DNS)."""

from __future__ import annotations

import json
import socket

import httpx

from tests.servers import Response, json_response, server_context


def test_http_server_routes_and_records(http_server):
    srv = http_server({"/ok": json_response({"a": 1}), ("POST", "/echo"): lambda req: Response(201, body=req.body)})
    assert httpx.get(srv.url("/ok"), timeout=5).json() == {"a": 1}
    assert httpx.post(srv.url("/echo"), content=b"hi", timeout=5).content == b"hi"
    assert httpx.get(srv.url("/nope"), timeout=5).status_code == 404
    assert [r.route for r in srv.requests] == ["/ok", "/echo", "/nope"]


def test_https_server_with_trustme(http_server, ca, ca_file):
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    srv = http_server({"/": Response(200, body="secure")}, ssl_context=server_context(leaf))
    import ssl

    verify = ssl.create_default_context(cafile=ca_file)
    assert httpx.get(srv.url("/"), verify=verify, timeout=5).text == "secure"


def test_tls_probe_against_a_trustme_server(invoke, tls_server, ca, ca_file):
    srv = tls_server(ca.issue_cert("127.0.0.1", "localhost"))
    result = invoke("probe", "tls", f"127.0.0.1:{srv.port}", "--ca-file", ca_file, "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0, result.stdout
    assert "tls.connect.ok" in {f["id"] for f in data["findings"]}
    assert data["facts"]["port"] == srv.port


def test_silent_server_is_bounded_by_timeout(invoke, silent_server):
    srv = silent_server()
    result = invoke("probe", "tls", f"127.0.0.1:{srv.port}", "--timeout", "0.2", "--json")
    # The client connected, sent its hello, got nothing and gave up by itself: a timeout is an error (5).
    assert result.exit_code == 5, result.stdout
    finding = json.loads(result.stdout)["findings"][0]
    assert finding["id"] == "tls.connect.failed" and finding["evidence"]["timed_out"] is True
    assert srv.wait_closed()  # seen end of stream: everything sent before it was read
    assert srv.connections == 1 and srv.received[0][:1] == b"\x16"  # a TLS handshake record


def test_silent_udp_server_records_datagrams(silent_server):
    srv = silent_server(udp=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"one", ("127.0.0.1", srv.port))
        sock.sendto(b"two", ("127.0.0.1", srv.port))
    assert srv.wait_datagrams(2)
    assert srv.datagrams == [b"one", b"two"]


def test_dns_server_answers_from_zone(dns_server):
    import dns.message
    import dns.query
    import dns.rcode

    srv = dns_server("www.test. 60 IN A 192.0.2.10\nalias.test. 60 IN CNAME www.test.", servfail=("broken.test",))
    answer = dns.query.udp(dns.message.make_query("www.test.", "A"), "127.0.0.1", port=srv.port, timeout=2)
    assert [rr.to_text() for rrset in answer.answer for rr in rrset] == ["192.0.2.10"]
    nx = dns.query.udp(dns.message.make_query("nope.test.", "A"), "127.0.0.1", port=srv.port, timeout=2)
    assert nx.rcode() == dns.rcode.NXDOMAIN
    nodata = dns.query.udp(dns.message.make_query("www.test.", "MX"), "127.0.0.1", port=srv.port, timeout=2)
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    sf = dns.query.tcp(dns.message.make_query("broken.test.", "A"), "127.0.0.1", port=srv.port, timeout=2)
    assert sf.rcode() == dns.rcode.SERVFAIL
    assert ("www.test.", "A") in srv.queries
