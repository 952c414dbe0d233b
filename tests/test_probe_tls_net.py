"""`diagkit probe tls`: a handshake refused for want of SNI says so; a server that does not speak HTTP
costs no extra wait.

Real ssl servers on 127.0.0.1 with trustme certificates. Checked with openssl first:
`openssl s_client -connect 127.0.0.1:PORT -noservername` gets "tlsv1 alert unrecognized name" (alert 112)
from the SNI-requiring server and a completed handshake with `-servername localhost`; against the banner
server s_client prints "220 mail.test ESMTP" right after the handshake and nothing HTTP.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from tests import servers
from tests.cli_results import find, ids, run_json


def sni_context(leaf: Any, served: str = "localhost", alert: int = ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME) -> ssl.SSLContext:
    """A server context that refuses a ClientHello without SNI (or with another name) with `alert`,
    as nginx `ssl_reject_handshake on` and HAProxy `strict-sni` do."""
    ctx = servers.server_context(leaf)

    def pick(_sock: Any, name: str | None, _ctx: Any) -> int | None:
        return None if name == served else alert

    ctx.sni_callback = pick
    return ctx


class NonHTTPServer(servers.TCPServer):
    """Completes the TLS handshake, then sends `banner` (if any) and never answers a request, as SMTPS,
    LDAPS or a database over TLS do. Connections are held open until stop()."""

    def __init__(self, ctx: ssl.SSLContext, banner: bytes = b"") -> None:
        super().__init__()
        self.ctx, self.banner = ctx, banner
        self._held: list[Any] = []

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
            self._held.append(tls)
            if self.banner:
                tls.sendall(self.banner)
            self._stop.wait(30)
        except (OSError, ssl.SSLError):
            pass

    def stop(self) -> None:
        super().stop()
        for tls in self._held:
            tls.close()


@pytest.fixture
def started() -> Iterator[list[Any]]:
    running: list[Any] = []
    yield running
    for srv in running:
        srv.stop()


def probe(invoke: Any, target: str, *args: str) -> tuple[Any, dict[str, Any]]:
    result, doc = run_json(invoke, "probe", "tls", target, *args, "--json", "--timeout", "10")
    assert doc is not None, result.stderr
    return result, doc


# ---------------------------------------------------------------- SNI


def test_handshake_refused_without_sni_says_so_and_names_the_working_name(invoke, ca, started, monkeypatch):
    from diagkit.collectors.tls import sni as tls

    srv = servers.TLSServer(sni_context(ca.issue_cert("localhost"))).start()
    started.append(srv)
    monkeypatch.setattr(tls, "reverse_name", lambda ip, timeout: "localhost")  # the PTR of 127.0.0.1
    result, doc = probe(invoke, f"127.0.0.1:{srv.port}")
    assert result.exit_code == 3
    assert ids(doc) == {"tls.connect.failed"}
    finding = find(doc, "tls.connect.failed")
    assert "without SNI" in finding["title"]
    assert finding["evidence"]["sni_sent"] is False and finding["evidence"]["sni_required"] == "confirmed"
    assert finding["evidence"]["works_with_sni"] == "localhost"
    assert finding["evidence"]["reason"] == "TLSV1_UNRECOGNIZED_NAME"
    assert "--servername" in finding["detail"] and "RFC 6066 §3" in finding["refs"]


@pytest.mark.parametrize("alert", [ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME, ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE])
def test_handshake_refused_without_sni_and_no_name_to_try(invoke, ca, started, monkeypatch, alert):
    from diagkit.collectors.tls import sni as tls

    srv = servers.TLSServer(sni_context(ca.issue_cert("localhost"), alert=alert)).start()
    started.append(srv)
    monkeypatch.setattr(tls, "reverse_name", lambda ip, timeout: None)
    result, doc = probe(invoke, f"127.0.0.1:{srv.port}")
    assert result.exit_code == 3
    finding = find(doc, "tls.connect.failed")
    assert "without SNI" in finding["title"]
    assert finding["evidence"]["sni_required"] == "likely"
    assert "--servername" in finding["detail"]


def test_the_same_server_with_servername_is_healthy(invoke, ca, ca_file, started):
    srv = servers.TLSServer(sni_context(ca.issue_cert("localhost"))).start()
    started.append(srv)
    result, doc = probe(invoke, f"127.0.0.1:{srv.port}", "--servername", "localhost", "--ca-file", ca_file)
    assert result.exit_code == 0, doc["findings"]
    assert "tls.connect.ok" in ids(doc) and not ids(doc, "fail") | ids(doc, "warn")


def test_unrecognized_name_for_a_name_that_was_sent(invoke, ca, ca_file, started):
    srv = servers.TLSServer(sni_context(ca.issue_cert("localhost"))).start()
    started.append(srv)
    result, doc = probe(invoke, f"127.0.0.1:{srv.port}", "--servername", "other.test", "--ca-file", ca_file)
    assert result.exit_code == 3
    finding = find(doc, "tls.connect.failed")
    assert "does not serve the name 'other.test'" in finding["title"]
    assert finding["evidence"]["sni_sent"] is True and finding["evidence"]["servername"] == "other.test"


def test_other_failures_do_not_blame_sni(invoke, ca, ca_file, started):
    # A plain-HTTP port: the handshake fails, but not for want of SNI.
    from tests.servers import HTTPServer

    srv = HTTPServer({"/": servers.Response(200, [], "ok")}).start()
    started.append(srv)
    result, doc = probe(invoke, f"127.0.0.1:{srv.port}")
    assert result.exit_code == 3
    finding = find(doc, "tls.connect.failed")
    assert "SNI" not in finding["title"] and "sni_sent" not in finding["evidence"]


# ---------------------------------------------------------------- servers that do not speak HTTP


def test_banner_server_is_judged_without_waiting(invoke, ca, ca_file, started):
    srv = NonHTTPServer(servers.server_context(ca.issue_cert("127.0.0.1")), b"220 mail.test ESMTP\r\n").start()
    started.append(srv)
    result, doc = probe(invoke, f"127.0.0.1:{srv.port}", "--ca-file", ca_file)
    assert result.exit_code == 0, doc["findings"]
    assert "tls.connect.ok" in ids(doc) and not ids(doc, "fail") | ids(doc, "warn")
    http = doc["facts"]["http"]
    assert http["speaks_http"] is False and http["first_bytes"] == "220 mail.test ESMTP"
    assert "waited_ms" not in http  # stopped at the first non-HTTP bytes, not at a deadline


def test_silent_server_costs_only_a_short_grace(invoke, ca, ca_file, started):
    srv = NonHTTPServer(servers.server_context(ca.issue_cert("127.0.0.1"))).start()
    started.append(srv)
    result, doc = probe(invoke, f"127.0.0.1:{srv.port}", "--ca-file", ca_file)
    assert result.exit_code == 0, doc["findings"]
    assert "tls.connect.ok" in ids(doc) and not ids(doc, "fail") | ids(doc, "warn")
    assert doc["facts"]["http"]["speaks_http"] is False
    assert doc["facts"]["http"]["note"] == "no answer to an HTTP HEAD request"


@pytest.mark.parametrize(("timeout", "connect_s", "grace"), [
    (10.0, 0.002, 0.5), (10.0, 0.4, 1.2), (10.0, 5.0, 10.0), (0.2, 0.001, 0.2),
])
def test_http_grace_is_a_few_round_trips_bounded_by_the_timeout(timeout, connect_s, grace):
    from diagkit.collectors.tls.handshake import http_grace

    assert http_grace(timeout, connect_s) == pytest.approx(grace)
