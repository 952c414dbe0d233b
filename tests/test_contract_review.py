"""Acceptance review against CONTRACT.md: one CLI test for each defect found and fixed in the review."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from diagkit.packet.keys import generate_keys

PLANTED = {
    "cookie": "COOKIEVALUE1234567890",
    "email": "alice.smith@example.com",
    "password": "Hunter2Password!",
    "token": "QUERYTOKENabcdef123456",
}


def entry(url: str, status: int, *, req_headers: list[dict[str, str]] | None = None,
          text: str = "", mime: str = "application/json") -> dict[str, Any]:
    return {
        "startedDateTime": "2026-01-01T10:00:00.000Z", "time": 50,
        "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1", "headers": req_headers or [],
                    "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": status, "statusText": "", "httpVersion": "HTTP/1.1", "headers": [], "cookies": [],
                     "content": {"size": len(text), "mimeType": mime, "text": text}, "redirectURL": "",
                     "headersSize": -1, "bodySize": 0},
        "cache": {}, "timings": {"blocked": 1, "dns": 2, "connect": 3, "send": 4, "wait": 30, "receive": 10},
    }


def har_doc(entries: list[Any]) -> dict[str, Any]:
    return {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": entries}}


def secret_har(tmp_path: Path) -> Path:
    path = tmp_path / "session.har"
    path.write_text(json.dumps(har_doc([
        entry(f"https://api.example.com/v1/orders?access_token={PLANTED['token']}", 200,
              req_headers=[{"name": "Cookie", "value": f"sessionid={PLANTED['cookie']}"}],
              text=json.dumps({"email": PLANTED["email"], "password": PLANTED["password"]})),
    ])))
    return path


def test_packet_build_twice_gives_same_member_bytes(invoke: Any, tmp_path: Path) -> None:
    """Reproducible packets: redacted evidence used to differ because pseudonyms had a random key per run."""
    keys = generate_keys(tmp_path / "k")
    har = secret_har(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text(f"customer {PLANTED['email']} said password={PLANTED['password']}\n")
    packets = []
    for name in ("a.zip", "b.zip"):
        result = invoke("packet", "build", "--attach", har, "--attach", notes, "--case-field", "case=CS-1",
                        "--sign-key", keys["signing"]["private_path"], "-o", tmp_path / name)
        assert result.exit_code == 0, result.stderr
        packets.append(zipfile.ZipFile(tmp_path / name))
    first, second = packets
    assert first.namelist() == second.namelist()
    differing = [n for n in first.namelist() if first.read(n) != second.read(n)]
    assert differing == ["manifest.json", "manifest.sig"]  # packet id, created_at and the signature
    evidence = first.read("evidence/session.har").decode()
    assert not any(value in evidence for value in PLANTED.values())


def test_collect_twice_gives_same_evidence_bytes(invoke: Any, tmp_path: Path) -> None:
    keys = generate_keys(tmp_path / "k")
    har = secret_har(tmp_path)
    packets = []
    for name in ("a.zip", "b.zip"):
        result = invoke("collect", "--har", har, "--case", "CS-2", "--yes",
                        "--sign-key", keys["signing"]["private_path"], "-o", tmp_path / name)
        assert result.exit_code == 0, result.stderr
        packets.append(zipfile.ZipFile(tmp_path / name))
    assert packets[0].read("evidence/session.har") == packets[1].read("evidence/session.har")
    assert packets[0].read("case.yaml") == packets[1].read("case.yaml")


def test_collect_checks_the_sign_key_before_running_probes(invoke: Any, tmp_path: Path) -> None:
    result = invoke("collect", "--har", secret_har(tmp_path), "--sign-key", tmp_path / "missing.key",
                    "-o", tmp_path / "p.zip")
    assert result.exit_code == 1
    assert "missing.key" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "running" not in result.stderr and not (tmp_path / "p.zip").exists()


def _doc(result: Any) -> dict[str, Any]:
    return json.loads(result.stdout)


def _severities(doc: dict[str, Any]) -> dict[str, str]:
    return {f["id"]: f["severity"] for f in doc["findings"]}


def test_network_timeouts_are_errors_not_verdicts(invoke: Any, silent_server: Any) -> None:
    """CONTRACT.md: `error` means the check could not run (timeout); TLS and DNS already did this, now all do."""
    import time

    srv = silent_server()
    cases = [("http", f"http://127.0.0.1:{srv.port}/v1", "http.connect.failed"),
             ("oidc", f"http://127.0.0.1:{srv.port}/tenant", "oidc.discovery.unreachable"),
             ("saml-metadata", f"http://127.0.0.1:{srv.port}/md", "saml.metadata.unreachable")]
    for probe, target, finding_id in cases:
        started = time.monotonic()
        result = invoke("probe", probe, target, "--timeout", "0.3", "--json")
        assert time.monotonic() - started < 5, probe
        assert result.exit_code == 5, (probe, result.stdout)
        assert _severities(_doc(result))[finding_id] == "error"
        assert finding_id in result.stderr  # the check that could not run is also said on stderr


def test_refused_connection_stays_a_fail(invoke: Any) -> None:
    """Only timeouts turned into `error`: a refused connection is a real answer about the endpoint."""
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = invoke("probe", "http", f"http://127.0.0.1:{port}/", "--json")
    assert result.exit_code == 3
    assert _severities(_doc(result))["http.connect.failed"] == "fail"


def test_har_without_entries_is_an_error_not_a_pass(invoke: Any, tmp_path: Path) -> None:
    """An empty recording used to report `har.ok` "No problems found in 0 HAR entries" and exit 0."""
    empty = tmp_path / "empty-log.har"
    empty.write_text(json.dumps(har_doc([])))
    junk = tmp_path / "junk-entries.har"
    junk.write_text(json.dumps(har_doc([5, "x", None])))
    for path in (empty, junk):
        result = invoke("probe", "har", path, "--json")
        assert result.exit_code == 5, result.stdout
        assert _severities(_doc(result)) == {"har.entries.empty": "error"}
        assert path.name in result.stderr
    both = invoke("probe", "har", empty, secret_har(tmp_path), "--json")
    assert both.exit_code == 5 and [r["probe"] for r in _doc(both)["results"]] == ["har", "har"]


def test_redact_checks_every_output_before_writing(invoke: Any, tmp_path: Path) -> None:
    """A bad --report used to fail after the redacted copy was already written; --report INPUT overwrote the input."""
    src = tmp_path / "notes.txt"
    original = f"mail {PLANTED['email']}\n"
    src.write_text(original)
    out = tmp_path / "out.txt"
    (tmp_path / "folder").mkdir()
    bad = [
        (["-o", out, "--report", tmp_path / "missing" / "r.json"], "does not exist"),
        (["-o", out, "--report", src], "never overwrites its input"),
        (["-o", out, "--map", out], "same file"),
        (["-o", out, "--map", tmp_path / "folder"], "is a folder"),
    ]
    for args, message in bad:
        result = invoke("redact", src, *args)
        assert result.exit_code == 1, args
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        assert not out.exists() and src.read_text() == original
    good = invoke("redact", src, "-o", out, "--report", tmp_path / "r.json", "--map", tmp_path / "m.json")
    assert good.exit_code == 0 and PLANTED["email"] not in out.read_text()


def test_atomic_writer_refuses_a_folder_as_target(tmp_path: Path) -> None:
    """fsutil: a folder given as an output file was an internal error (IsADirectoryError) with a temp path."""
    import pytest

    from diagkit.errors import DiagkitError
    from diagkit.fsutil import write_atomic

    with pytest.raises(DiagkitError, match="is a folder"):
        write_atomic(tmp_path, b"x")
    assert not list(tmp_path.glob(".diagkit-*"))


SAML_RESPONSE = (
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" '
    'IssueInstant="2026-01-01T10:00:00Z" Destination="https://sp.example.com/acs">'
    '<saml:Issuer>https://idp.example.com</saml:Issuer><samlp:Status>'
    '<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
    '<saml:Assertion ID="_a1" Version="2.0" IssueInstant="2026-01-01T10:00:00Z">'
    '<saml:Issuer>https://idp.example.com</saml:Issuer><saml:Subject>'
    f'<saml:NameID>{PLANTED["email"]}</saml:NameID></saml:Subject></saml:Assertion></samlp:Response>'
)


def test_collect_keeps_saml_urls_and_catalogue_refs_in_findings(invoke: Any, tmp_path: Path) -> None:
    """findings.json in a packet had IdP/SP URLs turned into <TOKEN:..> and "§4.1.3.5" refs into <IP:..>."""
    import base64

    acs = entry("https://sp.example.com/acs", 302)
    acs["request"]["method"] = "POST"
    acs["request"]["postData"] = {"mimeType": "application/x-www-form-urlencoded", "params": [
        {"name": "SAMLResponse", "value": base64.b64encode(SAML_RESPONSE.encode()).decode()}]}
    har = tmp_path / "sso.har"
    har.write_text(json.dumps(har_doc([acs])))
    plain = invoke("probe", "har", har, "--json")
    expected_refs = {f["id"]: f["refs"] for f in _doc(plain)["findings"]}
    assert expected_refs.get("saml.assertion.unsigned")

    result = invoke("collect", "--har", har, "--yes", "-o", tmp_path / "p.zip")
    assert result.exit_code == 3, result.stderr
    findings = json.loads(zipfile.ZipFile(tmp_path / "p.zip").read("findings.json"))
    har_result = next(r for r in findings["results"] if r["probe"] == "har")
    assert {f["id"]: f["refs"] for f in har_result["findings"]} == expected_refs
    analysis = har_result["facts"]["saml_messages"][0]["analysis"]
    assert analysis["issuer"] == "https://idp.example.com"
    assert analysis["destination"] == "https://sp.example.com/acs"
    assert PLANTED["email"] not in json.dumps(findings)


def test_har_bearer_challenge_errors_use_the_http_probe_ids(invoke: Any, tmp_path: Path) -> None:
    """CONTRACT.md: OAuth problems inside a HAR flow carry the HTTP probe's ids, next to har.auth.unauthorized."""
    def challenged(url: str, status: int, value: str) -> dict[str, Any]:
        item = entry(url, status)
        item["response"]["headers"] = [{"name": "WWW-Authenticate", "value": value}]
        return item

    har = tmp_path / "api.har"
    har.write_text(json.dumps(har_doc([
        challenged("https://api.example.com/v1/me", 401, 'Bearer realm="api", error="invalid_token", '
                                                         'error_description="The access token expired"'),
        challenged("https://api.example.com/v1/orders", 403, 'Bearer error="insufficient_scope", scope="orders.write"'),
        challenged("https://api.example.com/v1/plain", 401, 'Bearer realm="api"'),
    ])))
    result = invoke("probe", "har", har, "--json")
    assert result.exit_code == 3
    doc = _doc(result)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for finding in doc["findings"]:
        by_id.setdefault(finding["id"], []).append(finding)
    assert len(by_id["har.auth.unauthorized"]) == 3
    assert [f["evidence"]["url"] for f in by_id["http.auth.invalid_token"]] == ["https://api.example.com/v1/me"]
    assert by_id["http.auth.insufficient_scope"][0]["evidence"]["scope"] == "orders.write"
    assert all(f["severity"] == "fail" for f in by_id["http.auth.invalid_token"] + by_id["http.auth.insufficient_scope"])


def test_packet_help_examples_are_not_rewrapped(invoke: Any) -> None:
    """`packet build --help` printed its example command broken over two lines (`-o` / `case-1234.zip`)."""
    build = invoke("packet", "build", "--help")
    assert build.exit_code == 0
    assert ("  diagkit packet build --results tls.json --attach session.har --case-field case=CS-1234 "
            "-o case-1234.zip\n") in build.stdout
    group = invoke("packet", "--help")
    assert "  diagkit packet build --results tls.json --case-field case=CS-1234 -o case.zip\n" in group.stdout
