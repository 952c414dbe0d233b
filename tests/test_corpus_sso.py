"""Robustness: every SAML metadata/response and OIDC file of the shared corpus through the CLI.

No traceback, an exit code from the contract, and a clean one-line stderr when diagkit refuses the input.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CORPUS, check_corpus_complete, corpus_files, corpus_outcomes, require_corpus
from tests.fixtures.sso import builders as b
from tests.servers import HTTPServer, Response, json_response

pytestmark = pytest.mark.corpus
# The exit code each file gives, tests/fixtures/corpus_outcomes.json. An OIDC document gives 3 both ways it
# is served: from plain-HTTP loopback its endpoints are insecure (a fail), and with its own issuer kept
# the issuer does not match as well.
OUTCOMES = {**corpus_outcomes("saml"), **corpus_outcomes("oidc")}


@pytest.fixture(scope="module")
def shared_server():
    """One loopback server for all corpus documents (each test uses its own path prefix): keeps the file fast."""
    srv = HTTPServer({}).start()
    yield srv
    srv.stop()


def _check(result, code: int) -> None:
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    assert result.exit_code == code, text[-2000:]
    if result.exit_code == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("diagkit: error["), result.stderr
    else:
        doc = json.loads(result.stdout)
        assert doc["findings"], "a probe always reports at least one finding"
        for finding in doc["findings"]:
            assert finding["severity"] in {"pass", "info", "warn", "fail", "error"}


def _outcome(path: Path) -> int:
    return OUTCOMES[path.relative_to(CORPUS).as_posix()]


@pytest.mark.parametrize("kind", ["saml/metadata", "saml/responses", "oidc"])
def test_sso_corpus_is_complete(kind):
    check_corpus_complete(kind)




@pytest.mark.parametrize("path", corpus_files("saml/metadata"), ids=lambda p: p.name)
def test_saml_metadata_corpus(invoke, path):
    result = invoke("probe", "saml-metadata", str(path), "--json", env={"DIAGKIT_NOW": "2026-01-01T00:00:00Z"})
    _check(result, _outcome(path))


@pytest.mark.parametrize("path", corpus_files("saml/responses"), ids=lambda p: p.relative_to(CORPUS).as_posix())
def test_saml_response_corpus(invoke, path):
    result = invoke("probe", "saml-response", str(path), "--json", "--at", "2026-01-01T00:00:00Z")
    _check(result, _outcome(path))


def test_corpus_expectations(invoke):
    """A few files whose defect is documented in SOURCES.md must be reported as such."""
    expectations = [
        ("saml-metadata", "saml/metadata/unparsed_metadata.xml", "saml.metadata.invalid"),
        ("saml-metadata", "saml/metadata/noentity_metadata_settings1.xml", "saml.metadata.invalid"),
        ("saml-metadata", "saml/metadata/expired_metadata_settings1.xml", "saml.metadata.expired"),
        ("saml-metadata", "saml/metadata/signed_metadata_settings1.xml", "saml.signature.valid"),
        ("saml-response", "saml/responses/invalids/no_signature.xml.base64", "saml.assertion.unsigned"),
        ("saml-response", "saml/responses/invalids/status_code_responder.xml.base64", "saml.response.status_error"),
        ("saml-response", "saml/responses/invalids/no_saml2.xml.base64", "saml.response.unsupported"),
        ("saml-response", "saml/responses/invalids/multiple_assertions.xml.base64", "saml.assertion.multiple"),
        ("saml-response", "saml/responses/invalids/signature_wrapping_attack.xml.base64", "saml.signature.wrapping"),
        ("saml-response", "saml/responses/valid_encrypted_assertion.xml.base64", "saml.assertion.encrypted"),
    ]
    for probe, rel, expected in expectations:
        path = require_corpus(rel)
        result = invoke("probe", probe, str(path), "--json", env={"DIAGKIT_NOW": "2026-01-01T00:00:00Z"})
        ids = {f["id"] for f in json.loads(result.stdout)["findings"]}
        assert expected in ids, (rel, ids)


def test_large_aggregate(invoke):
    path = require_corpus("saml/metadata/pysaml2-urn-mace-swami.se-swamid-test-1.0-metadata.xml")
    result = invoke("probe", "saml-metadata", str(path), "--json", env={"DIAGKIT_NOW": "2026-01-01T00:00:00Z"})
    _check(result, _outcome(path))
    assert json.loads(result.stdout)["facts"]["aggregate"] == {"entities": 58, "idps": 1, "sps": 48}
    # How its cost grows with the number of entities: test_probe_saml_metadata's linear-work test.


@pytest.mark.parametrize("path", corpus_files("oidc"), ids=lambda p: p.name)
def test_oidc_corpus(invoke, shared_server, path):
    """Discovery documents are served with issuer/jwks_uri rewritten to the loopback server; JWKS files as the JWKS."""
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except ValueError:
        data = None
    srv = shared_server
    issuer = srv.url(f"/{path.stem}")
    if isinstance(data, dict) and "keys" in data:
        srv.routes[f"/{path.stem}/.well-known/openid-configuration"] = json_response({
            "issuer": issuer, "authorization_endpoint": issuer + "/authorize", "token_endpoint": issuer + "/token",
            "jwks_uri": issuer + "/jwks", "response_types_supported": ["code"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]})
        srv.routes[f"/{path.stem}/jwks"] = Response(200, [("Content-Type", "application/json")], raw)
    else:
        doc = dict(data) if isinstance(data, dict) else {}
        doc.update({"issuer": issuer, "jwks_uri": issuer + "/jwks"})
        srv.routes[f"/{path.stem}/.well-known/openid-configuration"] = json_response(doc)
        srv.routes[f"/{path.stem}/jwks"] = json_response({"keys": [b.rsa_jwk("k1")]})
    result = invoke("probe", "oidc", issuer, "--json", "--timeout", "5")
    _check(result, _outcome(path))
    findings = json.loads(result.stdout)["findings"]
    assert "oidc.discovery.unreachable" not in {f["id"] for f in findings}
    assert "oidc.endpoint.insecure" in {f["id"] for f in findings if f["severity"] == "fail"}  # the 3


@pytest.mark.parametrize("path", corpus_files("oidc"), ids=lambda p: p.name)
def test_oidc_corpus_issuer_kept(invoke, shared_server, path):
    """The document's own issuer kept (so it mismatches); only jwks_uri is pointed at loopback: never the internet."""
    raw = path.read_bytes()
    data = json.loads(raw.decode("utf-8-sig"))
    srv = shared_server
    prefix = f"/kept-{path.stem}"
    if isinstance(data, dict) and "jwks_uri" in data:
        data["jwks_uri"] = srv.url(prefix + "/jwks")
        raw = json.dumps(data).encode()
    srv.routes[prefix + "/.well-known/openid-configuration"] = Response(
        200, [("Content-Type", "application/json")], raw)
    result = invoke("probe", "oidc", srv.url(prefix), "--json", "--timeout", "2")
    _check(result, _outcome(path))
    found = {f["id"] for f in json.loads(result.stdout)["findings"]}
    assert found & {"oidc.issuer.mismatch", "oidc.discovery.missing_field"}
