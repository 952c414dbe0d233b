"""Every HAR in the shared public corpus goes through `diagkit probe har --json` without a traceback."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CORPUS, corpus_files

HAR_FILES = corpus_files("har")
INVALID = ("mitmproxy-brokenfile.har", "haralyzer-single_entry.har", "mitmproxy-har_extractor.har")

pytestmark = [pytest.mark.corpus,
              pytest.mark.skipif(not (CORPUS / "har").is_dir(), reason="shared corpus folder is absent")]


@pytest.mark.parametrize("path", HAR_FILES, ids=[p.name for p in HAR_FILES])
def test_corpus_har_runs_cleanly(invoke, path):
    result = invoke("probe", "har", "--json", str(path))
    assert "Traceback" not in result.stderr
    assert result.exit_code in {0, 3, 4, 5}, result.stderr
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
    by_name = {p.name: p for p in HAR_FILES}
    chrome = json.loads(invoke("probe", "har", "--json", str(by_name["mitmproxy-chrome.har"])).stdout)
    failed = next(f for f in chrome["findings"] if f["id"] == "har.request.failed")
    assert failed["evidence"]["class"] == "network"  # net::ERR_INTERNET_DISCONNECTED
    bom = invoke("probe", "har", "--json", str(by_name["mitmproxy-with-bom.har"]))
    assert bom.exit_code == 0 and json.loads(bom.stdout)["facts"]["entries"] >= 1
    codes = json.loads(invoke("probe", "har", "--json", str(by_name["pagexray-responseCodes-304.har"])).stdout)
    assert any(f["id"] == "har.response.server_error" and f["evidence"]["status"] == 503 for f in codes["findings"])
