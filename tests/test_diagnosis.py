"""The diagnosis rule engine over synthetic findings: every rule's own samples, precedence, where-conditions,
tying results of one host together, the JSON shape and plugin rules."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from diagkit import catalogue, diagnosis
from diagkit.cli.render import render_results
from diagkit.diagnosis import apply, diagnose, diagnose_findings, host_of, parse_rule, table
from diagkit.findings import Cause, Finding, ProbeResult, Severity, parse_results_document

SCHEMA = Path(__file__).resolve().parents[1] / "diagkit" / "schemas" / "findings.schema.json"
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def make(item: Any) -> Finding:
    """A finding from a sample item: an id, or {id, evidence, severity}; catalogue defaults otherwise."""
    spec = {"id": item} if isinstance(item, str) else dict(item)
    known = catalogue.load().get(spec["id"])
    severity = spec.get("severity") or (known.severity.value if known else "fail")
    return Finding(id=spec["id"], severity=Severity.parse(severity), title=known.title if known else spec["id"],
                   detail=known.meaning if known else "", evidence=dict(spec.get("evidence") or {}))


def sample(item: Any) -> tuple[list[Finding], dict[str, Any]]:
    if isinstance(item, dict) and "findings" in item:
        return [make(i) for i in item["findings"]], dict(item.get("facts") or {})
    return [make(i) for i in item], {}


def result(probe: str, target: str, *items: Any, facts: dict[str, Any] | None = None) -> ProbeResult:
    return ProbeResult(probe=probe, target=target, started_at=T0, duration_ms=5,
                       findings=[make(i) for i in items], facts=dict(facts or {}))


def rules_of(causes: list[Any]) -> list[str]:
    return [c.rule for c in causes]


SAMPLES = [(rule.id, kind, index, item) for rule in table() for kind in ("match", "no_match")
           for index, item in enumerate((rule.samples or {}).get(kind) or ())]


# ---------------------------------------------------------------- the table proves itself


@pytest.mark.parametrize(("rule_id", "kind", "index", "item"), SAMPLES,
                         ids=[f"{r}-{k}-{i}" for r, k, i, _ in SAMPLES])
def test_rule_samples(rule_id: str, kind: str, index: int, item: Any) -> None:
    findings, facts = sample(item)
    causes = diagnose_findings(findings, facts)
    if kind == "match":
        assert causes and causes[0].rule == rule_id, rules_of(causes)
    else:
        assert rule_id not in rules_of(causes)


def test_every_rule_has_both_kinds_of_sample() -> None:
    for rule in table():
        assert (rule.samples or {}).get("match") and (rule.samples or {}).get("no_match"), rule.id


def test_every_id_a_rule_names_is_catalogued() -> None:
    known = catalogue.load()
    for rule in table():
        for pattern in (*rule.ids(), *rule.unless):
            assert any(fnmatch.fnmatchcase(k, pattern) for k in known), (rule.id, pattern)


def test_rule_ids_are_unique_and_never_look_like_finding_ids() -> None:
    names = [rule.id for rule in table()]
    assert len(names) == len(set(names))
    assert all("." not in name for name in names)


# ---------------------------------------------------------------- precedence and tying


def test_one_expired_token_behind_a_401_is_one_cause_listing_the_most_specific_first() -> None:
    findings = [make("oauth.error"), make("har.auth.unauthorized"), make("http.auth.invalid_token"),
                make("jwt.expired")]
    causes = diagnose_findings(findings)
    assert [c.to_dict() for c in causes] == [{
        "cause": "The access token has expired",
        "severity": "fail",
        "findings": ["jwt.expired", "http.auth.invalid_token", "oauth.error", "har.auth.unauthorized"],
        "next_step": "Get a new token (refresh it) and retry; if fresh tokens are rejected too, compare the API "
                     "server's clock with the issuer's.",
        "rule": "token-expired",
    }]


def test_the_generic_token_rule_speaks_only_when_nothing_specific_does() -> None:
    assert rules_of(diagnose_findings([make("http.auth.invalid_token")])) == ["token-rejected"]
    assert rules_of(diagnose_findings([make("http.auth.invalid_token"), make("jwt.audience.mismatch")])) == [
        "token-audience"]


def test_pass_findings_are_no_evidence() -> None:
    assert diagnose_findings([make({"id": "jwt.expired", "severity": "pass"})]) == []
    assert diagnose_findings([make("tls.connect.ok"), make("dns.resolve.ok")]) == []


def test_worst_cause_first_then_table_order() -> None:
    causes = diagnose_findings([make("dns.resolvers.disagree"), make("tls.certificate.expired"),
                                make("tls.chain.incomplete")])
    assert [(c.rule, c.severity.value) for c in causes] == [
        ("tls-certificate-expired", "fail"), ("tls-chain-incomplete", "fail"), ("dns-split-horizon", "warn")]


def test_a_cause_is_never_worse_than_its_findings() -> None:
    causes = diagnose_findings([make({"id": "har.saml.relaystate_too_long", "severity": "warn"})])
    assert [(c.rule, c.severity.value) for c in causes] == [("saml-relaystate-too-long", "warn")]


def test_where_captures_the_inspecting_issuer_into_the_cause() -> None:
    root = "CN=Zscaler Root CA,O=Zscaler Inc."
    causes = diagnose_findings([make({"id": "tls.chain.untrusted", "evidence": {"root": root}})])
    assert causes[0].cause == f"TLS is intercepted: the certificate is issued by an inspecting proxy or " \
                              f"security product ({root})"
    assert rules_of(causes) == ["tls-interception"]


def test_where_on_facts() -> None:
    rule = parse_rule({"id": "toy", "cause": "Old server {server}", "severity": "warn", "next_step": "Upgrade.",
                       "all": ["http.response.server_error"],
                       "where": [{"in": "facts", "key": "headers.server", "matches": "^Apache/2\\.2", "as": "server"}]})
    findings = [make("http.response.server_error")]
    assert diagnose_findings(findings, {"headers": {"server": "nginx"}}, rules=[rule]) == []
    causes = diagnose_findings(findings, {"headers": {"server": "Apache/2.2.3"}}, rules=[rule])
    assert causes[0].cause == "Old server Apache/2.2.3"


def test_unless_and_globs() -> None:
    rule = parse_rule({"id": "toy", "cause": "c", "severity": "warn", "next_step": "n",
                       "any": ["saml.*.mismatch"], "unless": ["saml.signature.invalid"]})
    assert rules_of(diagnose_findings([make("saml.audience.mismatch")], rules=[rule])) == ["toy"]
    assert diagnose_findings([make("saml.audience.mismatch"), make("saml.signature.invalid")], rules=[rule]) == []


@pytest.mark.parametrize(("spec", "message"), [
    ({"id": "x", "cause": "c", "severity": "warn", "next_step": "n"}, "needs 'all' or 'any'"),
    ({"id": "x", "cause": "c", "severity": "warn", "next_step": "n", "all": ["a.b"], "colour": 1}, "unknown keys"),
    ({"id": "x", "cause": "c", "severity": "bad", "next_step": "n", "all": ["a.b"]}, "unknown severity"),
    ({"id": "x", "cause": "c", "severity": "warn", "next_step": "n", "all": ["a.b"],
      "where": [{"matches": "("}]}, "bad regex"),
    ({"id": "x", "cause": "c", "severity": "warn", "all": ["a.b"]}, "missing"),
])
def test_malformed_rules_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rule(spec)


def test_host_of_targets() -> None:
    assert host_of("https://API.example.com:8443/x?y=1") == "api.example.com"
    assert host_of("api.example.com:443") == "api.example.com"
    assert host_of("api.example.com.") == "api.example.com"
    assert host_of("[::1]:443") == "::1"
    assert host_of("captures/flow.har") is None
    assert host_of("<inline value, 300 chars, sha256 abc>") is None


def test_results_of_one_host_are_tied_and_other_hosts_are_not() -> None:
    dns = result("dns", "api.example.com", "dns.resolve.nxdomain")
    http = result("http", "https://api.example.com/v1", "http.connect.failed")
    other = result("http", "https://other.example.com/", "http.connect.failed")
    apply([dns, http, other])
    assert [c.findings for c in dns.diagnosis] == [["dns.resolve.nxdomain", "http.connect.failed"]]
    assert dns.diagnosis == http.diagnosis
    assert other.diagnosis == []
    assert rules_of(diagnose([dns, http, other])) == ["dns-nxdomain"]


def test_diagnose_lists_each_cause_of_a_run_once() -> None:
    a = result("http", "https://a.example/", "jwt.expired", "http.auth.invalid_token")
    b = result("http", "https://b.example/", "jwt.expired", "http.auth.invalid_token")
    c = result("saml-response", "response.xml", "saml.audience.mismatch")
    assert rules_of(diagnose([a, b, c])) == ["token-expired", "saml-audience"]


# ---------------------------------------------------------------- JSON shape


def test_json_carries_diagnosis_only_when_there_is_one_and_round_trips() -> None:
    healthy = result("tls", "h:443", "tls.connect.ok")
    sick = result("tls", "h:443", "tls.certificate.expired")
    apply([healthy])
    apply([sick])
    assert "diagnosis" not in healthy.to_dict()
    doc = sick.to_dict()
    assert list(doc) == ["diagkit_version", "probe", "target", "started_at", "duration_ms", "diagnosis",
                         "findings", "facts"]
    assert doc["diagnosis"][0]["findings"] == ["tls.certificate.expired"]
    again = parse_results_document(json.loads(json.dumps(doc)))[0]
    assert again.diagnosis == sick.diagnosis
    jsonschema.validate({"results": [doc, healthy.to_dict()]}, json.loads(SCHEMA.read_text()))


def test_schema_refuses_a_malformed_diagnosis() -> None:
    doc = result("tls", "h:443", "tls.certificate.expired").to_dict()
    doc["diagnosis"] = [{"cause": "x", "severity": "bad", "findings": [], "next_step": ""}]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"results": [doc]}, json.loads(SCHEMA.read_text()))


# ---------------------------------------------------------------- terminal output


def test_render_leads_with_the_cause_and_its_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    r = result("http", "https://api.example/", "jwt.claims.ok",
               {"id": "http.auth.invalid_token", "evidence": {"error": "invalid_token"}},
               {"id": "jwt.expired", "evidence": {"exp": "2026-03-01T10:00:00Z"}})
    apply([r])
    import click

    text = click.unstyle(render_results([r]))
    assert text.splitlines()[:3] == [
        "http https://api.example/  (5 ms)",
        "  likely cause",
        "  FAIL  The access token has expired  [token-expired]",
    ]
    assert text.index("[jwt.expired]") < text.index("[http.auth.invalid_token]") < text.index("other findings") \
        < text.index("[jwt.claims.ok]")


def test_render_makes_control_characters_in_a_cause_visible() -> None:
    r = result("tls", "h:443", {"id": "tls.chain.untrusted", "evidence": {"root": "CN=Zscaler\x1b[31m Root"}})
    apply([r])
    import click

    text = click.unstyle(render_results([r]))
    assert "\x1b[31m" not in text.split("[tls-interception]")[0]
    assert "CN=Zscaler\\x1b[31m Root" in text


# ---------------------------------------------------------------- plugins


def test_plugin_rules_come_after_the_built_in_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnosis.rules, "_registered", [])
    spec = {"id": "acme-degraded", "cause": "ACME is degraded", "severity": "warn", "next_step": "Wait.",
            "all": ["http.response.server_error"]}
    diagnosis.register("probe plugin 'acme'", [spec])
    diagnosis.register("probe plugin 'acme'", [spec])  # loaded again: no change
    assert table()[-1].id == "acme-degraded"
    assert rules_of(diagnose_findings([make("http.response.server_error")])) == ["acme-degraded"]
    with pytest.raises(ValueError, match="already defined"):
        diagnosis.register("probe plugin 'other'", [{**spec, "cause": "else"}])
    with pytest.raises(ValueError, match="already defined"):
        diagnosis.register("probe plugin 'other'", [{**spec, "id": "token-expired"}])


def test_rule_texts_survive_the_packet_redaction_unchanged() -> None:
    # collect redacts each result's JSON, diagnosis included: a rule's own words are diagkit's text and reach
    # the packet as written (NER once took the "SNI" of a next step for a person's name).
    from diagkit.casework.redaction import Redaction

    for rule in table():
        cause = Cause(cause=rule.cause, severity=rule.severity, findings=list(rule.ids()), next_step=rule.next_step,
                      rule=rule.id)
        one = result("tls", "api.example:443", "tls.certificate.expired")
        one.diagnosis = [cause]
        [packed] = Redaction().results([one])
        assert packed.diagnosis[0].to_dict() == cause.to_dict(), rule.id


def test_render_two_probes_of_one_host_and_a_shared_symptom(monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    monkeypatch.setenv("NO_COLOR", "1")
    tls = result("tls", "api.example:443", "tls.certificate.expired", "tls.chain.incomplete")
    http = result("http", "https://api.example/", "http.connect.failed")
    apply([tls, http])
    text = click.unstyle(render_results([tls, http]))
    assert [line for line in text.splitlines() if not line.startswith("            ")] == [
        "tls api.example:443  (5 ms)",
        "  likely causes",
        "  FAIL  The server's certificate has expired  [tls-certificate-expired]",
        "        next step: Renew the certificate and install it (with its intermediates) on every server behind "
        "this name.",
        "      FAIL  The certificate has expired  [tls.certificate.expired]",
        "        seen by another probe of this host: [http.connect.failed]",
        "  FAIL  The server does not send its intermediate certificate, so clients that do not fetch it (curl, Java, "
        "Python) fail  [tls-chain-incomplete]",
        "        next step: Configure the server to send the full chain (leaf followed by its intermediates).",
        "      FAIL  The server does not send the intermediate certificate(s)  [tls.chain.incomplete]",
        "        seen by another probe of this host: [http.connect.failed]",
        "",
        "http https://api.example/  (5 ms)",
        "  likely causes",
        "  FAIL  The server's certificate has expired  [tls-certificate-expired]",
        "        next step: Renew the certificate and install it (with its intermediates) on every server behind "
        "this name.",
        "      FAIL  Could not connect to the HTTP endpoint  [http.connect.failed]",
        "        seen by another probe of this host: [tls.certificate.expired]",
        "  FAIL  The server does not send its intermediate certificate, so clients that do not fetch it (curl, Java, "
        "Python) fail  [tls-chain-incomplete]",
        "        next step: Configure the server to send the full chain (leaf followed by its intermediates).",
        "        also: [http.connect.failed] (above)",
        "        seen by another probe of this host: [tls.chain.incomplete]",
        "",
        "summary: 3 fail",
    ]
