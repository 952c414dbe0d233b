"""Diagnosis end to end: real loopback servers, `diagkit probe ...` through the CLI, exact causes and output."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest

from tests.plugin_install import installed
from tests.servers import Response, json_response, server_context
from tests.test_probe_http import GOOD, GOOD_CLAIMS, T, make_jwt

ENV = {"DIAGKIT_NOW": "2026-03-01T12:00:00Z", "NO_COLOR": "1"}
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def run(invoke: Any, *args: str, env: dict[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    result = invoke("probe", *args, "--json", env=env)
    assert "Traceback" not in result.stdout + result.stderr
    return result, json.loads(result.stdout)


def causes(doc: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(c["rule"], c["findings"]) for c in doc.get("diagnosis", [])]


def head(text: str, port: int) -> list[str]:
    """The human output down to the facts, with the port and the duration made fixed."""
    lines = []
    for line in text.replace(str(port), "PORT").splitlines():
        if line == "  facts":
            break
        lines.append(re.sub(r"\(\d+ ms\)", "(N ms)", line))
    return lines


# ---------------------------------------------------------------- tokens


def test_expired_token_behind_a_401_is_one_cause(invoke, http_server):
    expired = make_jwt({**GOOD_CLAIMS, "exp": T - 7200})
    challenge = 'Bearer realm="orders", error="invalid_token", error_description="The access token expired"'
    srv = http_server({"/": Response(401, [("WWW-Authenticate", challenge)])})
    result, doc = run(invoke, "http", srv.url("/"), "--bearer", expired, env=ENV)
    assert result.exit_code == 3
    assert doc["diagnosis"] == [{
        "cause": "The access token has expired",
        "severity": "fail",
        "findings": ["jwt.expired", "http.auth.invalid_token"],
        "next_step": "Get a new token (refresh it) and retry; if fresh tokens are rejected too, compare the API "
                     "server's clock with the issuer's.",
        "rule": "token-expired",
    }]

    human = invoke("probe", "http", srv.url("/"), "--bearer", expired, env=ENV)
    assert human.exit_code == 3
    assert head(human.stdout, srv.port) == [
        "http http://127.0.0.1:PORT/  (N ms)",
        "  likely cause",
        "  FAIL  The access token has expired  [token-expired]",
        "        next step: Get a new token (refresh it) and retry; if fresh tokens are rejected too, compare the "
        "API server's clock with the issuer's.",
        "      FAIL  Bearer token expired 2 h ago  [jwt.expired]",
        "            The exp claim (2026-03-01T10:00:00Z) is 2 h before the local clock (2026-03-01T12:00:00Z).",
        "            where: bearer token",
        "            exp: 2026-03-01T10:00:00Z",
        "            clock: local",
        "            now: 2026-03-01T12:00:00Z",
        "            fix: Get a fresh token; check the client caches tokens no longer than their lifetime.",
        "      FAIL  The API rejected the access token (401 invalid_token)  [http.auth.invalid_token]",
        "            The server says the token is expired, revoked, malformed or not meant for it: The access "
        "token expired",
        "            status: 401",
        "            error: invalid_token",
        "            error_description: The access token expired",
        "            realm: orders",
        "            fix: Get a fresh token from the right issuer for this API's audience.",
    ]
    assert human.stdout.rstrip().endswith("summary: 2 fail")


def test_wrong_audience_names_the_audience_not_the_generic_401(invoke, http_server):
    srv = http_server({"/": Response(401, [("WWW-Authenticate", 'Bearer error="invalid_token"')])})
    result, doc = run(invoke, "http", srv.url("/"), "--bearer", GOOD, "--expect-audience", "api://billing", env=ENV)
    assert result.exit_code == 3
    assert causes(doc) == [("token-audience", ["jwt.audience.mismatch", "http.auth.invalid_token"])]


def test_id_token_used_as_access_token(invoke, http_server):
    id_token = make_jwt({"iss": "https://idp.test/", "aud": "spa-client", "azp": "spa-client", "nonce": "n-1",
                         "exp": T + 600, "iat": T - 60, "sub": "alice"},
                        {"alg": "RS256", "typ": "JWT", "kid": "k1"})
    srv = http_server({"/": Response(401, [("WWW-Authenticate", 'Bearer error="invalid_token"')])})
    result, doc = run(invoke, "http", srv.url("/"), "--bearer", id_token, "--expect-audience", "api://orders",
                      env=ENV)
    assert result.exit_code == 3
    assert causes(doc) == [("token-id-token",
                            ["jwt.token.id_token", "jwt.audience.mismatch", "http.auth.invalid_token"])]


def test_authorization_dropped_on_a_cross_origin_redirect(invoke, http_server):
    api = http_server({"/v1/me": Response(401, [("WWW-Authenticate", 'Bearer realm="api"')])})
    front = http_server({"/v1/me": Response(301, [("Location", api.url("/v1/me"))])})
    result, doc = run(invoke, "http", front.url("/v1/me"), "--bearer", GOOD, env=ENV)
    assert result.exit_code == 3
    assert causes(doc) == [("auth-dropped-on-redirect",
                            ["http.redirect.auth_dropped", "http.auth.credentials_not_received"])]


def test_redirect_uri_refused_by_the_idp(invoke, http_server):
    body = {"error": "invalid_request", "error_description": "Invalid parameter: redirect_uri"}
    srv = http_server({"/token": json_response(body, status=400)})
    result, doc = run(invoke, "http", srv.url("/token"), env=ENV)
    assert result.exit_code == 3
    assert [c[0] for c in causes(doc)] == ["oauth-redirect-uri"]
    assert causes(doc)[0][1][0] == "oauth.error"


def test_healthy_request_has_no_diagnosis(invoke, http_server):
    srv = http_server({"/": json_response({"ok": True})})
    result, doc = run(invoke, "http", srv.url("/"), "--bearer", GOOD, env=ENV)
    assert result.exit_code == 0
    assert "diagnosis" not in doc
    human = invoke("probe", "http", srv.url("/"), "--bearer", GOOD, env=ENV)
    assert "likely cause" not in human.stdout


# ---------------------------------------------------------------- certificates


def test_expired_certificate(invoke, ca, ca_file, tls_server):
    leaf = ca.issue_cert("127.0.0.1", not_before=NOW - dt.timedelta(days=90), not_after=NOW - dt.timedelta(days=3))
    srv = tls_server(leaf)
    result, doc = run(invoke, "tls", f"127.0.0.1:{srv.port}", "--ca-file", ca_file)
    assert result.exit_code == 3
    assert causes(doc) == [("tls-certificate-expired", ["tls.certificate.expired"])]
    human = invoke("probe", "tls", f"127.0.0.1:{srv.port}", "--ca-file", ca_file, env={"NO_COLOR": "1"})
    lines = head(human.stdout, srv.port)
    assert lines[:5] == [
        "tls 127.0.0.1:PORT  (N ms)",
        "  likely cause",
        "  FAIL  The server's certificate has expired  [tls-certificate-expired]",
        "        next step: Renew the certificate and install it (with its intermediates) on every server behind "
        "this name.",
        "      FAIL  The server certificate expired 3 days ago  [tls.certificate.expired]",
    ]
    assert lines[-1] == "            fix: Renew the certificate and deploy it with its full chain."
    assert "  other findings" not in lines  # the one problem finding is under its cause
    assert human.stdout.rstrip().endswith("summary: 1 fail")


@pytest.mark.parametrize(("name", "days", "rule"), [
    ("127.0.0.1", -3, "client-tls-certificate-expired"),
    ("other.test", 30, "client-tls-hostname-mismatch"),
])
def test_certificate_problems_seen_by_the_http_probe(invoke, ca, ca_file, http_server, name, days, rule):
    leaf = ca.issue_cert(name, not_before=NOW - dt.timedelta(days=90), not_after=NOW + dt.timedelta(days=days))
    srv = http_server({"/": json_response({})}, ssl_context=server_context(leaf))
    result, doc = run(invoke, "http", srv.url("/"), "--ca-file", ca_file)
    assert result.exit_code == 3
    assert causes(doc) == [(rule, ["http.connect.failed"])]


def test_leaf_without_its_intermediate_is_one_cause(invoke, ca, tls_server):
    srv = tls_server(ca.issue_cert("127.0.0.1"))
    result, doc = run(invoke, "tls", f"127.0.0.1:{srv.port}")
    assert result.exit_code == 3
    assert causes(doc) == [("tls-chain-incomplete", ["tls.chain.incomplete", "tls.chain.untrusted"])]


def test_interception_names_the_inspecting_proxy_ca(invoke, ca_file, tls_server):
    import trustme

    proxy = trustme.CA(organization_name="Zscaler Inc.")  # what an inspecting proxy presents instead
    srv = tls_server(proxy.issue_cert("127.0.0.1"))
    result, doc = run(invoke, "tls", f"127.0.0.1:{srv.port}", "--ca-file", ca_file)
    assert result.exit_code == 3
    assert causes(doc) == [("tls-interception", ["tls.chain.untrusted", "tls.chain.incomplete"])]
    cause = doc["diagnosis"][0]["cause"]
    assert re.fullmatch(r"TLS is intercepted: the certificate is issued by an inspecting proxy or security "
                        r"product \(OU=Testing CA #[\w-]+,O=Zscaler Inc\.\)", cause), cause


def test_several_targets_each_carry_their_own_cause(invoke, ca, ca_file, tls_server):
    good = tls_server(ca.issue_cert("127.0.0.1"))
    wrong = tls_server(ca.issue_cert("other.test"))
    result, doc = run(invoke, "tls", f"127.0.0.1:{good.port}", f"localhost:{wrong.port}", "--ca-file", ca_file)
    assert result.exit_code == 3
    assert [causes(r) for r in doc["results"]] == [
        [], [("tls-hostname-mismatch", ["tls.hostname.mismatch"])]]


# ---------------------------------------------------------------- DNS


ZONE = "www.test. 60 IN A 192.0.2.10\nold.test. 60 IN CNAME gone.test."


@pytest.mark.parametrize(("name", "expected"), [
    ("nope.test", [("dns-nxdomain", ["dns.resolve.nxdomain"])]),
    ("old.test", [("dns-dangling-cname", ["dns.cname.dangling"])]),
    ("www.test", []),
])
def test_dns_causes(invoke, dns_server, name, expected):
    server = dns_server(ZONE)
    _, doc = run(invoke, "dns", name, "--resolver", server.address)
    assert causes(doc) == expected


# ---------------------------------------------------------------- a third-party probe's own rule

TOY = '''
"""A toy probe with its own finding and diagnosis rule."""
from diagkit.probe import Probe


def run(ctx, report, target):
    report.add("toy.word.shouting", evidence={"word": target})


probe = Probe(name="toy", summary="Toy.", target="WORD", run=run, network=False,
              findings={"toy.word.shouting": {"severity": "warn", "title": "The word shouts",
                                              "meaning": "Upper case.", "remediation": "Speak softly."}},
              diagnosis=[{"id": "toy-caps-lock", "cause": "Caps Lock is on ({word})", "severity": "warn",
                          "all": ["toy.word.shouting"], "next_step": "Press Caps Lock once."}])
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    with installed(tmp_path, monkeypatch, "toy-diag-probe", {"toy_diag_probe": TOY}, {"toy": "toy_diag_probe:probe"}):
        yield


def test_a_plugin_rule_diagnoses_its_probe(invoke, toy):
    result, doc = run(invoke, "toy", "HELLO")
    assert result.exit_code == 4
    assert doc["diagnosis"] == [{"cause": "Caps Lock is on (HELLO)", "severity": "warn",
                                 "findings": ["toy.word.shouting"], "next_step": "Press Caps Lock once.",
                                 "rule": "toy-caps-lock"}]
    human = invoke("probe", "toy", "HELLO", env={"NO_COLOR": "1"})
    assert human.stdout.splitlines()[1:4] == [
        "  likely cause",
        "  WARN  Caps Lock is on (HELLO)  [toy-caps-lock]",
        "        next step: Press Caps Lock once.",
    ]


# ---------------------------------------------------------------- a HAR: the 401 seen in a browser


def test_expired_token_in_a_har_is_one_cause(invoke, tmp_path):
    from tests.test_probe_har import entry, jwt_token, make_har

    token = jwt_token({"iss": "https://idp.example.com", "aud": "api", "exp": 1772359500, "iat": 1772355600})
    late = entry("https://api.example.com/me", 401, req_headers={"Authorization": f"Bearer {token}"},
                 started="2026-03-01T10:30:00.000Z",
                 resp_headers={"Date": "Sun, 01 Mar 2026 10:30:00 GMT",
                               "WWW-Authenticate": 'Bearer error="invalid_token", error_description="expired"'})
    path = tmp_path / "session.har"
    path.write_text(json.dumps(make_har([late])), encoding="utf-8")
    result, doc = run(invoke, "har", str(path))
    assert result.exit_code == 3
    assert [c["rule"] for c in doc["diagnosis"]] == ["token-expired"]
    tied = doc["diagnosis"][0]["findings"]
    assert tied[0] == "jwt.expired" and "har.auth.unauthorized" in tied
    assert {f["id"] for f in doc["findings"] if f["severity"] != "pass"} <= set(tied)


def test_a_plugin_with_a_bad_rule_fails_to_load_cleanly(invoke, toy, tmp_path):
    source = (tmp_path / "toy_diag_probe.py").read_text().replace('"all": ["toy.word.shouting"], ', "")
    (tmp_path / "toy_diag_probe.py").write_text(source)
    result = invoke("probe", "toy", "HELLO")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "diagkit: error[DK700]: probe plugin 'toy' has a bad diagnosis rule: probe plugin 'toy': rule "
        "'toy-caps-lock': needs 'all' or 'any' (a rule with no required id would match everything)"]
