"""`diagkit probe saml-metadata` through the CLI: files, HTTPS URLs, signatures, certificates, attacks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.cli_results import find, ids, run_json
from tests.fixtures.sso import builders as b
from tests.servers import Response, server_context
from tests.work import assert_linear

ENV = {"DIAGKIT_NOW": b.NOW_ISO}


def run(invoke, path, *args):
    return run_json(invoke, "probe", "saml-metadata", str(path), "--json", *args, env=ENV)


def write(tmp_path: Path, data: str | bytes, name: str = "metadata.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_healthy_signed_metadata_passes(invoke, tmp_path):
    path = write(tmp_path, b.sign(b.idp_entity()))
    result, doc = run(invoke, path, "--expect-entity-id", "https://idp.test/")
    assert result.exit_code == 0, doc
    assert set(doc) >= {"diagkit_version", "probe", "target", "started_at", "duration_ms", "findings", "facts"}
    assert doc["probe"] == "saml-metadata"
    assert ids(doc) == {"saml.metadata.ok", "saml.signature.valid"}
    assert "trust" in find(doc, "saml.signature.valid")["detail"]
    entity = doc["facts"]["entity"]
    assert entity["entity_id"] == "https://idp.test/"
    assert entity["endpoints"]["SingleSignOnService"][0]["https"] is True
    assert entity["idp"]["want_authn_requests_signed"] is False
    assert len(entity["certificates"][0]["fingerprint_sha256"]) == 95


def test_tampered_signature_is_invalid(invoke, tmp_path):
    signed = b.sign(b.idp_entity())
    tampered = signed.replace(b"https://idp.test/sso", b"https://idp.test/ssO", 1)
    result, doc = run(invoke, write(tmp_path, tampered))
    assert result.exit_code == 3
    assert "saml.signature.invalid" in ids(doc, "fail")
    assert "saml.metadata.ok" not in ids(doc)


def test_unsigned_metadata_records_it(invoke, tmp_path):
    result, doc = run(invoke, write(tmp_path, b.idp_entity()))
    assert result.exit_code == 0
    assert doc["facts"]["signed"] is False
    assert ids(doc) == {"saml.metadata.ok"}


def test_expired_valid_until(invoke, tmp_path):
    result, doc = run(invoke, write(tmp_path, b.idp_entity(valid_until="2029-12-01T00:00:00Z")))
    assert result.exit_code == 3
    assert "saml.metadata.expired" in ids(doc, "fail")
    assert find(doc, "saml.metadata.expired")["evidence"]["valid_until"] == "2029-12-01T00:00:00Z"


def test_sp_metadata_has_no_idp(invoke, tmp_path):
    sp = b.idp_entity("https://sp.test/", role="SPSSODescriptor", sso="https://sp.test/acs")
    result, doc = run(invoke, write(tmp_path, sp))
    assert result.exit_code == 3
    assert "saml.metadata.no_idp" in ids(doc, "fail")
    assert "SPSSODescriptor" in find(doc, "saml.metadata.no_idp")["detail"]


def test_certificate_expired_soon_and_weak(invoke, tmp_path):
    _, expired = b.make_cert("old", not_before=b.NOW - dt.timedelta(days=800), not_after=b.NOW - dt.timedelta(days=3))
    result, doc = run(invoke, write(tmp_path, b.idp_entity(key_descriptors=[b.key_descriptor(expired)])))
    assert result.exit_code == 3 and "saml.certificate.expired" in ids(doc, "fail")

    _, soon = b.make_cert("soon", not_after=b.NOW + dt.timedelta(days=10))
    result, doc = run(invoke, write(tmp_path, b.idp_entity(key_descriptors=[b.key_descriptor(soon)])))
    assert result.exit_code == 4
    assert ids(doc, "warn") == {"saml.certificate.expires_soon"}

    _, weak = b.make_cert("weak", bits=1024)
    result, doc = run(invoke, write(tmp_path, b.idp_entity(key_descriptors=[b.key_descriptor(weak)])))
    assert result.exit_code == 3
    weak_finding = find(doc, "saml.certificate.weak_key")
    assert weak_finding["severity"] == "fail" and "1024" in weak_finding["title"]


def test_sha1_certificate_signature_is_a_warning(invoke, tmp_path):
    key, cert = b.make_cert("sha1")
    sha1 = b.sha1_signed(key, cert)
    assert sha1.signature_hash_algorithm.name == "sha1"
    result, doc = run(invoke, write(tmp_path, b.idp_entity(key_descriptors=[b.key_descriptor(sha1)])))
    assert result.exit_code == 4
    finding = find(doc, "saml.certificate.weak_key")
    assert finding["severity"] == "warn" and "SHA1" in finding["title"]


def test_two_signing_certificates_is_rollover_info(invoke, tmp_path):
    _, first = b.make_cert("first")
    _, second = b.make_cert("second", key_n=1)
    enc = b.key_descriptor(b.make_cert("enc")[1], use="encryption")
    entity = b.idp_entity(key_descriptors=[b.key_descriptor(first), b.key_descriptor(second, use=None), enc])
    result, doc = run(invoke, write(tmp_path, entity))
    assert result.exit_code == 0
    assert ids(doc) == {"saml.certificate.rollover", "saml.metadata.ok"}
    assert len(find(doc, "saml.certificate.rollover")["evidence"]["certificates"]) == 2


def test_double_encoded_pem_certificate_is_read(invoke, tmp_path):
    _, cert = b.make_cert("double")
    entity = b.idp_entity(key_descriptors=[b.key_descriptor(cert, double_encoded=True)])
    result, doc = run(invoke, write(tmp_path, entity))
    assert result.exit_code == 0
    assert doc["facts"]["entity"]["certificates"][0]["subject"] == "CN=double"


def test_no_signing_certificate_warns(invoke, tmp_path):
    result, doc = run(invoke, write(tmp_path, b.idp_entity(key_descriptors=[])))
    assert result.exit_code == 4
    assert ids(doc, "warn") == {"saml.certificate.missing"}


def test_plain_http_sso_endpoint(invoke, tmp_path):
    result, doc = run(invoke, write(tmp_path, b.idp_entity(sso="http://idp.test/sso")))
    assert result.exit_code == 3
    finding = find(doc, "saml.sso.insecure_endpoint")
    assert {e["service"] for e in finding["evidence"]["endpoints"]} == {"SingleSignOnService", "SingleLogoutService"}


def test_entity_id_trailing_slash_mismatch(invoke, tmp_path):
    result, doc = run(invoke, write(tmp_path, b.idp_entity("https://idp.test/")), "--expect-entity-id",
                      "https://idp.test")
    assert result.exit_code == 3
    finding = find(doc, "saml.entity_id.mismatch")
    assert "trailing slash" in finding["detail"]
    assert finding["evidence"] == {"expected": "https://idp.test", "found": "https://idp.test/"}


def test_aggregate_summarised_and_picked_by_entity_id(invoke, tmp_path):
    _, expired = b.make_cert("old", not_before=b.NOW - dt.timedelta(days=800), not_after=b.NOW - dt.timedelta(days=3))
    agg = b.aggregate(
        b.idp_entity("https://good.test/idp", declare_ns=False),
        b.idp_entity("https://old.test/idp", declare_ns=False, key_descriptors=[b.key_descriptor(expired)]),
        b.idp_entity("https://sp.test/", declare_ns=False, role="SPSSODescriptor", sso="http://sp.test/acs"),
    )
    path = write(tmp_path, agg)
    result, doc = run(invoke, path)
    assert result.exit_code == 3
    assert doc["facts"]["aggregate"] == {"entities": 3, "idps": 2, "sps": 1}
    assert {"saml.metadata.aggregate", "saml.certificate.expired"} <= ids(doc)
    # The SP's plain-HTTP ACS is not an IdP problem: aggregates check IdPs.
    assert "saml.sso.insecure_endpoint" not in ids(doc)

    result, doc = run(invoke, path, "--expect-entity-id", "https://good.test/idp")
    assert result.exit_code == 0
    assert ids(doc) == {"saml.metadata.ok"}

    result, doc = run(invoke, path, "--expect-entity-id", "https://good.test/idp/")
    assert result.exit_code == 3
    finding = find(doc, "saml.entity_id.mismatch")
    assert finding["evidence"]["closest"] == "https://good.test/idp" and "trailing slash" in finding["detail"]


def test_aggregate_work_grows_linearly_with_its_entities(invoke, tmp_path):
    """A federation aggregate of n entities: twice the entities, at most about twice the work (counted)."""
    cert = b.key_descriptor(b.make_cert()[1])

    def run_aggregate(n: int) -> None:
        entities = [b.idp_entity(f"https://idp{i}.test/", key_descriptors=[cert], declare_ns=False,
                                 role="IDPSSODescriptor" if i % 8 == 0 else "SPSSODescriptor") for i in range(n)]
        result, doc = run(invoke, write(tmp_path, b.aggregate(*entities), f"agg{n}.xml"))
        assert doc["facts"]["aggregate"] == {"entities": n, "idps": (n + 7) // 8, "sps": n - (n + 7) // 8}

    assert_linear(run_aggregate, 40)


def test_aggregate_without_idp(invoke, tmp_path):
    agg = b.aggregate(b.idp_entity("https://sp.test/", declare_ns=False, role="SPSSODescriptor"))
    result, doc = run(invoke, write(tmp_path, agg))
    assert result.exit_code == 3 and "saml.metadata.no_idp" in ids(doc)


XXE = """<?xml version="1.0"?>
<!DOCTYPE md:EntityDescriptor [<!ENTITY secret SYSTEM "file://{path}">]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&secret;"/>
"""

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">""" + "".join(
    f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)) + """]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&lol9;"/>
"""


def test_xxe_is_refused_and_nothing_is_read(invoke, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    result, doc = run(invoke, write(tmp_path, XXE.format(path=secret)))
    assert result.exit_code == 3
    finding = find(doc, "saml.metadata.invalid")
    assert "DTD" in finding["detail"]
    assert "TOP-SECRET-CONTENT" not in result.stdout + result.stderr


def test_billion_laughs_is_refused_before_any_expansion(invoke, tmp_path):
    result, doc = run(invoke, write(tmp_path, LAUGHS))
    assert result.exit_code == 3
    assert ids(doc) == {"saml.metadata.invalid"}
    # Refused at the DOCTYPE itself (DTDForbidden), before a single entity is declared, let alone expanded.
    assert "(DTDForbidden)" in find(doc, "saml.metadata.invalid")["detail"]
    assert "lollol" not in result.stdout


@pytest.mark.parametrize("content, words", [
    ("<md:EntityDescriptor xmlns:md='urn:oasis:names:tc:SAML:2.0:metadata' entityID='x'>", "well-formed"),
    ("<root>not metadata</root>", "root element is <root>"),
    ("", "well-formed"),
])
def test_invalid_documents(invoke, tmp_path, content, words):
    result, doc = run(invoke, write(tmp_path, content))
    assert result.exit_code == 3
    finding = find(doc, "saml.metadata.invalid")
    assert words in finding["title"] + finding["detail"]


def test_missing_file_is_one_line_error(invoke, tmp_path):
    result = invoke("probe", "saml-metadata", str(tmp_path / "nope.xml"))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope.xml" in lines[0] and "does not exist" in lines[0]


def test_https_url_with_private_ca(invoke, http_server, ca, ca_file):
    body = b.sign(b.idp_entity())
    srv = http_server({"/metadata": Response(200, [("Content-Type", "application/samlmetadata+xml")], body)},
                      ssl_context=server_context(ca.issue_cert("127.0.0.1")))
    result, doc = run(invoke, srv.url("/metadata"), "--ca-file", ca_file)
    assert result.exit_code == 0, doc
    assert doc["facts"]["http_status"] == 200
    assert ids(doc) == {"saml.metadata.ok", "saml.signature.valid"}

    result, doc = run(invoke, srv.url("/metadata"))  # without the CA: the fetch itself fails
    assert result.exit_code == 3
    assert "--ca-file" in find(doc, "saml.metadata.unreachable")["detail"]


def test_url_not_found_and_timeout(invoke, http_server, silent_server):
    srv = http_server({})
    result, doc = run(invoke, srv.url("/missing"))
    assert result.exit_code == 3
    assert find(doc, "saml.metadata.unreachable")["evidence"]["status"] == 404

    silent = silent_server()
    result, doc = run(invoke, f"http://127.0.0.1:{silent.port}/md", "--timeout", "0.2")
    assert result.exit_code == 5 and "saml.metadata.unreachable" in ids(doc)  # timeouts: `error`
    # One request sent, no retry, and the client ended the wait itself.
    assert silent.wait_closed()
    assert silent.connections == 1 and silent.received[0].startswith(b"GET /md HTTP/1.1\r\n")


def test_human_output(invoke, tmp_path):
    path = write(tmp_path, b.idp_entity("https://idp.test/"))
    result = invoke("probe", "saml-metadata", str(path), "--expect-entity-id", "https://idp.test", env=ENV)
    assert result.exit_code == 3
    assert "The metadata's entityID is not the expected one" in result.stdout
    assert "[saml.entity_id.mismatch]" in result.stdout
