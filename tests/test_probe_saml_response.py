"""`diagkit probe saml-response` through the CLI, plus the shared decoding/parsing helpers and analyse_response."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zlib
from pathlib import Path
from urllib.parse import quote

import pytest

from diagkit.collectors.saml.response import analyse_response
from diagkit.errors import InputFormatError
from diagkit.formats.saml_xml import decode_saml_message, parse_xml
from diagkit.probe import Report
from tests.cli_results import find, ids, run_json
from tests.fixtures.sso import builders as b

AT = ("--at", b.NOW_ISO)
SECRETS = ("alice.secret@example.org", "Alice Secretname")


def run(invoke, source, *args, input=None):
    return run_json(invoke, "probe", "saml-response", source, "--json", *args, input=input)


def file_of(tmp_path: Path, xml: str | bytes, name="response.b64") -> str:
    path = tmp_path / name
    path.write_text(b.b64(xml))
    return str(path)


def signed_response(**kwargs) -> str:
    return b.response(b.signed_assertion(**kwargs))


def test_healthy_signed_response(invoke, tmp_path):
    result, doc = run(invoke, file_of(tmp_path, signed_response()), *AT, "--expect-audience", "https://sp.test/",
                      "--expect-destination", "https://sp.test/acs")
    assert result.exit_code == 0, doc
    assert ids(doc) == {"saml.response.ok"}
    facts = doc["facts"]["SAMLResponse"]
    assert facts["status"]["code"] == "Success"
    assert facts["signed"] == {"response": False, "assertion": True}
    assertion = facts["assertions"][0]
    assert assertion["attribute_names"] == ["displayName", "email"]
    assert assertion["name_id"] == {"format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                                    "value": "<redacted>"}
    assert assertion["audiences"] == ["https://sp.test/"]
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


def test_signed_response_envelope_counts(invoke):
    xml = b.sign(b.response(b.assertion()), *b.make_cert("idp.test signing"))
    result, doc = run(invoke, b.b64(xml), *AT)
    # Signed, but only the Response: a warning (CONTRACT.md saml.assertion.not_signed), not "unsigned".
    assert result.exit_code == 4, doc
    assert ids(doc) == {"saml.assertion.not_signed"}
    assert doc["facts"]["SAMLResponse"]["signed"] == {"response": True, "assertion": False}


def test_status_error_with_second_level_and_message(invoke):
    xml = b.response(status="Requester", second="InvalidNameIDPolicy",
                     message="NameID policy not satisfied for bob@example.org")
    result, doc = run(invoke, b.b64(xml), *AT)
    assert result.exit_code == 3
    finding = find(doc, "saml.response.status_error")
    assert finding["title"] == "The IdP returned status Requester / InvalidNameIDPolicy"
    assert finding["evidence"]["second_level"].endswith("InvalidNameIDPolicy")
    assert "NameID policy not satisfied" in finding["detail"]
    assert "bob@example.org" not in result.stdout
    # An error response carries no assertion: that is not "unsigned".
    assert "saml.assertion.unsigned" not in ids(doc)


@pytest.mark.parametrize("at, expected", [
    ("2030-01-01T00:11:00Z", "saml.assertion.expired"),       # 5 min validity + 300 s allowance passed
    ("2029-12-31T23:50:00Z", "saml.assertion.not_yet_valid"),  # NotBefore 23:59 minus 300 s not reached
])
def test_time_window(invoke, at, expected):
    result, doc = run(invoke, b.b64(signed_response()), "--at", at)
    assert result.exit_code == 3
    assert ids(doc, "fail") == {expected}
    assert find(doc, expected)["evidence"]["checked_at"] == at


def test_time_window_allowance_and_env_clock(invoke):
    # 00:08 is past NotOnOrAfter (00:05) but within the 300 s allowance.
    result, doc = run(invoke, b.b64(signed_response()), "--at", "2030-01-01T00:08:00Z")
    assert result.exit_code == 0, doc
    result = invoke("probe", "saml-response", b.b64(signed_response()), "--json",
                    env={"DIAGKIT_NOW": "2031-01-01T00:00:00Z"})
    assert result.exit_code == 3
    assert "saml.assertion.expired" in ids(json.loads(result.stdout))


def test_audience_mismatch_trailing_slash(invoke):
    result, doc = run(invoke, b.b64(signed_response()), *AT, "--expect-audience", "https://sp.test")
    assert result.exit_code == 3
    finding = find(doc, "saml.audience.mismatch")
    assert "trailing slash" in finding["detail"]
    assert finding["evidence"]["audiences"] == ["https://sp.test/"]


def test_destination_mismatch(invoke):
    xml = b.response(b.signed_assertion(), destination="https://sp.test/other")
    result, doc = run(invoke, b.b64(xml), *AT, "--expect-destination", "https://sp.test/acs")
    assert result.exit_code == 3
    finding = find(doc, "saml.destination.mismatch")
    assert finding["evidence"]["destination"] == "https://sp.test/other"


def test_unsigned_response(invoke):
    result, doc = run(invoke, b.b64(b.response(b.assertion())), *AT)
    assert result.exit_code == 3
    assert ids(doc, "fail") == {"saml.assertion.unsigned"}


def test_tampered_assertion_signature_is_invalid(invoke):
    xml = signed_response().replace("https://sp.test/acs", "https://evil.test/acs")
    result, doc = run(invoke, b.b64(xml), *AT)
    assert result.exit_code == 3
    assert "saml.signature.invalid" in ids(doc, "fail")
    assert "saml.assertion.unsigned" not in ids(doc)


def test_signature_wrapping_is_treated_as_unsigned(invoke):
    # A validly signed assertion hidden in Extensions; the assertion the SP would use is unsigned.
    hidden = b.signed_assertion(assertion_id="_orig")
    evil = b.assertion(assertion_id="_evil", name_id="mallory@example.org")
    xml = b.response(f'<samlp:Extensions>{hidden}</samlp:Extensions>{evil}')
    result, doc = run(invoke, b.b64(xml), *AT)
    assert result.exit_code == 3
    assert {"saml.signature.wrapping", "saml.assertion.multiple"} <= ids(doc, "warn")
    assert "saml.assertion.unsigned" in ids(doc, "fail")


def test_signature_referencing_other_id_is_wrapping(invoke):
    signed = b.signed_assertion(assertion_id="_a1").replace('ID="_a1"', 'ID="_a2"', 1)
    result, doc = run(invoke, b.b64(b.response(signed)), *AT)
    assert "saml.signature.wrapping" in ids(doc, "warn")
    assert "saml.assertion.unsigned" in ids(doc, "fail")


def test_encrypted_assertion_is_info_not_unsigned(invoke):
    enc = ('<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">'
           '<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/>'
           "<xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"
           "</saml:EncryptedAssertion>")
    result, doc = run(invoke, b.b64(b.response(enc)), *AT)
    assert result.exit_code == 0, doc
    assert ids(doc) == {"saml.assertion.encrypted", "saml.response.ok"}


def test_issuer_mismatch_between_response_and_assertion(invoke):
    xml = b.response(b.signed_assertion(issuer="https://other-idp.test/"))
    result, doc = run(invoke, b.b64(xml), *AT)
    assert result.exit_code == 4
    assert ids(doc, "warn") == {"saml.issuer.mismatch"}


def test_redirect_deflate_on_stdin_and_url_encoded_argument(invoke):
    xml = signed_response().encode()
    deflated = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = deflated.compress(xml) + deflated.flush()
    result, doc = run(invoke, "-", *AT, input=base64.b64encode(raw).decode())
    assert result.exit_code == 0, doc
    form = "SAMLResponse=" + quote(base64.encodebytes(xml).decode(), safe="") + "&RelayState=abc"
    result, doc = run(invoke, form, *AT)
    assert result.exit_code == 0, doc


def test_raw_xml_file(invoke, tmp_path):
    path = tmp_path / "response.xml"
    path.write_text(signed_response())
    result, doc = run(invoke, str(path), *AT)
    assert result.exit_code == 0 and ids(doc) == {"saml.response.ok"}


def test_not_saml_is_a_finding(invoke):
    result, doc = run(invoke, "hello-world!", *AT)
    assert result.exit_code == 3
    assert "neither XML nor base64" in find(doc, "saml.response.invalid")["detail"]
    result, doc = run(invoke, b.b64("<html><body>login</body></html>"), *AT)
    assert result.exit_code == 3
    assert "root element is <html>" in find(doc, "saml.response.invalid")["title"]


def test_missing_file_is_exit_1(invoke, tmp_path):
    result = invoke("probe", "saml-response", str(tmp_path / "missing.b64"))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.b64" in lines[0] and "does not exist" in lines[0]


def test_bad_at_is_exit_1(invoke):
    result = invoke("probe", "saml-response", b.b64(signed_response()), "--at", "yesterday")
    assert result.exit_code == 1
    assert "--at 'yesterday'" in result.stderr


def test_saml11_is_unsupported(invoke):
    xml = ('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" '
           'MinorVersion="1" ResponseID="_x"/>')
    result, doc = run(invoke, b.b64(xml), *AT)
    assert result.exit_code == 5
    assert ids(doc) == {"saml.response.unsupported"}
    assert "saml.response.unsupported" in result.stderr


def test_dtd_in_response_is_refused(invoke, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    xml = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY s SYSTEM "file://{secret}">]>'
           f'<samlp:Response xmlns:samlp="{b.SAMLP}" ID="_r">&s;</samlp:Response>')
    result, doc = run(invoke, b.b64(xml), *AT)
    assert result.exit_code == 3
    assert "DTD" in find(doc, "saml.response.invalid")["detail"]
    assert "TOP-SECRET-CONTENT" not in result.stdout


def test_subprocess_human_output():
    xml = b.response(status="Responder", second="AuthnFailed")
    proc = subprocess.run([sys.executable, "-m", "diagkit", "probe", "saml-response", b.b64(xml), *AT],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert "The IdP returned status Responder / AuthnFailed" in proc.stdout
    assert "[saml.response.status_error]" in proc.stdout
    assert proc.stderr == ""


# ---------------------------------------------------------------- shared helpers (used by HAR and redactor)


def test_decode_saml_message_variants():
    xml = b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>'
    encoded = base64.b64encode(xml).decode()
    assert decode_saml_message(xml) == xml
    assert decode_saml_message(xml.decode()) == xml
    assert decode_saml_message("\n".join(encoded[i:i + 20] for i in range(0, len(encoded), 20))) == xml
    assert decode_saml_message(quote(encoded, safe="")) == xml
    raw_deflate = zlib.compress(xml)[2:-4]
    assert decode_saml_message(base64.b64encode(raw_deflate)) == xml
    for bad in ("", "%%%", base64.b64encode(b"\x00\x01binary").decode(), "not base64 at all"):
        with pytest.raises(InputFormatError):
            decode_saml_message(bad)


def test_decode_refuses_deflate_bomb():
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = bomb.compress(b"<" + b"a" * (20 * 1024 * 1024)) + bomb.flush()
    with pytest.raises(InputFormatError, match="inflates beyond"):
        decode_saml_message(base64.b64encode(raw))


def test_parse_xml_names_source_and_refuses_entities():
    with pytest.raises(InputFormatError, match="my-source: not well-formed"):
        parse_xml(b"<a><b></a>", "my-source")
    with pytest.raises(InputFormatError, match="my-source: contains a DTD"):
        parse_xml(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', "my-source")
    assert parse_xml(b"<a/>", "s").tag == "a"


def test_analyse_response_api_for_har():
    report = Report()
    analyse_response(report, b.response(b.assertion()).encode(), b.NOW, expect_audience="https://sp.test/",
                     where="entry 3 SAMLResponse")
    finding = next(f for f in report.findings if f.id == "saml.assertion.unsigned")
    assert finding.title.startswith("entry 3 SAMLResponse: ")
    assert finding.evidence["where"] == "entry 3 SAMLResponse"
    assert report.facts["entry 3 SAMLResponse"]["status"]["code"] == "Success"
    report = Report()
    analyse_response(report, b"not xml", b.NOW)
    assert [f.id for f in report.findings] == ["saml.response.invalid"]
