"""`diagkit probe saml-response --idp-metadata/--idp-cert/--expect-issuer/--expect-nameid-format` via the CLI.

Responses are signed here with signxml and keys made with cryptography: the IdP-rotation case (signed by
the old certificate, metadata listing the new one), a Response-only signature, a tampered assertion, a
signature without an embedded certificate. Metadata comes from a file and from a real HTTP server on
127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from lxml import etree

from tests.cli_results import assert_one_error_line, find, ids, run_json
from tests.fixtures.sso import builders as b
from tests.servers import Response

AT = ("--at", b.NOW_ISO)
OLD = b.make_cert("idp.test signing 2029", key_n=0)
NEW = b.make_cert("idp.test signing 2030", key_n=1)
SECRETS = ("alice.secret@example.org", "Alice Secretname")


def fp(cert) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def write(tmp_path: Path, name: str, data: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def metadata(*certs, entity_id: str = "https://idp.test/", encryption=()) -> str:
    kds = [b.key_descriptor(c) for c in certs] + [b.key_descriptor(c, use="encryption") for c in encryption]
    return b.idp_entity(entity_id, key_descriptors=kds)


def signed_by(pair=OLD, **kwargs) -> str:
    key, cert = pair
    return b.response(b.sign(b.assertion(**kwargs), key, cert).decode())


def run(invoke, tmp_path: Path, xml: str | bytes, *args: str):
    return run_json(invoke, "probe", "saml-response", write(tmp_path, "response.b64", b.b64(xml)), "--json",
                    *AT, *args)


def test_rotated_certificate_is_untrusted_and_names_both_fingerprints(invoke, tmp_path):
    meta = write(tmp_path, "idp.xml", metadata(NEW[1]))
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-metadata", meta)
    assert result.exit_code == 3
    assert ids(doc, "fail") == {"saml.signature.untrusted_cert"}
    finding = find(doc, "saml.signature.untrusted_cert")
    text = finding["title"] + finding["detail"]
    assert fp(OLD[1]) in text and fp(NEW[1]) in text
    assert finding["evidence"]["signer_sha256"] == fp(OLD[1])
    assert finding["evidence"]["published_sha256"] == [fp(NEW[1])]
    assert finding["evidence"]["signer_sha256_hex"] == OLD[1].fingerprint(hashes.SHA256()).hex()
    assert "saml.response.ok" not in ids(doc)
    assert doc["facts"]["idp_certificates"][0]["fingerprint_sha256"] == fp(NEW[1])
    for secret in SECRETS:
        assert secret not in result.stdout


def test_metadata_from_a_local_http_server(invoke, tmp_path, http_server):
    srv = http_server({"/metadata": Response(200, [("Content-Type", "application/samlmetadata+xml")],
                                             metadata(NEW[1]))})
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-metadata", srv.url("/metadata"))
    assert result.exit_code == 3
    assert "saml.signature.untrusted_cert" in ids(doc, "fail")
    assert [r.route for r in srv.requests] == ["/metadata"]
    # The same server publishing both certificates (a rollover): trusted.
    srv.routes["/both"] = Response(200, [("Content-Type", "application/xml")], metadata(NEW[1], OLD[1]))
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-metadata", srv.url("/both"))
    assert result.exit_code == 0, doc["findings"]
    ok = find(doc, "saml.response.ok")
    assert f"verified with the IdP's published certificate SHA-256 {fp(OLD[1])}" in ok["detail"]


def test_metadata_url_not_found_is_not_trusted(invoke, tmp_path, http_server):
    srv = http_server({})
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-metadata", srv.url("/missing"))
    assert result.exit_code == 3
    assert "saml.metadata.unreachable" in ids(doc, "fail")
    assert "saml.response.ok" not in ids(doc)


def test_embedded_certificate_alone_is_never_reported_as_the_idps(invoke, tmp_path):
    result, doc = run(invoke, tmp_path, signed_by(OLD))
    assert result.exit_code == 0
    assert "NOT against the IdP's" in find(doc, "saml.response.ok")["detail"]


def test_idp_cert_pem_file(invoke, tmp_path):
    new_pem = write(tmp_path, "new.pem", NEW[1].public_bytes(serialization.Encoding.PEM))
    old_der = write(tmp_path, "old.cer", OLD[1].public_bytes(serialization.Encoding.DER))
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-cert", new_pem)
    assert result.exit_code == 3
    assert ids(doc, "fail") == {"saml.signature.untrusted_cert"}
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-cert", old_der)
    assert result.exit_code == 0, doc["findings"]
    both = write(tmp_path, "both.pem", NEW[1].public_bytes(serialization.Encoding.PEM)
                 + OLD[1].public_bytes(serialization.Encoding.PEM))
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-cert", both)
    assert result.exit_code == 0, doc["findings"]


def test_response_only_signature_is_a_warning(invoke, tmp_path):
    xml = b.sign(b.response(b.assertion()), *NEW)
    result, doc = run(invoke, tmp_path, xml, "--idp-metadata", write(tmp_path, "idp.xml", metadata(NEW[1])))
    assert result.exit_code == 4
    assert ids(doc) == {"saml.assertion.not_signed"}
    assert find(doc, "saml.assertion.not_signed")["severity"] == "warn"


def test_tampered_assertion_is_invalid_against_the_published_certificate(invoke, tmp_path):
    xml = signed_by(NEW, audience="https://sp.test/").replace("https://sp.test/</saml:Audience>",
                                                            "https://evil.test/</saml:Audience>")
    result, doc = run(invoke, tmp_path, xml, "--idp-metadata", write(tmp_path, "idp.xml", metadata(NEW[1])))
    assert result.exit_code == 3
    assert ids(doc, "fail") == {"saml.signature.invalid"}
    assert "saml.signature.untrusted_cert" not in ids(doc)


def test_tampered_and_signed_by_an_unpublished_certificate_is_invalid(invoke, tmp_path):
    xml = signed_by(OLD).replace("displayName", "displayNameX")
    result, doc = run(invoke, tmp_path, xml, "--idp-cert",
                      write(tmp_path, "new.pem", NEW[1].public_bytes(serialization.Encoding.PEM)))
    assert result.exit_code == 3
    finding = find(doc, "saml.signature.invalid")
    assert fp(OLD[1]) in finding["detail"] and fp(NEW[1]) in finding["detail"]


def _without_keyinfo(xml: str) -> bytes:
    root = etree.fromstring(xml.encode())
    for info in root.iter("{http://www.w3.org/2000/09/xmldsig#}KeyInfo"):
        info.getparent().remove(info)
    return etree.tostring(root)


def test_signature_without_embedded_certificate_is_checked_with_the_published_one(invoke, tmp_path):
    xml = _without_keyinfo(signed_by(NEW))
    meta = write(tmp_path, "idp.xml", metadata(NEW[1]))
    result, doc = run(invoke, tmp_path, xml, "--idp-metadata", meta)
    assert result.exit_code == 0, doc["findings"]
    xml = _without_keyinfo(signed_by(OLD))
    result, doc = run(invoke, tmp_path, xml, "--idp-metadata", meta)
    assert result.exit_code == 3
    assert fp(NEW[1]) in find(doc, "saml.signature.invalid")["detail"]


def test_encryption_certificate_does_not_count_for_signing(invoke, tmp_path):
    meta = write(tmp_path, "idp.xml", metadata(NEW[1], encryption=[OLD[1]]))
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-metadata", meta)
    assert result.exit_code == 3
    assert find(doc, "saml.signature.untrusted_cert")["evidence"]["published_sha256"] == [fp(NEW[1])]


@pytest.mark.parametrize("content, finding", [
    ("this is not xml <", "saml.metadata.invalid"),
    ('<root xmlns="urn:x"/>', "saml.metadata.invalid"),
    (f'<md:EntityDescriptor xmlns:md="{b.MD}" entityID="https://idp.test/"><md:SPSSODescriptor '
     'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>', "saml.metadata.no_idp"),
])
def test_broken_idp_metadata_is_a_fail_finding(invoke, tmp_path, content, finding):
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-metadata", write(tmp_path, "idp.xml", content))
    assert result.exit_code == 3
    assert finding in ids(doc, "fail")
    assert "saml.response.ok" not in ids(doc)
    assert "Traceback" not in result.stderr


def test_metadata_without_signing_certificate_cannot_check(invoke, tmp_path):
    meta = write(tmp_path, "idp.xml", b.idp_entity(key_descriptors=[]))
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-metadata", meta)
    assert result.exit_code == 5
    assert find(doc, "saml.certificate.missing")["severity"] == "error"


def test_unreadable_idp_cert_is_a_finding_and_missing_one_exits_1(invoke, tmp_path):
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-cert", write(tmp_path, "junk.pem", "hello"))
    assert result.exit_code == 3
    assert "saml.certificate.invalid" in ids(doc, "fail")
    result = invoke("probe", "saml-response", write(tmp_path, "r.b64", b.b64(signed_by(OLD))), *AT,
                    "--idp-cert", str(tmp_path / "nope.pem"))
    assert_one_error_line(result, r"nope\.pem.*does not exist")
    result = invoke("probe", "saml-response", write(tmp_path, "r.b64", b.b64(signed_by(OLD))), *AT,
                    "--idp-metadata", str(tmp_path / "nope.xml"))
    assert_one_error_line(result, r"nope\.xml.*does not exist")


def test_expect_issuer(invoke, tmp_path):
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--expect-issuer", "https://idp.test/")
    assert result.exit_code == 0, doc["findings"]
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--expect-issuer", "https://idp.test")
    assert result.exit_code == 3
    finding = find(doc, "saml.issuer.mismatch")
    assert finding["severity"] == "fail" and "trailing slash" in finding["detail"]
    assert finding["evidence"]["expected"] == "https://idp.test"


def test_issuer_not_the_metadata_entity_is_noted(invoke, tmp_path):
    meta = write(tmp_path, "idp.xml", metadata(OLD[1], entity_id="https://other-idp.test/"))
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-metadata", meta)
    assert result.exit_code == 0
    finding = find(doc, "saml.issuer.mismatch")
    assert finding["severity"] == "info" and finding["evidence"]["expected"] == "https://other-idp.test/"
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-metadata", meta, "--expect-issuer",
                      "https://other-idp.test/")
    assert result.exit_code == 3
    assert ids(doc, "fail") == {"saml.issuer.mismatch"}


@pytest.mark.parametrize("expected, exit_code", [
    ("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", 0),
    ("emailAddress", 0),
    ("email", 0),
    ("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", 3),
    ("persistent", 3),
    ("urn:oasis:names:tc:SAML:2.0:nameid-format:emailAddress", 3),
])
def test_expect_nameid_format(invoke, tmp_path, expected, exit_code):
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--expect-nameid-format", expected)
    assert result.exit_code == exit_code, doc["findings"]
    if exit_code:
        finding = find(doc, "saml.nameid.format_mismatch")
        assert finding["evidence"] == {"expected": expected, "found":
                                       "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                                       "where": "SAMLResponse"}
    assert "alice.secret@example.org" not in result.stdout


def test_idp_cert_given_inline(invoke, tmp_path):
    pem = NEW[1].public_bytes(serialization.Encoding.PEM).decode()
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-cert", pem)
    assert result.exit_code == 3
    assert ids(doc, "fail") == {"saml.signature.untrusted_cert"}
    result, doc = run(invoke, tmp_path, signed_by(OLD), "--idp-cert", b.cert_b64(OLD[1]))
    assert result.exit_code == 0, doc["findings"]


def test_response_and_assertion_signed_by_the_same_old_certificate_is_one_finding(invoke, tmp_path):
    xml = b.sign(b.response(b.sign(b.assertion(), *OLD).decode()), *OLD)
    result, doc = run(invoke, tmp_path, xml, "--idp-metadata", write(tmp_path, "idp.xml", metadata(NEW[1])))
    assert result.exit_code == 3
    assert [f["id"] for f in doc["findings"]] == ["saml.signature.untrusted_cert"]
    assert doc["facts"]["SAMLResponse"]["signed"] == {"response": True, "assertion": True}
