"""Unit tests for the finding model: exit-code rule, ordering and JSON round trip."""

from __future__ import annotations

import datetime as dt

import pytest

from diagkit import catalogue
from diagkit.findings import (
    ExitStatus,
    ProbeResult,
    Severity,
    exit_status,
    parse_results_document,
    results_document,
)


def _result(*severities: str) -> ProbeResult:
    ids = {"pass": "tls.connect.ok", "info": "tls.connect.ok", "warn": "tls.certificate.expires_soon",
           "fail": "tls.certificate.expired", "error": "probe.run.timeout"}
    findings = [catalogue.make(ids[s], severity=s) for s in severities]
    return ProbeResult("tls", "h:443", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), 12, findings, {"k": 1})


@pytest.mark.parametrize(
    ("severities", "expected"),
    [
        ((), ExitStatus.OK),
        (("pass", "info"), ExitStatus.OK),
        (("pass", "warn"), ExitStatus.WARN),
        (("warn", "error"), ExitStatus.CHECK_ERROR),
        (("error", "fail"), ExitStatus.FAIL),
        (("warn", "fail"), ExitStatus.FAIL),
    ],
)
def test_exit_status_rule(severities, expected):
    assert exit_status([_result(*severities)]) is expected


def test_exit_status_across_results():
    assert exit_status([_result("warn"), _result("error")]) is ExitStatus.CHECK_ERROR
    assert int(ExitStatus.FAIL) == 3 and int(ExitStatus.WARN) == 4 and int(ExitStatus.CHECK_ERROR) == 5


def test_worst_first_ordering():
    result = _result("pass", "warn", "fail", "info", "error")
    assert [f.severity.value for f in result.sorted_findings()] == ["fail", "error", "warn", "info", "pass"]


def test_json_round_trip_single_and_many():
    one = _result("fail")
    doc = results_document([one])
    assert doc["started_at"] == "2026-01-02T03:04:05Z"
    back = parse_results_document(doc)
    assert back[0].to_dict() == one.to_dict()
    many = results_document([one, _result("pass")])
    assert len(parse_results_document(many)) == 2


def test_parse_rejects_other_json():
    with pytest.raises(ValueError):
        parse_results_document({"hello": 1})
    with pytest.raises(ValueError):
        Severity.parse("fatal")


def test_catalogue_make_fills_defaults_and_rejects_unknown_ids():
    finding = catalogue.make("tls.certificate.expired")
    assert finding.severity is Severity.FAIL and finding.remediation and finding.refs
    with pytest.raises(KeyError):
        catalogue.make("tls.made.up")
