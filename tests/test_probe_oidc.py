"""`diagkit probe oidc` against real loopback HTTP(S) servers (trustme CA for HTTPS)."""

from __future__ import annotations

import datetime as dt

import pytest

from diagkit.collectors.oidc.probe import discovery_candidates
from tests.cli_results import find, ids, run_json
from tests.fixtures.sso import builders as b
from tests.servers import Response, json_response, server_context

ENV = {"DIAGKIT_NOW": b.NOW_ISO}


def run(invoke, target, *args):
    return run_json(invoke, "probe", "oidc", target, "--json", *args, env=ENV)


def discovery(issuer: str, base: str | None = None, **overrides):
    base = base or issuer.rstrip("/")
    doc = {
        "issuer": issuer,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "userinfo_endpoint": f"{base}/userinfo",
        "jwks_uri": f"{base}/jwks",
        "response_types_supported": ["code", "id_token", "code id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


@pytest.fixture
def https(http_server, ca):
    """An HTTPS loopback server factory with the session trustme CA."""
    def make(routes):
        return http_server(routes, ssl_context=server_context(ca.issue_cert("127.0.0.1")))
    return make


def serve_provider(make, path="", disc_overrides=None, jwks=None, status=200):
    srv = make({})
    issuer = srv.url(path or "")
    if not path:
        issuer = srv.base_url
    srv.routes[f"{path}/.well-known/openid-configuration"] = json_response(
        discovery(issuer, **(disc_overrides or {})), status=status)
    srv.routes[f"{path}/jwks"] = json_response(jwks if jwks is not None else {"keys": [b.rsa_jwk("k1")]})
    return srv, issuer


def test_healthy_https_provider(invoke, https, ca_file):
    _, cert = b.make_cert("jwks signer")
    srv, issuer = serve_provider(https, jwks={"keys": [b.rsa_jwk("k1", x5c=cert)]})
    result, doc = run(invoke, issuer, "--ca-file", ca_file)
    assert result.exit_code == 0, doc
    assert ids(doc) == {"oidc.discovery.ok"}
    assert doc["facts"]["discovery_via"] == "openid-configuration"
    key = doc["facts"]["jwks"][0]
    assert {k: key[k] for k in ("kid", "kty", "alg", "use", "bits")} == {
        "kid": "k1", "kty": "RSA", "alg": "RS256", "use": "sig", "bits": 2048}
    assert key["x5c"]["subject"] == "CN=jwks signer"
    assert key["x5c"]["not_after"] == b.iso(b.NOW + dt.timedelta(days=365))
    assert srv.requests[0].route == "/.well-known/openid-configuration"


def test_issuer_with_path_and_full_discovery_url(invoke, https, ca_file):
    srv, issuer = serve_provider(https, path="/tenant/v2.0")
    result, doc = run(invoke, issuer, "--ca-file", ca_file)
    assert result.exit_code == 0, doc
    assert doc["facts"]["discovery_url"] == issuer + "/.well-known/openid-configuration"
    result, doc = run(invoke, issuer + "/.well-known/openid-configuration", "--ca-file", ca_file)
    assert result.exit_code == 0, doc


def test_issuer_trailing_slash_mismatch(invoke, https, ca_file):
    srv, issuer = serve_provider(https)
    result, doc = run(invoke, issuer + "/", "--ca-file", ca_file)
    assert result.exit_code == 3
    finding = find(doc, "oidc.issuer.mismatch")
    assert "trailing slash" in finding["detail"]
    assert finding["evidence"] == {"expected": issuer + "/", "issuer": issuer}


def test_missing_required_field(invoke, https, ca_file):
    srv, issuer = serve_provider(https, disc_overrides={"subject_types_supported": None, "token_endpoint": None})
    result, doc = run(invoke, issuer, "--ca-file", ca_file)
    assert result.exit_code == 3
    assert find(doc, "oidc.discovery.missing_field")["evidence"]["missing"] == ["token_endpoint",
                                                                               "subject_types_supported"]


def test_implicit_only_provider_needs_no_token_endpoint(invoke, https, ca_file):
    srv, issuer = serve_provider(https, disc_overrides={"token_endpoint": None,
                                                        "response_types_supported": ["id_token", "id_token token"]})
    result, doc = run(invoke, issuer, "--ca-file", ca_file)
    assert result.exit_code == 0, doc


def test_plain_http_endpoints_are_insecure(invoke, http_server):
    srv, issuer = serve_provider(http_server)
    result, doc = run(invoke, issuer)
    assert result.exit_code == 3
    finding = find(doc, "oidc.endpoint.insecure")
    assert {"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"} <= set(finding["evidence"]["fields"])


def test_discovery_unreachable(invoke, https, ca_file, silent_server):
    srv = https({})
    result, doc = run(invoke, srv.base_url, "--ca-file", ca_file)
    assert result.exit_code == 3
    attempts = find(doc, "oidc.discovery.unreachable")["evidence"]["attempts"]
    assert [a["status"] for a in attempts] == [404, 404]

    silent = silent_server()
    result, doc = run(invoke, f"https://127.0.0.1:{silent.port}", "--timeout", "0.2")
    assert result.exit_code == 5 and "oidc.discovery.unreachable" in ids(doc)  # timeouts: `error`
    attempts = find(doc, "oidc.discovery.unreachable")["evidence"]["attempts"]
    assert [(a["url"].rsplit("/", 1)[-1], a["timed_out"]) for a in attempts] == [
        ("openid-configuration", True), ("oauth-authorization-server", True)]
    # Both well-known URLs tried once each: two TLS hellos, each connection closed by the client itself.
    assert silent.wait_closed()
    assert silent.connections == 2 and all(sent[:1] == b"\x16" for sent in silent.received)


def test_untrusted_certificate_says_ca_file(invoke, https):
    srv, issuer = serve_provider(https)
    result, doc = run(invoke, issuer)
    assert result.exit_code == 3
    assert "--ca-file" in find(doc, "oidc.discovery.unreachable")["detail"]


def test_rfc8414_fallback(invoke, https, ca_file):
    srv = https({})
    issuer = srv.url("/as")
    srv.routes["/.well-known/oauth-authorization-server/as"] = json_response(
        {"issuer": issuer, "authorization_endpoint": issuer + "/authorize", "token_endpoint": issuer + "/token",
         "jwks_uri": issuer + "/jwks", "response_types_supported": ["code"]})
    srv.routes["/as/jwks"] = json_response({"keys": [b.rsa_jwk("k1")]})
    result, doc = run(invoke, issuer, "--ca-file", ca_file)
    assert result.exit_code == 0, doc
    assert doc["facts"]["discovery_via"] == "oauth-authorization-server"
    assert "via oauth-authorization-server" in find(doc, "oidc.discovery.ok")["title"]


def test_jwks_unreachable(invoke, https, ca_file):
    srv, issuer = serve_provider(https)
    srv.routes["/jwks"] = Response(500, [("Content-Type", "text/plain")], "boom")
    result, doc = run(invoke, issuer, "--ca-file", ca_file)
    assert result.exit_code == 3
    assert find(doc, "oidc.jwks.unreachable")["evidence"]["status"] == 500


def test_private_key_in_jwks_never_printed(invoke, https, ca_file):
    private = b.rsa_jwk("leaky", private=True)
    secret = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNoYXJlZC1rZXktdmFsdWU"}
    srv, issuer = serve_provider(https, jwks={"keys": [b.rsa_jwk("k1"), private, secret]})
    result, doc = run(invoke, issuer, "--ca-file", ca_file)
    assert result.exit_code == 3
    findings = [f for f in doc["findings"] if f["id"] == "oidc.jwks.private_key"]
    assert {f["evidence"]["kid"] for f in findings} == {"leaky", "hmac"}
    assert private["d"] not in result.stdout and secret["k"] not in result.stdout


def test_weak_duplicate_and_malformed_keys(invoke, https, ca_file):
    _, old = b.make_cert("old", not_before=b.NOW - dt.timedelta(days=800), not_after=b.NOW - dt.timedelta(days=1))
    keys = [b.rsa_jwk("dup"), b.rsa_jwk("dup", bits=1024, x5c=old), {"kid": "nokty"}]
    srv, issuer = serve_provider(https, jwks={"keys": keys})
    result, doc = run(invoke, issuer, "--ca-file", ca_file)
    assert result.exit_code == 3
    assert {"oidc.jwks.weak_key", "oidc.jwks.invalid_key"} <= ids(doc, "fail")
    assert {"oidc.jwks.duplicate_kid", "oidc.jwks.certificate_expired"} <= ids(doc, "warn")


def test_rs256_missing_and_none_offered(invoke, https, ca_file):
    srv, issuer = serve_provider(https, disc_overrides={"id_token_signing_alg_values_supported": ["ES256", "none"]})
    result, doc = run(invoke, issuer, "--ca-file", ca_file)
    assert result.exit_code == 4
    assert ids(doc, "warn") == {"oidc.alg.rs256_missing", "oidc.alg.none_offered"}


def test_not_a_url_is_exit_1(invoke):
    result = invoke("probe", "oidc", "login.example.com")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "login.example.com" in result.stderr


def test_human_output(invoke, http_server):
    srv, issuer = serve_provider(http_server)
    result = invoke("probe", "oidc", issuer, env=ENV)
    assert result.exit_code == 3
    assert "endpoint(s) use plain HTTP" in result.stdout and "[oidc.endpoint.insecure]" in result.stdout


@pytest.mark.parametrize("target, issuer, first", [
    ("https://idp.test", "https://idp.test", "https://idp.test/.well-known/openid-configuration"),
    ("https://idp.test/t/", "https://idp.test/t/", "https://idp.test/t/.well-known/openid-configuration"),
    ("https://idp.test/.well-known/openid-configuration", "https://idp.test",
     "https://idp.test/.well-known/openid-configuration"),
    ("https://idp.test/.well-known/oauth-authorization-server/t", "https://idp.test/t",
     "https://idp.test/.well-known/oauth-authorization-server/t"),
])
def test_discovery_candidates(target, issuer, first):
    expected, candidates = discovery_candidates(target)
    assert expected == issuer
    assert candidates[0][1] == first
