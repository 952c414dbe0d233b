"""`packet replay` and `packet diff` through the CLI, on loopback only.

The customer's side is a packet made under one DNS resolver (dnslib on 127.0.0.1 answering 127.0.0.2)
and an intercepting CA (trustme CA #1, trusted there with --ca-file); the L2 side replays it under
another resolver (answering 127.0.0.3) and the real chain (trustme CA #2). The same TLS server port
serves both chains: what changes between the runs is the machine's view, as in the field.
"""

from __future__ import annotations

import email.utils
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.cli_results import assert_one_error_line, run_json
from tests.servers import json_response, server_context

RESOLVERS_ENV = "DIAGKIT_SYSTEM_RESOLVERS"  # the dns probe's "system resolvers", as a test sets them


@pytest.fixture
def world(tmp_path: Path, dns_server: Any, tls_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    import trustme

    cas = [trustme.CA(), trustme.CA()]
    pems = []
    for n, ca in enumerate(cas, 1):
        pem = tmp_path / f"ca{n}.pem"
        ca.cert_pem.write_to_path(str(pem))
        pems.append(str(pem))
    customer_dns = dns_server("api.test. 60 IN A 127.0.0.2")
    here_dns = dns_server("api.test. 60 IN A 127.0.0.3")
    leaves = [ca.issue_cert("api.test") for ca in cas]
    tls = tls_server(leaves[0])
    monkeypatch.setenv(RESOLVERS_ENV, customer_dns.address)
    return {"cas": cas, "leaves": leaves, "pems": pems, "tls": tls, "customer_dns": customer_dns, "here_dns": here_dns,
            "tls_target": f"127.0.0.1:{tls.port}"}


def customer_packet(invoke: Any, tmp_path: Path, world: dict[str, Any]) -> Path:
    out = tmp_path / "customer.zip"
    tls = f"tls={world['tls_target']};servername=api.test;ca-file={world['pems'][0]}"
    result = invoke("collect", "--probe", "dns=api.test", "--probe", tls, "--timeout", "3", "--yes", "-o", out)
    assert out.exists(), result.stderr
    return out


def move_to_l2(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, *, date: str | None = None) -> None:
    """From here on the probes see the L2 machine's resolver and the real certificate chain."""
    monkeypatch.setenv(RESOLVERS_ENV, world["here_dns"].address)
    world["tls"].ctx = server_context(world["leaves"][1])
    world["tls"].date_header = date


def subject(pem: bytes) -> str:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem).subject.rfc4514_string()


def fingerprint(leaf: Any) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def by_name(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(d["probe"], d["kind"], d["name"]): d for d in doc["differences"]}


def test_options_are_recorded_without_secrets(invoke, tmp_path: Path, world: dict[str, Any]) -> None:
    packet = customer_packet(invoke, tmp_path, world)
    with zipfile.ZipFile(packet) as archive:
        results = json.loads(archive.read("findings.json"))["results"]
    options = {r["probe"]: r.get("options") for r in results}
    assert options["dns"] == {}
    assert options["tls"] == {"servername": "api.test", "ca_file": world["pems"][0]}


def test_replay_under_another_resolver_and_real_chain_then_diff(invoke, tmp_path: Path, world: dict[str, Any],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    packet = customer_packet(invoke, tmp_path, world)
    move_to_l2(world, monkeypatch)
    here = tmp_path / "here.json"
    result, doc = run_json(invoke, "packet", "replay", packet, "--ca-file", world["pems"][1], "--timeout", "3",
                           "--json", "-o", here)
    assert result.exit_code == 4, result.stderr  # dns.system.differs: the OS knows no api.test
    assert json.loads(here.read_text()) == doc
    assert [(r["probe"], r["target"]) for r in doc["results"]] == [
        ("dns", "api.test"), ("tls", world["tls_target"]), ("environment", "this computer")]
    assert doc["results"][1]["options"] == {"servername": "api.test", "ca_file": world["pems"][1]}
    assert world["here_dns"].queries and ("api.test.", "A") in world["here_dns"].queries

    result, diff = run_json(invoke, "packet", "diff", packet, here, "--json")
    assert result.exit_code == 4, result.stderr
    assert diff["same"] is False
    found = by_name(diff)
    assert set(found) == {("dns", "fact", "dns_answers"), ("tls", "fact", "certificate_issuer"),
                          ("tls", "fact", "certificate_fingerprints")}
    answers = found[("dns", "fact", "dns_answers")]
    assert (answers["target"], answers["a"], answers["b"]) == ("api.test", ["A 127.0.0.2"], ["A 127.0.0.3"])
    assert "split-horizon DNS or a VPN" in answers["meaning"]
    issuer = found[("tls", "fact", "certificate_issuer")]
    assert issuer["target"] == world["tls_target"]
    assert (issuer["a"], issuer["b"]) == tuple(subject(ca.cert_pem.bytes()) for ca in world["cas"])
    assert "TLS interception" in issuer["meaning"]
    prints = found[("tls", "fact", "certificate_fingerprints")]
    assert (prints["a"], prints["b"]) == ([fingerprint(world["leaves"][0])], [fingerprint(world["leaves"][1])])
    assert "TLS interception on one side" in prints["meaning"]
    assert all(set(d) == {"probe", "target", "kind", "name", "a", "b", "meaning"} for d in diff["differences"])

    result = invoke("packet", "diff", packet, here, "--markdown")
    assert result.exit_code == 4
    assert "| dns | api.test | fact | dns\\_answers | \\[\"A 127.0.0.2\"\\] | \\[\"A 127.0.0.3\"\\] |" in result.stdout
    assert "&" not in result.stdout
    result = invoke("packet", "diff", packet, here)
    assert result.exit_code == 4 and "certificate_issuer" in result.stdout and "usually means:" in result.stdout
    assert "packet verified, signer ed25519:" in result.stderr and "results file (unsigned)" in result.stderr


def test_a_skewed_clock_shows_as_clock_differences(invoke, tmp_path: Path, world: dict[str, Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The customer's side sees a server Date two hours behind its clock: its clock is two hours ahead.
    world["tls"].date_header = email.utils.formatdate(time.time() - 7200, usegmt=True)
    packet = customer_packet(invoke, tmp_path, world)
    move_to_l2(world, monkeypatch)
    here = tmp_path / "here.json"
    invoke("packet", "replay", packet, "--ca-file", world["pems"][1], "--timeout", "3", "-o", here)
    result, diff = run_json(invoke, "packet", "diff", packet, here, "--json")
    assert result.exit_code == 4
    found = by_name(diff)
    for key in [("tls", "fact", "clock_skew_s"), ("environment", "fact", "clock_offset_s")]:
        assert found[key]["a"] > 7000 and abs(found[key]["b"]) < 60, found[key]
        assert "skewed" in found[key]["meaning"]
    assert found[("tls", "finding", "tls.clock.skew")]["a"] == "warn"
    assert found[("tls", "finding", "tls.clock.skew")]["b"] is None
    assert found[("environment", "finding", "env.clock.skewed")]["meaning"].startswith("A skewed clock")


def test_a_packet_diffed_with_itself_is_the_same(invoke, tmp_path: Path, world: dict[str, Any]) -> None:
    packet = customer_packet(invoke, tmp_path, world)
    result, diff = run_json(invoke, "packet", "diff", packet, packet, "--json")
    assert result.exit_code == 0, result.stderr
    assert diff == {"same": True, "differences": [], "not_compared": []}
    result = invoke("packet", "diff", packet, packet, "--markdown")
    assert result.exit_code == 0 and "No differences." in result.stdout


def test_replay_when_the_targets_are_gone_is_error_findings(invoke, tmp_path: Path, world: dict[str, Any]) -> None:
    packet = customer_packet(invoke, tmp_path, world)
    world["tls"].stop()
    world["customer_dns"].stop()
    result, doc = run_json(invoke, "packet", "replay", packet, "--timeout", "0.2", "--json")
    assert result.exit_code == 5, result.stderr
    worst = {r["probe"]: {f["severity"] for f in r["findings"]} for r in doc["results"]}
    assert worst == {"dns": {"error"}, "tls": {"error"}}
    tls = next(f for f in doc["results"][1]["findings"] if f["id"] == "tls.connect.failed")
    assert tls["evidence"]["replay"] == {"severity_was": "fail"}
    assert "the customer trusted an extra CA file" in result.stderr
    # Diffed with the packet: reachable there, not here.
    here = tmp_path / "gone.json"
    here.write_text(result.stdout)
    result, diff = run_json(invoke, "packet", "diff", packet, here, "--json")
    assert result.exit_code == 4
    gone = by_name(diff)[("tls", "finding", "tls.connect.failed")]
    assert (gone["a"], gone["b"]) == (None, "fail")
    assert "firewall" in gone["meaning"]


def test_a_secret_is_never_recorded_and_replay_asks_for_it(invoke, tmp_path: Path, http_server: Any) -> None:
    srv = http_server({"/v1/me": json_response({"id": 1})})
    saved = tmp_path / "http.json"
    result = invoke("probe", "http", srv.url("/v1/me"), "--bearer", "s3cr3t-token-value", "-H", "Accept: text/plain",
                    "-H", "Cookie: sid=abcdef", "--json")
    saved.write_text(result.stdout)
    assert json.loads(result.stdout)["options"] == {
        "header": ["Accept: text/plain", "Cookie: <redacted-secret>"], "bearer": "<redacted-secret>"}
    packet = tmp_path / "p.zip"
    invoke("packet", "build", "--results", saved, "-o", packet)
    with zipfile.ZipFile(packet) as archive:
        assert not [n for n in archive.namelist() if b"s3cr3t" in archive.read(n) or b"sid=abcdef" in archive.read(n)]

    result, doc = run_json(invoke, "packet", "replay", packet, "--json")
    assert result.exit_code == 5
    finding = doc["results"][0]["findings"][0]
    assert finding["id"] == "probe.input.missing" and "--secret 'bearer=VALUE'" in finding["detail"]
    result = invoke("packet", "replay", packet, "--secret", "bearer=x", "--secret", "tokne=y")
    assert "--secret tokne: no run in the packet used that secret; ignored" in result.stderr
    assert "--secret 'header=Cookie: VALUE'" in result.stdout
    gets = lambda: [r for r in srv.requests if r.method == "GET"]  # noqa: E731 - HEADs measure the clock
    assert len(gets()) == 1

    result, doc = run_json(invoke, "packet", "replay", packet, "--json", "--secret", "bearer=s3cr3t-token-value",
                           "--secret", "header=Cookie: sid=abcdef")
    assert len(gets()) == 2, result.stderr
    sent = gets()[-1].headers
    assert sent["authorization"] == "Bearer s3cr3t-token-value" and sent["cookie"] == "sid=abcdef"
    assert "s3cr3t" not in result.stdout + result.stderr and "ignored" not in result.stderr
    assert doc["results"][0]["options"]["bearer"] == "<redacted-secret>"


def test_bad_inputs_are_one_line_errors(invoke, tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 not a packet")
    assert_one_error_line(invoke("packet", "diff", junk, junk), r"junk\.bin.*not a packet or diagkit results")
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    assert_one_error_line(invoke("packet", "diff", fake, junk), r"fake\.zip")
    assert_one_error_line(invoke("packet", "replay", fake, "-o", tmp_path), r"it is a folder")
    assert_one_error_line(invoke("packet", "replay", fake, "-o", fake), r"is the input file")
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"results": [{"probe": "dns", "target": "a.test", "started_at": "2026-01-01T00:00:00Z",
                                          "findings": []}]}))
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"results": [{"probe": "dns", "target": "b.test", "started_at": "2026-01-01T00:00:00Z",
                                          "findings": []}]}))
    assert_one_error_line(invoke("packet", "diff", a, b), r"no probe and target in common")


def test_untrusted_text_is_shown_escaped(invoke, tmp_path: Path) -> None:
    def doc(answer: str) -> dict[str, Any]:
        return {"results": [{"probe": "dns", "target": "evil\x1b[2J\u202e.test", "started_at": "2026-01-01T00:00:00Z",
                             "findings": [], "facts": {"resolvers": [{"status": "NOERROR",
                                                                      "answers": [{"type": "A", "value": answer}]}]}}]}

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(doc("127.0.0.2")))
    b.write_text(json.dumps(doc("127.0.0.3\x1b]0;pwned\x07")))
    for args in ([], ["--markdown"]):
        result = invoke("packet", "diff", a, b, *args)
        assert result.exit_code == 4
        assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
        assert "\\x1b" in result.stdout and "\\u202e" in result.stdout


def test_http_status_unreachable_and_redacted_values(invoke, tmp_path: Path) -> None:
    def result(probe: str, target: str, findings: list[tuple[str, str]], facts: dict[str, Any]) -> dict[str, Any]:
        return {"probe": probe, "target": target, "started_at": "2026-01-01T00:00:00Z", "facts": facts,
                "findings": [{"id": i, "severity": s, "title": i} for i, s in findings]}

    a = {"results": [
        result("http", "https://api.test/v1", [("http.status.ok", "pass")], {"response": {"status": 200}}),
        result("dns", "api.test", [("dns.resolve.ok", "pass")],
               {"resolvers": [{"status": "NOERROR", "answers": [{"type": "A", "value": "<IP:3f9a1c0b2d>"}]}]}),
        result("har", "evidence/x.har", [("har.timing.slow", "warn")], {}),
        result("tls", "api.test:443", [("tls.connect.ok", "pass")], {})]}
    b = {"results": [
        result("http", "https://api.test/v1", [("http.status.forbidden", "fail")], {"response": {"status": 403}}),
        result("dns", "api.test", [("dns.resolve.ok", "pass")],
               {"resolvers": [{"status": "NOERROR", "answers": [{"type": "A", "value": "203.0.113.7"}]}]}),
        result("tls", "api.test:443", [("tls.connect.failed", "fail")], {})]}
    paths = tmp_path / "a.json", tmp_path / "b.json"
    for path, doc in zip(paths, (a, b), strict=True):
        path.write_text(json.dumps(doc))
    result_, diff = run_json(invoke, "packet", "diff", *paths, "--json")
    assert result_.exit_code == 4
    found = by_name(diff)
    assert set(found) == {("http", "finding", "http.status.ok"), ("http", "finding", "http.status.forbidden"),
                          ("http", "fact", "http_status"), ("tls", "finding", "tls.connect.ok"),
                          ("tls", "finding", "tls.connect.failed")}
    assert (found[("http", "fact", "http_status")]["a"], found[("http", "fact", "http_status")]["b"]) == (200, 403)
    assert "firewall" in found[("http", "fact", "http_status")]["meaning"]
    assert "firewall" in found[("tls", "finding", "tls.connect.failed")]["meaning"]
    assert [(n["probe"], n["name"], n["reason"].split(";")[0]) for n in diff["not_compared"]] == [
        ("dns", "dns_answers", "one side's value was redacted in its packet"), ("har", None, "only in " + str(paths[0]))]
