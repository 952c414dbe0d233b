"""`diagkit collect --checklist sso-*-login-failure --har FILE`: the checklist's answers reach the HAR analysis
as expectations (evidence options), and an unanswered one is simply left out."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import yaml

from diagkit.casework import checklists
from tests.fixtures.sso import builders as b
from tests.test_har_saml_flow import login_flow

ACS = "https://127.0.0.1:9/saml/acs"  # nothing listens: the checklist's TLS probe of the ACS fails fast
COMMON = {"summary": "It fails", "expected_result": "It works", "actual_result": "It does not",
          "first_seen": "2026-11-23 09:40 +01:00", "steps_to_reproduce": "1. open 2. click", "tenant": "acme-prod",
          "impact": "all-users"}


def collect(invoke, tmp_path: Path, checklist: str, har: str, answers: dict[str, Any]):
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(answers))
    out = tmp_path / "packet.zip"
    result = invoke("collect", "--checklist", checklist, "--har", har, "--answers", path, "--yes",
                    "--timeout", "2", "-o", out)
    with zipfile.ZipFile(out) as zf:
        results = json.loads(zf.read("findings.json"))["results"]
    return result, next(r for r in results if r["probe"] == "har")


def test_saml_answers_become_har_expectations(invoke, tmp_path):
    response = b.b64(b.response(b.signed_assertion(recipient=ACS), destination=ACS))
    har = login_flow("chrome", response_b64=response).write(tmp_path / "login.har")
    answers = {**COMMON, "idp_type": "okta", "sp_entity_id": "https://wrong-sp.test/", "acs_url": ACS}
    result, har_result = collect(invoke, tmp_path, "sso-saml-login-failure", har, answers)
    assert result.exit_code == 3, result.stderr
    found = {f["id"]: f for f in har_result["findings"]}
    assert found["saml.audience.mismatch"]["severity"] == "fail"
    assert found["saml.audience.mismatch"]["evidence"]["expected"] == "https://wrong-sp.test/"
    # acs_url answered and right: no destination finding; idp_entity_id unanswered: no issuer expectation.
    assert "saml.destination.mismatch" not in found and "saml.issuer.mismatch" not in found
    text = json.dumps(har_result)
    assert "expect_issuer" not in text


def test_saml_answers_all_right_give_no_saml_fail(invoke, tmp_path):
    response = b.b64(b.response(b.signed_assertion(recipient=ACS), destination=ACS))
    har = login_flow("firefox", response_b64=response).write(tmp_path / "login.har")
    answers = {**COMMON, "idp_type": "okta", "sp_entity_id": "https://sp.test/", "acs_url": ACS,
               "idp_entity_id": "https://idp.test/"}
    result, har_result = collect(invoke, tmp_path, "sso-saml-login-failure", har, answers)
    assert [f["id"] for f in har_result["findings"] if f["severity"] == "fail"] == []
    assert "har.ok" in {f["id"] for f in har_result["findings"]}


def test_evidence_options_fill_and_leave_out():
    saml = checklists.load("sso-saml-login-failure")
    assert checklists.evidence_options(saml, {"sp_entity_id": "https://sp/", "acs_url": "https://sp/acs",
                                              "idp_entity_id": ""}) == {
        "expect_audience": "https://sp/", "expect_destination": "https://sp/acs"}
    assert checklists.evidence_options(saml, {}) == {}
    assert checklists.evidence_options(None, {"sp_entity_id": "x"}) == {}
    oidc = checklists.load("sso-oidc-login-failure")
    assert checklists.evidence_options(oidc, {"client_id": "web", "issuer_url": "https://idp/"}) == {
        "expect_audience": "web", "expect_issuer": "https://idp/"}


def test_evidence_options_are_validated(tmp_path):
    base = ("schema: 1\nid: tt\ntitle: T\ndescription: d\nquestions:\n  - name: sp\n    prompt: SP?\n"
            "evidence:\n  - name: h\n    title: HAR\n    kind: {kind}\n    options:\n      {key}: \"{{{{ answers.{q} }}}}\"\n")
    ok = base.format(kind="har", key="expect_audience", q="sp")
    assert checklists.validate_text(ok)[0] == []
    problems = [p.message for p in checklists.validate_text(base.format(kind="har", key="expect_audience", q="nope"))[0]]
    assert problems == ["placeholder names an unknown question 'nope'"]
    problems = [p.message for p in checklists.validate_text(base.format(kind="har", key="no_such", q="sp"))[0]]
    assert len(problems) == 1 and "has no option 'no_such'" in problems[0]
    problems = [p.message for p in checklists.validate_text(base.format(kind="log", key="expect_audience", q="sp"))[0]]
    assert len(problems) == 1 and "only taken by kind: har" in problems[0]
