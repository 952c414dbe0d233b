"""`diagkit collect` end to end: every shipped checklist against loopback servers, readiness, redaction,
errors recorded as findings, atomic output, no prompts without a terminal, encryption to a vendor key."""

from __future__ import annotations

import base64
import datetime as dt
import json
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from diagkit.casework import checklists
from tests import servers
from tests.fixtures import secret_har as sh

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_HAR = ROOT / "examples" / "slow-page.har"
# Planted in examples/slow-page.har: none of these may reach a packet.
EXAMPLE_SECRETS = ["FAKE-7hQ2xV9mK4pL1nR8tW3yZ6bC0dE5fG", "FAKEcsrf9f8e7d6c5b4a39281706f5e4d3c2b1a0",
                   "jane.doe@example.com", "555 0134", "c2lnbmF0dXJlLW5vdC1yZWFsLWZha2UtZm9yLWRpYWdraXQtZXhhbXBsZQ"]
COMMON = {"summary": "It fails", "expected_result": "It works", "actual_result": "It does not",
          "first_seen": "2026-11-23 09:40 +01:00", "steps_to_reproduce": "1. open 2. click", "tenant": "acme-prod",
          "request_ids": "req-7f3c9a12 at 09:41"}


# ---------------------------------------------------------------- helpers


@pytest.fixture
def https(ca: Any, http_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Factory for an HTTPS loopback server whose CA the whole process trusts (SSL_CERT_FILE), so checklist
    probes, which take no --ca-file, verify it like a public site."""
    bundle = tmp_path / "trust.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    leaf = ca.issue_cert("127.0.0.1", "localhost")

    def make(routes: dict[Any, Any]) -> servers.HTTPServer:
        return http_server(routes, ssl_context=servers.server_context(leaf))

    return make


def run_collect(invoke, tmp_path: Path, *args: Any, answers: dict[str, Any] | None = None, yes: bool = True,
                timeout: str = "2"):
    out = tmp_path / "packet.zip"
    extra: list[Any] = []
    if answers is not None and "--checklist" in args:
        # COMMON holds answers for every shipped checklist; each one is given only the questions it asks
        # (an answer to a question it does not have is a usage error).
        asked = {q.name for q in checklists.load(str(args[list(args).index("--checklist") + 1])).questions}
        answers = {k: v for k, v in answers.items() if k in asked}
    if answers is not None:
        path = tmp_path / "answers.yaml"
        path.write_text(yaml.safe_dump(answers))
        extra += ["--answers", path]
    result = invoke("collect", *args, *extra, *(["--yes"] if yes else []), "--timeout", timeout, "-o", out)
    return result, out


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def finding_ids(packet: dict[str, bytes]) -> set[str]:
    data = json.loads(packet["findings.json"])
    return {f["id"] for r in data["results"] for f in r["findings"]}


def predicate(packet: dict[str, bytes]) -> dict[str, Any]:
    return json.loads(packet["manifest.json"])["predicate"]


def assert_verifies(invoke, path: Path) -> None:
    result = invoke("packet", "verify", path)
    assert result.exit_code == 0, result.stdout + result.stderr


def assert_no_secret(packet: dict[str, bytes], secrets: list[str]) -> None:
    for name, data in packet.items():
        for secret in secrets:
            for form in {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}:
                assert form.encode() not in data, f"{secret!r} leaked into {name}"


def jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part(claims)}.U2lnbmF0dXJlTm90UmVhbFNpZ25hdHVyZU5vdFJlYWw"


def small_har(path: Path, url: str, status: int, cookie: str) -> Path:
    entry = {
        "startedDateTime": "2026-11-23T09:41:02.000Z", "time": 50,
        "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1", "cookies": [{"name": "sid", "value": cookie}],
                    "headers": [{"name": "Cookie", "value": f"sid={cookie}"}], "queryString": [],
                    "headersSize": -1, "bodySize": 0},
        "response": {"status": status, "statusText": "", "httpVersion": "HTTP/1.1", "cookies": [],
                     "headers": [{"name": "Content-Type", "value": "text/html"}],
                     "content": {"size": 2, "mimeType": "text/html", "text": "no"}, "redirectURL": "",
                     "headersSize": -1, "bodySize": 2},
        "cache": {}, "timings": {"send": 0, "wait": 40, "receive": 10},
    }
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
                                        "entries": [entry]}}))
    return path


# ---------------------------------------------------------------- one end-to-end test per shipped checklist


def test_slow_page_load_ready(invoke, tmp_path: Path, https) -> None:
    site = https({"/orders": servers.Response(200, [("Content-Type", "text/html")], "<html>orders</html>")})
    answers = {**COMMON, "page_url": site.url("/orders"), "impact": "some-users"}
    result, out = run_collect(invoke, tmp_path, "--checklist", "slow-page-load", "--har", EXAMPLE_HAR,
                              "--case", "CASE-1234", answers=answers)
    assert result.exit_code == 3, result.stderr  # the HAR's 401 is a fail
    assert_verifies(invoke, out)
    packet = members(out)
    assert "evidence/slow-page.har" in packet
    ids = finding_ids(packet)
    assert {"har.request.slow", "har.auth.unauthorized", "tls.connect.ok", "env.clock.ok"} <= ids
    assert predicate(packet)["readiness"]["ready"] is True
    assert predicate(packet)["checklist"] == "slow-page-load"
    assert yaml.safe_load(packet["case.yaml"])["case_id"] == "CASE-1234"
    assert_no_secret(packet, EXAMPLE_SECRETS)
    # The redacted HAR is still a HAR with every entry, and keeps request ids.
    har = json.loads(packet["evidence/slow-page.har"])
    assert len(har["log"]["entries"]) == 5
    assert b"req-5e2a7c10-94bd-4d3f-b6e8-0f1a2c3d4e5f" in packet["evidence/slow-page.har"]
    assert str(ROOT) not in packet["findings.json"].decode()  # local paths stay local
    assert "Attach " in result.stdout and str(out) in result.stdout
    assert "readiness: READY (100%)" in result.stdout


def _saml_metadata(ca: Any, entity_id: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    old = ca.issue_cert("idp.test", not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                        not_after=dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
    der = x509.load_pem_x509_certificate(old.cert_chain_pems[0].bytes()).public_bytes(Encoding.DER)
    return f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"
    entityID="{entity_id}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>
      <ds:X509Certificate>{base64.b64encode(der).decode()}</ds:X509Certificate>
    </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="https://idp.test/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"""


def test_sso_saml_ready_and_not_ready(invoke, tmp_path: Path, https, ca: Any) -> None:
    site = https({"/metadata": servers.Response(200, [("Content-Type", "application/samlmetadata+xml")],
                                                _saml_metadata(ca, "https://idp.test/entity"))})
    user = "j.doe-affected-user-42"
    answers = {**COMMON, "impact": "all-users", "idp_type": "okta", "idp_metadata_url": site.url("/metadata"),
               "idp_entity_id": "https://idp.test/configured-entity", "sp_entity_id": "https://app.test/saml",
               "acs_url": site.url("/saml/acs"), "affected_user": user}
    har = small_har(tmp_path / "login.har", site.url("/saml/acs"), 500, "SAMLSESSIONCOOKIE0123456789abcdef")
    result, out = run_collect(invoke, tmp_path, "--checklist", "sso-saml-login-failure", "--har", har, answers=answers)
    assert result.exit_code == 3, result.stderr
    assert_verifies(invoke, out)
    packet = members(out)
    ids = finding_ids(packet)
    assert {"saml.certificate.expired", "saml.entity_id.mismatch", "har.response.server_error"} <= ids
    assert predicate(packet)["readiness"]["ready"] is True
    case = yaml.safe_load(packet["case.yaml"])
    assert case["affected_user"].startswith("<SECRET:") and case["idp_type"] == "okta"
    assert_no_secret(packet, [user, "SAMLSESSIONCOOKIE0123456789abcdef"])

    # Without the HAR and the SP entity id it is written anyway, but not ready, and says why.
    del answers["sp_entity_id"]
    result, out = run_collect(invoke, tmp_path, "--checklist", "sso-saml-login-failure", answers=answers)
    assert result.exit_code == 3
    ready = predicate(members(out))["readiness"]
    assert ready["ready"] is False
    assert [m["name"] for m in ready["missing_answers"]] == ["sp_entity_id"]
    assert [m["name"] for m in ready["missing_evidence"]] == ["login_har"]
    assert "NOT READY" in result.stdout and "sp_entity_id" in result.stdout


def test_sso_oidc(invoke, tmp_path: Path, https) -> None:
    holder: dict[str, Any] = {}

    def discovery(_req: servers.Request) -> servers.Response:
        base = holder["site"].base_url
        return servers.json_response({
            "issuer": base + "/someone-else", "authorization_endpoint": base + "/authorize",
            "token_endpoint": base + "/token", "jwks_uri": base + "/jwks", "response_types_supported": ["code"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]})

    site = holder["site"] = https({"/.well-known/openid-configuration": discovery,
                                   "/jwks": servers.json_response({"keys": []})})
    answers = {**COMMON, "impact": "all-users", "idp_type": "keycloak", "issuer_url": site.base_url,
               "client_id": "orders-web", "redirect_uri": site.url("/cb")}
    result, out = run_collect(invoke, tmp_path, "--checklist", "sso-oidc-login-failure", answers=answers)
    assert result.exit_code == 3, result.stderr  # the issuer does not match: `fail`
    assert_verifies(invoke, out)
    packet = members(out)
    assert {"oidc.issuer.mismatch", "tls.connect.ok"} <= finding_ids(packet)
    ready = predicate(packet)["readiness"]
    assert ready["ready"] is False and [m["name"] for m in ready["missing_evidence"]] == ["login_har"]
    assert yaml.safe_load(packet["case.yaml"])["client_id"] == "orders-web"


def test_api_auth_failure_with_sensitive_token(invoke, tmp_path: Path, https) -> None:
    site = https({"/v2/orders": servers.Response(401, [("Content-Type", "application/json")], '{"message":"no"}')})
    now = int(dt.datetime.now(dt.UTC).timestamp())
    token = jwt({"iss": "https://idp.test/", "aud": "api://orders", "sub": "user-77", "exp": now - 3600,
                 "iat": now - 7200, "scope": "orders.read"})
    log = tmp_path / "client.log"
    log.write_text(f"GET /v2/orders\nAuthorization: Bearer {token}\nX-Request-Id: req-abc-123\n"
                   "db password=Hunter2-planted-secret\n")
    answers = {**COMMON, "impact": "one-integration", "api_url": site.url("/v2/orders"), "http_method": "get",
               "access_token": token, "expected_audience": "api://orders"}
    result, out = run_collect(invoke, tmp_path, "--checklist", "api-auth-failure", "--attach", log, answers=answers)
    assert result.exit_code == 3, result.stderr
    assert_verifies(invoke, out)
    packet = members(out)
    assert {"http.auth.challenge_missing", "jwt.expired"} <= finding_ids(packet)
    ready = predicate(packet)["readiness"]
    assert ready["ready"] is True
    assert ready["skipped_probes"] == [{
        "probe": "oidc", "title": "The issuer's discovery document and keys", "missing_answers": ["issuer"],
        "reason": 'skipped the OpenID Connect check (The issuer\'s discovery document and keys): no answer to '
                  '"Expected token issuer (iss) / authorization server URL"'}]
    assert "{{" not in result.stderr and "{{" not in json.dumps(predicate(packet))
    assert b"req-abc-123" in packet["evidence/client.log"]
    assert_no_secret(packet, [token, token.split(".")[2], "Hunter2-planted-secret"])
    assert yaml.safe_load(packet["case.yaml"])["http_method"] == "GET"


def test_webhook_delivery_not_ready_without_log(invoke, tmp_path: Path, https) -> None:
    site = https({("POST", "/hook"): servers.Response(204)})
    answers = {**COMMON, "impact": "all-events", "webhook_url": site.url("/hook"), "delivery_ids": "dlv_1 at 09:41"}
    result, out = run_collect(invoke, tmp_path, "--checklist", "webhook-delivery-failure", answers=answers)
    assert_verifies(invoke, out)
    packet = members(out)
    assert "tls.connect.ok" in finding_ids(packet)
    ready = predicate(packet)["readiness"]
    assert ready["ready"] is False and ready["score"] < 100
    assert [m["name"] for m in ready["missing_evidence"]] == ["receiver_log"]
    # The checklist's dns probe asks the (loopback, empty) system resolver for "127.0.0.1" as a name:
    # NXDOMAIN, a `fail` (3), while getaddrinfo reads it as an address (warn); the delivery itself passes.
    assert result.exit_code == 3, result.stderr
    by_probe = {r["probe"]: {f["id"]: f["severity"] for f in r["findings"]}
                for r in json.loads(packet["findings.json"])["results"]}
    assert by_probe["dns"] == {"dns.resolve.nxdomain": "fail", "dns.system.differs": "warn"}
    assert by_probe["webhook"] == {"webhook.delivered": "pass"}


def test_tls_certificate_error_and_clock_skew(invoke, tmp_path: Path, ca: Any, tls_server: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "trust.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    leaf = ca.issue_cert("127.0.0.1", not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                         not_after=dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
    behind = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    import email.utils

    srv = tls_server(leaf, date_header=email.utils.format_datetime(behind, usegmt=True))
    log = tmp_path / "error.txt"
    log.write_text("javax.net.ssl.SSLHandshakeException: PKIX path building failed\n")
    answers = {**COMMON, "impact": "all-clients", "client": "java", "endpoint": f"127.0.0.1:{srv.port}"}
    result, out = run_collect(invoke, tmp_path, "--checklist", "tls-certificate-error", "--attach", log,
                              answers=answers)
    assert result.exit_code == 3, result.stderr
    assert_verifies(invoke, out)
    packet = members(out)
    assert {"tls.certificate.expired", "env.clock.skewed"} <= finding_ids(packet)
    clock = predicate(packet)["environment"]["clock"]
    assert clock["measured"] is True and 7150 <= clock["offset_s"] <= 7250  # this computer is ~2 h ahead
    assert predicate(packet)["readiness"]["ready"] is True


def test_dns_resolution_failure(invoke, tmp_path: Path, dns_server: Any) -> None:
    srv = dns_server("www.test. 60 IN A 192.0.2.1\n")
    lookup = tmp_path / "lookup.txt"
    lookup.write_text(";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN\n")
    answers = {**COMMON, "impact": "one-network", "network": "office", "hostname": "missing.test",
               "resolver": srv.address, "record_type": "A"}
    result, out = run_collect(invoke, tmp_path, "--checklist", "dns-resolution-failure", "--attach", lookup,
                              answers=answers)
    assert result.exit_code == 3, result.stderr  # NXDOMAIN is a `fail`
    assert_verifies(invoke, out)
    packet = members(out)
    assert "dns.resolve.nxdomain" in finding_ids(packet)
    assert ("missing.test.", "A") in srv.queries
    assert predicate(packet)["readiness"]["ready"] is True


# ---------------------------------------------------------------- failures, atomicity, prompts


def test_probe_that_cannot_run_is_an_error_finding_and_packet_is_written(invoke, tmp_path: Path,
                                                                         silent_server: Any) -> None:
    silent, silent_udp = silent_server(), silent_server(udp=True)
    result, out = run_collect(invoke, tmp_path, "--probe", f"har={tmp_path / 'missing.har'}",
                              "--probe", f"tls=127.0.0.1:{silent.port}",
                              "--probe", f"dns=missing.test;resolver=127.0.0.1:{silent_udp.port}", timeout="0.2")
    assert result.exit_code == 5, result.stderr  # nothing could be checked: errors only
    assert out.exists()
    assert_verifies(invoke, out)
    data = json.loads(members(out)["findings.json"])
    by_probe = {r["probe"]: {f["id"]: f["severity"] for f in r["findings"]} for r in data["results"]}
    assert by_probe["har"] == {"probe.input.missing": "error"}
    assert by_probe["dns"] == {"dns.resolve.timeout": "error"}
    assert {sev for sev in by_probe["tls"].values()} == {"error"}
    assert "Packet written" in result.stdout


def test_error_only_exit_code_is_5(invoke, tmp_path: Path) -> None:
    result, out = run_collect(invoke, tmp_path, "--probe", f"har={tmp_path / 'missing.har'}")
    assert result.exit_code == 5
    assert out.exists()


def test_keyboard_interrupt_while_writing_leaves_no_packet(invoke, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from diagkit.packet import zipsafe

    out = tmp_path / "packet.zip"
    out.write_bytes(b"previous packet")

    def interrupted(*_a: Any, **_k: Any) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(zipsafe, "write_zip", interrupted)
    result = invoke("collect", "--har", EXAMPLE_HAR, "--yes", "-o", out)
    assert result.exit_code == 130
    assert "nothing was written" in result.stderr
    assert out.read_bytes() == b"previous packet"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["packet.zip"]  # no temporary file left behind


def test_a_file_the_leak_gate_refuses_is_left_out_and_the_packet_still_written(
        invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from diagkit.errors import LeakDetected
    from diagkit.redact import engine

    original = engine.Redactor.redact_bytes

    def gate(self: Any, data: bytes, *, name: str = "<input>", fmt: str = "auto") -> Any:
        if name.endswith(".log"):
            raise LeakDetected(f"'{name}' line 1: something still looks like a secret; nothing was written")
        return original(self, data, name=name, fmt=fmt)

    monkeypatch.setattr(engine.Redactor, "redact_bytes", gate)
    log = tmp_path / "app.log"
    log.write_text("hello\n")
    result = invoke("collect", "--har", EXAMPLE_HAR, "--attach", log, "--yes", "-o", tmp_path / "p.zip")
    assert result.exit_code == 3, result.stderr  # the HAR's own failures; the refused file is an error finding
    assert "Traceback" not in result.stderr
    assert_verifies(invoke, tmp_path / "p.zip")
    packet = members(tmp_path / "p.zip")
    assert "evidence/app.log" not in packet and "evidence/slow-page.har" in packet
    results = json.loads(packet["findings.json"])["results"]
    problem = next(r for r in results if r["probe"] == "evidence")
    assert problem["target"] == "app.log"
    assert [(f["id"], f["severity"]) for f in problem["findings"]] == [("collect.evidence.not_redacted", "error")]
    assert predicate(packet)["redaction"]["by_member"].get("evidence/app.log") is None


def test_parse_probe_spec() -> None:
    from diagkit.casework.plan import parse_probe_spec
    from diagkit.errors import UsageError

    run = parse_probe_spec("dns=example.com;type=aaaa;resolver=192.0.2.1;resolver=192.0.2.2;system")
    assert (run.probe, run.target) == ("dns", "example.com")
    assert run.options == {"type": "AAAA", "resolver": ("192.0.2.1", "192.0.2.2"), "system": True}
    run = parse_probe_spec("http=https://x.example.com/a;jsessionid=1;expect-scope=read")
    assert run.target == "https://x.example.com/a;jsessionid=1" and run.options == {"expect_scope": "read"}
    with pytest.raises(UsageError, match="has no option 'sni'"):
        parse_probe_spec("tls=x.example.com:443;sni=y")
    with pytest.raises(UsageError, match="expected NAME=TARGET"):
        parse_probe_spec("tls")


@pytest.mark.parametrize(("probe", "option", "value", "message"), [
    ("dns", "type", "BOGUS", "'BOGUS' is not one of 'a', 'aaaa', 'cname', 'mx', 'txt', 'caa', 'ns'."),
    ("har", "slow-ms", "1.5", "'1.5' is not a valid integer."),
    ("webhook", "slow-after", "abc", "'abc' is not a valid float."),
])
def test_a_refused_option_value_reads_the_same_in_probe_and_collect(invoke, tmp_path: Path, probe: str,
                                                                   option: str, value: str, message: str) -> None:
    """One reading of option values (diagkit.probe.convert_value) for `diagkit probe` and `collect --probe`."""
    direct = invoke("probe", probe, "x", f"--{option}", value)
    assert direct.exit_code == 2 and f"Invalid value for '--{option}': {message}" in direct.stderr
    spec = invoke("collect", "--probe", f"{probe}=x;{option}={value}", "-o", str(tmp_path / "p.zip"))
    assert spec.exit_code == 2 and f"--{option}: Invalid value: {message}" in spec.stderr


def test_option_values_keep_the_declared_spelling() -> None:
    from diagkit import plugins
    from diagkit.probe import coerce_options

    dns, har = plugins.get("dns"), plugins.get("har")
    assert coerce_options(dns, {"type": "aaaa", "system": "off"}, "here") == {"type": "AAAA", "system": False}
    assert coerce_options(har, {"slow-ms": "10", "max_skew": 5}, "here") == {"slow_ms": 10, "max_skew": 5}


@pytest.mark.parametrize(("args", "status", "message"), [
    (["--probe", "telnet=x"], 1, "no probe named 'telnet'"),
    (["--probe", "tls=x.example.com:443;bearer=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2VjcmV0c2lnbmF0dXJl"],
     2, "has no option 'bearer'"),
    (["--probe", "tls=localhost:99999"], 2, "port '99999' is not a port number (1-65535)"),
    (["--checklist", "nope"], 1, "no checklist named 'nope'"),
    (["--checklist", "slow-page-load", "--set", "page_url=ftp://x"], 1, "--set: answer 'page_url' expected an http"),
    (["--probe", "tls=x:1", "--ca-file", "/nonexistent/ca.pem"], 1, "--ca-file '/nonexistent/ca.pem' does not exist"),
])
def test_bad_input_is_one_line_and_no_packet(invoke, tmp_path: Path, args: list[str], status: int,
                                             message: str) -> None:
    result = invoke("collect", *args, "--yes", "-o", tmp_path / "p.zip")
    assert result.exit_code == status
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "eyJzdWIiOiIxIn0" not in result.stderr  # a token in a spec is never echoed
    assert not (tmp_path / "p.zip").exists()


def test_unreadable_and_binary_evidence_become_findings_and_the_packet_is_written(invoke, tmp_path: Path) -> None:
    image = tmp_path / "shot.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    truncated = tmp_path / "cut.har"
    truncated.write_bytes(EXAMPLE_HAR.read_bytes()[:3000])
    empty = tmp_path / "empty.har"
    empty.write_bytes(b"")
    result = invoke("collect", "--case", "CS-1", "--attach", image, "--har", tmp_path / "gone.har", "--har", truncated,
                    "--har", empty, "--har", EXAMPLE_HAR, "--yes", "-o", tmp_path / "p.zip")
    assert result.exit_code == 3, result.stderr
    assert "warning: attachment" in result.stderr and "is a binary file" in result.stderr
    assert "Traceback" not in result.stderr
    assert_verifies(invoke, tmp_path / "p.zip")
    packet = members(tmp_path / "p.zip")
    assert sorted(n for n in packet if n.startswith("evidence/")) == ["evidence/slow-page.har"]
    results = json.loads(packet["findings.json"])["results"]
    problems = sorted((r["target"], f["id"], f["severity"]) for r in results if r["probe"] == "evidence"
                      for f in r["findings"])
    assert problems == [("cut.har", "collect.evidence.not_redacted", "error"),
                        ("empty.har", "collect.evidence.not_redacted", "error"),
                        ("gone.har", "collect.evidence.unreadable", "error"),
                        ("shot.png", "collect.evidence.unreadable", "error")]
    har_ids = {r["target"]: {f["id"] for f in r["findings"]} for r in results if r["probe"] == "har"}
    assert har_ids["evidence/cut.har"] == har_ids["evidence/empty.har"] == {"har.invalid"}
    assert yaml.safe_load(packet["case.yaml"])["case_id"] == "CS-1"  # the customer's answers are kept


def test_only_evidence_problems_exit_5(invoke, tmp_path: Path) -> None:
    result = invoke("collect", "--har", tmp_path / "gone.har", "--yes", "-o", tmp_path / "p.zip")
    assert result.exit_code == 5, result.stderr
    assert_verifies(invoke, tmp_path / "p.zip")


def test_nothing_to_collect_is_a_usage_error(invoke, tmp_path: Path) -> None:
    result = invoke("collect", "-o", tmp_path / "p.zip")
    assert result.exit_code == 2 and "nothing to collect" in result.stderr


def test_an_answer_to_an_unknown_question_is_a_usage_error(invoke, tmp_path: Path) -> None:
    result = invoke("collect", "--checklist", "slow-page-load", "--har", EXAMPLE_HAR, "--set", "pageurl=https://x.test/",
                    "--yes", "-o", tmp_path / "p.zip")
    assert result.exit_code == 2
    assert ("checklist 'slow-page-load' has no question 'pageurl' (did you mean 'page_url'?); its questions are: "
            "summary, page_url, steps_to_reproduce,") in result.stderr
    assert not (tmp_path / "p.zip").exists()


def test_environment_proxy_credentials_never_packed(invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://alice:S3cretProxyPass@proxy.corp.example:3128")
    result, out = run_collect(invoke, tmp_path, "--har", EXAMPLE_HAR)
    env = predicate(members(out))["environment"]
    assert "proxy.corp.example" in env["proxy"]["https_proxy"]
    assert env["python"]["version"] and env["os"]["system"] and env["timezone"]["utc_offset"]
    assert_no_secret(members(out), ["S3cretProxyPass", "alice"])


def test_encrypted_to_the_checklists_vendor_key(invoke, tmp_path: Path) -> None:
    keydir = tmp_path / "vendor"
    assert invoke("keys", "generate", "--dir", keydir).exit_code == 0
    recipient = (keydir / "encryption.pub").read_text().strip()
    checklist = tmp_path / "vendor.yaml"
    checklist.write_text(f"""\
id: vendor-case
title: Vendor case
description: Packets go to the vendor only.
recipient_key: "{recipient}"
questions:
  - name: summary
    prompt: What?
""")
    result, out = run_collect(invoke, tmp_path, "--checklist", checklist, "--har", EXAMPLE_HAR)
    assert result.exit_code == 3, result.stderr
    assert "encrypted" in result.stdout
    assert not zipfile.is_zipfile(out)
    assert invoke("packet", "verify", out, "--identity", keydir / "encryption.key").exit_code == 0
    assert invoke("packet", "verify", out).exit_code == 1


# ---------------------------------------------------------------- the signing key checked first; what findings keep


def test_collect_checks_the_sign_key_before_running_probes(invoke: Any, tmp_path: Path) -> None:
    result = invoke("collect", "--har", sh.secret_har(tmp_path), "--sign-key", tmp_path / "missing.key",
                    "-o", tmp_path / "p.zip")
    assert result.exit_code == 1
    assert "missing.key" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "running" not in result.stderr and not (tmp_path / "p.zip").exists()


SAML_RESPONSE = (
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" '
    'IssueInstant="2026-01-01T10:00:00Z" Destination="https://sp.example.com/acs">'
    '<saml:Issuer>https://idp.example.com</saml:Issuer><samlp:Status>'
    '<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
    '<saml:Assertion ID="_a1" Version="2.0" IssueInstant="2026-01-01T10:00:00Z">'
    '<saml:Issuer>https://idp.example.com</saml:Issuer><saml:Subject>'
    f'<saml:NameID>{sh.PLANTED["email"]}</saml:NameID></saml:Subject></saml:Assertion></samlp:Response>'
)


def test_collect_keeps_saml_urls_and_catalogue_refs_in_findings(invoke: Any, tmp_path: Path) -> None:
    """findings.json in a packet had IdP/SP URLs turned into <TOKEN:..> and "§4.1.3.5" refs into <IP:..>."""
    import base64

    acs = sh.entry("https://sp.example.com/acs", 302)
    acs["request"]["method"] = "POST"
    acs["request"]["postData"] = {"mimeType": "application/x-www-form-urlencoded", "params": [
        {"name": "SAMLResponse", "value": base64.b64encode(SAML_RESPONSE.encode()).decode()}]}
    har = tmp_path / "sso.har"
    har.write_text(json.dumps(sh.har_doc([acs])))
    plain = invoke("probe", "har", har, "--json")
    expected_refs = {f["id"]: f["refs"] for f in json.loads(plain.stdout)["findings"]}
    assert expected_refs.get("saml.assertion.unsigned")

    result = invoke("collect", "--har", har, "--yes", "-o", tmp_path / "p.zip")
    assert result.exit_code == 3, result.stderr
    findings = json.loads(zipfile.ZipFile(tmp_path / "p.zip").read("findings.json"))
    har_result = next(r for r in findings["results"] if r["probe"] == "har")
    assert {f["id"]: f["refs"] for f in har_result["findings"]} == expected_refs
    analysis = har_result["facts"]["saml_messages"][0]["analysis"]
    assert analysis["issuer"] == "https://idp.example.com"
    assert analysis["destination"] == "https://sp.example.com/acs"
    assert sh.PLANTED["email"] not in json.dumps(findings)
