"""The adversarial corpus (tests/redact_corpus.py) through `diagkit redact`: zero leaks, nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import leakcheck, redact_corpus
from tests.conftest import corpus_files

CASES = redact_corpus.corpus()


def _redact(invoke, tmp_path: Path, case: redact_corpus.Case) -> tuple[int, str]:
    src = tmp_path / case.name
    src.write_bytes(case.data)
    out = tmp_path / ("out-" + case.name)
    result = invoke("redact", str(src), "-o", str(out))
    return result.exit_code, out.read_text("utf-8") if out.exists() else ""


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case_has_no_leak_and_loses_nothing(invoke, tmp_path: Path, case: redact_corpus.Case) -> None:
    code, out = _redact(invoke, tmp_path, case)
    assert code == 0
    assert leakcheck.leaks(out, case.secrets) == []
    assert leakcheck.lost(out, case.keep) == []
    if case.name.endswith((".har", ".json")):  # still parses: as one document, or line by line (JSON Lines)
        try:
            json.loads(case.data)
            json.loads(out)
        except ValueError:
            [json.loads(line) for line in out.splitlines() if line.strip()]
    if case.name.endswith(".xml"):  # XML that parsed still parses
        from lxml import etree

        try:
            etree.fromstring(case.data)
        except etree.XMLSyntaxError:
            return
        etree.fromstring(out.encode())


def test_checker_finds_what_is_planted() -> None:
    """The checker itself: a value hidden in each encoding is found."""
    secret = "hidden.value@corp-example.test"
    jwt = redact_corpus.jwt({"email": secret})
    for wrapped in (secret.upper(), redact_corpus.q(secret), secret.replace("@", "&#64;"),
                    json.dumps(secret).replace("@", "\\u0040"), redact_corpus.b64(secret), jwt,
                    redact_corpus.deflated(f"<x>{secret}</x>"), redact_corpus.q(redact_corpus.b64(f"<a>{secret}</a>"))):
        assert leakcheck.leaks(f"prefix {wrapped} suffix", [secret]) == [secret], wrapped
    assert leakcheck.leaks("call +44 7911 123-456 now", ["+447911123456"]) == ["+447911123456"]
    dump = redact_corpus._hex_dump(f"GET /?token={secret} HTTP/1.1".encode())  # cut across rows, spelled in hex
    assert secret not in dump and leakcheck.leaks(dump, [secret]) == [secret]
    assert leakcheck.lost("iss", ["iss", "missing"]) == ["missing"]


NOT_HARS = ("brokenfile", "single_entry", "har_extractor")  # invalid JSON, or JSON that is not a HAR log
PUBLIC = [p for kind in ("har", "saml", "oidc") for p in corpus_files(kind) if not any(n in p.name for n in NOT_HARS)]


@pytest.mark.corpus
@pytest.mark.parametrize("path", PUBLIC, ids=[p.name for p in PUBLIC])
def test_public_corpus_redacts_without_refusal(invoke, tmp_path: Path, path: Path) -> None:
    """Real captures and SSO files (../shared/corpus): written, never refused by the gate, no trace of an email."""
    out = tmp_path / ("out" + path.suffix)
    result = invoke("redact", str(path), "-o", str(out), "--no-ner")
    assert result.exit_code == 0, result.stderr
    assert "still present" not in result.stderr
    if path.suffix == ".har":
        assert len(json.loads(out.read_text("utf-8"))["log"]["entries"]) == \
            len(json.loads(path.read_text("utf-8-sig"))["log"]["entries"])
