"""Every HAR in the shared public corpus goes through `diagkit probe har --json` without a traceback."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CORPUS, check_corpus_complete, corpus_files, corpus_outcomes, require_corpus

HAR_FILES = corpus_files("har")
OUTCOMES = corpus_outcomes("har")
INVALID = ("mitmproxy-brokenfile.har", "haralyzer-single_entry.har", "mitmproxy-har_extractor.har")

pytestmark = pytest.mark.corpus
NOW = {"DIAGKIT_NOW": "2026-01-01T00:00:00Z"}  # verdicts that depend on dates stay those of the table


def test_corpus_har_is_complete():
    check_corpus_complete("har")


@pytest.mark.parametrize("path", HAR_FILES, ids=[p.name for p in HAR_FILES])
def test_corpus_har_runs_cleanly(invoke, path):
    result = invoke("probe", "har", "--json", str(path), env=NOW)
    assert "Traceback" not in result.stderr
    assert result.exit_code == OUTCOMES[path.relative_to(CORPUS).as_posix()], result.stderr
    doc = json.loads(result.stdout)
    assert doc["probe"] == "har" and doc["findings"]
    found = {f["id"] for f in doc["findings"]}
    assert "probe.run.crashed" not in found
    if path.name in INVALID:
        assert "har.invalid" in found and result.exit_code == 5
        assert path.name in result.stderr
    else:
        assert "har.invalid" not in found
        assert doc["facts"]["entries"] >= 1


def test_corpus_known_problems_are_found(invoke):
    by_name = {name: require_corpus(f"har/{name}") for name in
               ("mitmproxy-chrome.har", "mitmproxy-with-bom.har", "pagexray-responseCodes-304.har")}
    chrome = json.loads(invoke("probe", "har", "--json", str(by_name["mitmproxy-chrome.har"])).stdout)
    failed = next(f for f in chrome["findings"] if f["id"] == "har.request.failed")
    assert failed["evidence"]["class"] == "network"  # net::ERR_INTERNET_DISCONNECTED
    bom = invoke("probe", "har", "--json", str(by_name["mitmproxy-with-bom.har"]))
    assert bom.exit_code == 0 and json.loads(bom.stdout)["facts"]["entries"] >= 1
    codes = json.loads(invoke("probe", "har", "--json", str(by_name["pagexray-responseCodes-304.har"])).stdout)
    assert any(f["id"] == "har.response.server_error" and f["evidence"]["status"] == 503 for f in codes["findings"])
