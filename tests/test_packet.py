"""`diagkit packet build|verify|show|extract` through the CLI: good packets, every tampering, trust, rendering."""

from __future__ import annotations

import datetime as dt
import json
import re
import stat
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from diagkit import catalogue
from diagkit.findings import ProbeResult
from diagkit.packet.build import Evidence, build_packet
from diagkit.packet.keys import generate_keys
from tests.cli_results import assert_one_error_line

STARTED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
CREATED = dt.datetime(2026, 1, 3, 0, 0, 0, tzinfo=dt.UTC)
XSS = "<script>alert('x')</script>"


def sample_results() -> list[ProbeResult]:
    return [
        ProbeResult("tls", "api.example.com:443", STARTED, 42,
                    [catalogue.make("tls.certificate.expired", evidence={"not_after": "2025-12-30T00:00:00Z"}),
                     catalogue.make("tls.connect.ok")],
                    facts={"address": "192.0.2.10", "handshake_ms": 12.5}),
        ProbeResult("http", "https://api.example.com/v1", STARTED, 7,
                    [catalogue.make("http.auth.invalid_token", title=f"Token rejected {XSS}")]),
    ]


def pass_results() -> list[ProbeResult]:
    return [ProbeResult("tls", "ok.example.com:443", STARTED, 3, [catalogue.make("tls.connect.ok")])]


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Any]:
    return {"alice": generate_keys(tmp_path / "alice", comment="alice@test"),
            "mallory": generate_keys(tmp_path / "mallory", comment="mallory@test")}


def make_packet(path: Path, keys: dict[str, Any], *, signer: str = "alice", results: list[ProbeResult] | None = None,
                encrypt_to: list[str] = (), **kwargs: Any) -> Path:
    build_packet(path, results=sample_results() if results is None else results,
                 evidence=kwargs.pop("evidence", [Evidence("evidence/notes.txt", b"redacted notes\n", "text/plain",
                                                           "operator notes")]),
                 case=kwargs.pop("case", {"case_id": "CS-1234", "product": "API | gateway"}),
                 sign_key=keys[signer]["signing"]["private_path"], encrypt_to=encrypt_to,
                 created_at=kwargs.pop("created_at", CREATED), **kwargs)
    return path


@pytest.fixture
def good(tmp_path: Path, keys: dict[str, Any]) -> Path:
    return make_packet(tmp_path / "good.zip", keys)


def read_entries(path: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]


def write_entries(path: Path, entries: list[tuple[Any, bytes]]) -> Path:
    """Write a ZIP as given (duplicates, symlinks, odd names), in name order as build does, so that the
    checks after the layout check are reached."""
    entries = sorted(entries, key=lambda e: (e[0] if isinstance(e[0], str) else e[0].filename).encode())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names: that is the point
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for info, data in entries:
                if isinstance(info, str):
                    info = zipfile.ZipInfo(info, date_time=(1980, 1, 1, 0, 0, 0))
                    info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
    return path


def tampered(good: Path, tmp_path: Path, edit) -> Path:
    entries = [(info.filename, data) for info, data in read_entries(good)]
    return write_entries(tmp_path / "bad.zip", edit(entries))


# ---------------------------------------------------------------- good packets
def test_good_packet_verifies_not_pinned(invoke, good: Path) -> None:
    result = invoke("packet", "verify", good)
    assert result.exit_code == 0, result.stderr
    assert "signature valid" in result.stdout
    assert re.search(r"ed25519:[0-9a-f]{16}\s+\(not pinned\)", result.stdout)


def test_good_packet_verifies_with_trusted_key(invoke, good: Path, keys: dict[str, Any]) -> None:
    result = invoke("packet", "verify", good, "--trusted-key", keys["alice"]["signing"]["public_path"])
    assert result.exit_code == 0, result.stderr
    assert f"{keys['alice']['signing']['key_id']}  (pinned via --trusted-key)" in result.stdout
    # A pasted key line works as well as a file.
    pasted = invoke("packet", "verify", good, "--trusted-key", keys["alice"]["signing"]["public_key"])
    assert pasted.exit_code == 0, pasted.stderr


def test_trusted_keys_file_pins_and_rejects(invoke, good: Path, keys: dict[str, Any]) -> None:
    from diagkit.config import config_dir

    config_dir().mkdir(parents=True, exist_ok=True)
    trust = config_dir() / "trusted_keys"
    trust.write_text(f"# vendor support keys\n\n{keys['alice']['signing']['public_key']}\n")
    result = invoke("packet", "verify", good)
    assert result.exit_code == 0, result.stderr
    assert "pinned via trusted_keys file" in result.stdout
    trust.write_text(f"{keys['mallory']['signing']['public_key']}\n")
    assert_one_error_line(invoke("packet", "verify", good), r"DK408.*untrusted signer.*not in the trusted_keys file")


def test_verify_json(invoke, good: Path, keys: dict[str, Any]) -> None:
    result = invoke("packet", "verify", good, "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["valid"] is True
    assert doc["signer"] == {"key_id": keys["alice"]["signing"]["key_id"], "pinned": False, "trusted_by": None}


def test_manifest_is_in_toto_and_dsse_signs_exact_bytes(good: Path, keys: dict[str, Any]) -> None:
    import base64

    import jsonschema

    from diagkit import schemas

    members = {info.filename: data for info, data in read_entries(good)}
    assert sorted(members) == ["case.yaml", "evidence/notes.txt", "findings.json", "manifest.json", "manifest.sig",
                               "signer.pub", "summary.md"]
    manifest = json.loads(members["manifest.json"])
    jsonschema.validate(manifest, schemas.load("manifest"))
    jsonschema.validate(json.loads(members["findings.json"]), schemas.load("findings"))
    assert manifest["_type"] == "https://in-toto.io/Statement/v1"
    assert manifest["predicateType"] == "https://diagkit.dev/escalation-packet/v1"
    assert [s["name"] for s in manifest["subject"]] == sorted(set(members) - {"manifest.json", "manifest.sig"})
    pred = manifest["predicate"]
    assert pred["findings"]["counts"] == {"pass": 1, "info": 0, "warn": 0, "fail": 2, "error": 0}
    assert pred["findings"]["worst"] == "fail"
    assert pred["created_at"] == "2026-01-03T00:00:00Z"
    assert {m["name"]: m["size"] for m in pred["members"]}["evidence/notes.txt"] == len(b"redacted notes\n")
    envelope = json.loads(members["manifest.sig"])
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(envelope["payload"]) == members["manifest.json"]
    assert envelope["signatures"][0]["keyid"] == keys["alice"]["signing"]["key_id"]
    assert members["signer.pub"] == Path(keys["alice"]["signing"]["public_path"]).read_bytes()  # PEM SPKI
    # The comment (user@host) of the signer's key stays out of the packet.
    assert b"alice@test" not in members["signer.pub"]
    findings = json.loads(members["findings.json"])
    assert [r["probe"] for r in findings["results"]] == ["tls", "http"]


def _walk_floats(value: Any) -> list[Any]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _walk_floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _walk_floats(v)]
    return []


def test_signed_manifest_never_holds_floats(tmp_path: Path, keys: dict[str, Any]) -> None:
    path = make_packet(tmp_path / "p.zip", keys, readiness={"ready": True, "score": 0.75},
                       environment={"os": "linux", "load": 1.5}, redaction_summary={"emails": 3})
    manifest = json.loads(dict((i.filename, d) for i, d in read_entries(path))["manifest.json"])
    assert _walk_floats(manifest) == []
    assert manifest["predicate"]["readiness"] == {"ready": True, "score": "0.75"}
    assert manifest["predicate"]["redaction"] == {"emails": 3}


def test_reproducible_members(tmp_path: Path, keys: dict[str, Any]) -> None:
    first = make_packet(tmp_path / "a.zip", keys)
    second = make_packet(tmp_path / "b.zip", keys, created_at=CREATED + dt.timedelta(hours=5))
    a, b = read_entries(first), read_entries(second)
    assert [i.filename for i, _ in a] == [i.filename for i, _ in b]
    for (info_a, data_a), (info_b, data_b) in zip(a, b, strict=True):
        assert info_a.date_time == info_b.date_time == (1980, 1, 1, 0, 0, 0)
        assert info_a.external_attr >> 16 == 0o100644
        assert info_a.extra == b""
        if info_a.filename not in ("manifest.json", "manifest.sig"):
            assert data_a == data_b, info_a.filename
    manifests = [json.loads(dict((i.filename, d) for i, d in x)["manifest.json"]) for x in (a, b)]
    assert manifests[0]["subject"] == manifests[1]["subject"]
    assert manifests[0]["predicate"]["packet_id"] != manifests[1]["predicate"]["packet_id"]


# ---------------------------------------------------------------- tampering, each with its own message
def _edit_member(name: str, data: bytes):
    return lambda entries: [(n, data if n == name else d) for n, d in entries]


def _sign_with(good: Path, keys: dict[str, Any], who: str) -> bytes:
    """manifest.sig re-made over the same manifest, by another key."""
    from diagkit.packet import dsse
    from diagkit.packet.keys import load_signing_key, public_of

    manifest = dict((i.filename, d) for i, d in read_entries(good))["manifest.json"]
    key = load_signing_key(keys[who]["signing"]["private_path"])
    return dsse.sign(manifest, key, public_of(key).key_id)


def _flip_signature(envelope: bytes) -> bytes:
    import base64

    doc = json.loads(envelope)
    sig = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
    sig[10] ^= 0x01
    doc["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return json.dumps(doc).encode()


def _swapped_signature(good: Path, keys: dict[str, Any]) -> bytes:
    """manifest.sig of another, genuine packet by the same signer."""
    other = make_packet(good.parent / "other.zip", keys, case={"case_id": "CS-5678"})
    return dict((i.filename, d) for i, d in read_entries(other))["manifest.sig"]


def _no_signatures(envelope: bytes) -> bytes:
    doc = json.loads(envelope)
    doc["signatures"] = []
    return json.dumps(doc).encode()


CASES = {
    "member edited": (lambda g, k: _edit_member("findings.json", b'{"results": []}\n'),
                      r"DK413.*tampered member 'findings.json'"),
    "evidence edited": (lambda g, k: _edit_member("evidence/notes.txt", b"swapped\n"),
                        r"tampered member 'evidence/notes.txt'"),
    "member added": (lambda g, k: lambda e: e + [("evidence/extra.txt", b"sneaky")],
                     r"DK415.*extra member 'evidence/extra.txt'"),
    "member removed": (lambda g, k: lambda e: [x for x in e if x[0] != "case.yaml"],
                       r"DK414.*missing member 'case.yaml'"),
    "manifest edited": (lambda g, k: lambda e: [(n, d.replace(b"CS-1234", b"CS-9999") if n == "manifest.json" else d)
                                                for n, d in e],
                        r"DK407.*manifest.json .* is not the signed payload"),
    "signature corrupted": (lambda g, k: lambda e: [(n, _flip_signature(d) if n == "manifest.sig" else d)
                                                     for n, d in e],
                            r"DK407.*bad signature.*does not verify"),
    "signature removed": (lambda g, k: lambda e: [x for x in e if x[0] != "manifest.sig"],
                          r"DK406.*missing signature: .* is not signed \(manifest.sig is missing\)"),
    "signature swapped": (lambda g, k: _edit_member("manifest.sig", _swapped_signature(g, k)),
                          r"DK407.*not the signed payload .*signature swapped"),
    "signature list emptied": (lambda g, k: lambda e: [(n, _no_signatures(d) if n == "manifest.sig" else d)
                                                       for n, d in e],
                               r"DK406.*manifest.sig holds no signatures"),
    "signer key swapped": (lambda g, k: _edit_member("signer.pub",
                                                     (k["mallory"]["signing"]["public_key"] + "\n").encode()),
                           r"DK407.*does not verify"),
    "signature by another key": (lambda g, k: _edit_member("manifest.sig", _sign_with(g, k, "mallory")),
                                 r"DK407.*does not verify"),
    "duplicate member": (lambda g, k: lambda e: e + [("findings.json", b"{}")], r"DK405.*duplicate member 'findings.json'"),
    "dot-dot member": (lambda g, k: lambda e: e + [("evidence/../../evil.sh", b"x")],
                       r"DK404.*unsafe member path.*'\.\.' component"),
    "absolute member": (lambda g, k: lambda e: e + [("/etc/evil", b"x")], r"DK404.*unsafe member path.*absolute path"),
    "backslash member": (lambda g, k: lambda e: e + [("..\\evil.bat", b"x")], r"DK404.*backslash"),
    "drive letter member": (lambda g, k: lambda e: e + [("C:/evil.bat", b"x")], r"DK404.*drive letter"),
    "case clash": (lambda g, k: lambda e: e + [("Findings.json", b"{}")], r"DK404.*members 'Findings.json' and 'findings.json', one name on Windows and macOS"),
    "no manifest": (lambda g, k: lambda e: [x for x in e if x[0] != "manifest.json"],
                    r"DK401.*not a diagkit packet: it has no manifest.json"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tampering_is_rejected(invoke, good: Path, tmp_path: Path, keys: dict[str, Any], case: str) -> None:
    make_edit, pattern = CASES[case]
    bad = tampered(good, tmp_path, make_edit(good, keys))
    assert_one_error_line(invoke("packet", "verify", bad), pattern)
    # show and extract refuse the same packet, and extract writes nothing.
    assert_one_error_line(invoke("packet", "show", bad), pattern)
    out = tmp_path / "out"
    assert_one_error_line(invoke("packet", "extract", bad, out), pattern)
    assert not out.exists()


def test_valid_signature_by_other_key_is_untrusted_with_trusted_key(invoke, tmp_path: Path,
                                                                    keys: dict[str, Any]) -> None:
    path = make_packet(tmp_path / "m.zip", keys, signer="mallory")
    assert invoke("packet", "verify", path).exit_code == 0  # valid, just not pinned
    result = invoke("packet", "verify", path, "--trusted-key", keys["alice"]["signing"]["public_path"])
    assert_one_error_line(result, rf"DK408.*untrusted signer.*{keys['mallory']['signing']['key_id']}")


def test_symlink_member_rejected(invoke, good: Path, tmp_path: Path) -> None:
    entries: list[tuple[Any, bytes]] = [(i.filename, d) for i, d in read_entries(good)]
    link = zipfile.ZipInfo("evidence/link", date_time=(1980, 1, 1, 0, 0, 0))
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    bad = write_entries(tmp_path / "link.zip", entries + [(link, b"/etc/passwd")])
    assert_one_error_line(invoke("packet", "verify", bad), r"DK416.*malformed archive: .* gives member "
                                                           r"'evidence/link' file attributes other than a regular file")


def test_not_a_zip_truncated_and_empty(invoke, good: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a packet\n")
    assert_one_error_line(invoke("packet", "verify", text), r"DK401.*'.*notes.txt' is not a diagkit packet")
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    assert_one_error_line(invoke("packet", "verify", empty), r"DK401.*not a diagkit packet")
    data = good.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: len(data) // 2])
    assert_one_error_line(invoke("packet", "verify", cut), r"DK416.*malformed archive: .* has no end-of-archive "
                                                           r"record \(truncated\?\)")
    missing = tmp_path / "nope.zip"
    assert_one_error_line(invoke("packet", "verify", missing), r"DK101.*packet '.*nope.zip' does not exist")


def test_crc_corruption_is_reported(invoke, good: Path, tmp_path: Path) -> None:
    """A CRC-32 changed in both headers of a member (the layout still exact) is reported before any digest."""
    raw = bytearray(good.read_bytes())
    name = b"case.yaml"
    for signature, crc_at, name_at in ((b"PK\x03\x04", 14, 30), (b"PK\x01\x02", 16, 46)):
        at = 0
        while raw[at + name_at:at + name_at + len(name)] != name:
            at = raw.index(signature, at + 1) if at else raw.index(signature)
        raw[at + crc_at] ^= 0x01
    bad = tmp_path / "crc.zip"
    bad.write_bytes(bytes(raw))
    assert_one_error_line(invoke("packet", "verify", bad), r"DK412.*member 'case.yaml' is tampered or corrupt "
                                                           r"\(CRC-32 does not match\)")


def test_zip_bomb_ratio(invoke, good: Path, tmp_path: Path) -> None:
    entries = [(i.filename, d) for i, d in read_entries(good)]
    bad = write_entries(tmp_path / "bomb.zip", entries + [("evidence/zeros.bin", b"\0" * (8 << 20))])
    assert bad.stat().st_size < 100_000
    assert_one_error_line(invoke("packet", "verify", bad), r"DK403.*'evidence/zeros.bin' inflates more than 200:1")


def test_zip_bomb_total_and_count(invoke, good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from diagkit.packet import format as fmt

    monkeypatch.setattr(fmt, "MAX_TOTAL_UNCOMPRESSED", 2000)
    assert_one_error_line(invoke("packet", "verify", good), r"DK403.*inflates to more than 2000 bytes")
    monkeypatch.setattr(fmt, "MAX_TOTAL_UNCOMPRESSED", 1 << 30)
    monkeypatch.setattr(fmt, "MAX_MEMBERS", 3)
    assert_one_error_line(invoke("packet", "verify", good), r"DK403.*7 members, more than the limit of 3")


# ---------------------------------------------------------------- show
def test_show_terminal_worst_first_and_exit_code(invoke, good: Path) -> None:
    result = invoke("packet", "show", good)
    assert result.exit_code == 3, result.stderr  # the packet holds a fail
    out = result.stdout
    assert "case_id: CS-1234" in out
    assert out.index("FAIL") < out.index("PASS")
    assert "evidence/notes.txt" in out and "sha256:" in out
    assert "not pinned" in out


def test_show_exit_zero_for_passing_packet(invoke, tmp_path: Path, keys: dict[str, Any]) -> None:
    path = make_packet(tmp_path / "ok.zip", keys, results=pass_results(), evidence=[])
    result = invoke("packet", "show", path)
    assert result.exit_code == 0, result.stderr
    assert "(no evidence files)" in result.stdout


def test_show_markdown_is_a_ticket_table(invoke, good: Path) -> None:
    result = invoke("packet", "show", good, "--markdown")
    assert result.exit_code == 3
    md = result.stdout
    assert "| Severity | Finding | Id | Probe and target |" in md
    assert "| case_id | CS-1234 |" in md
    assert "| product | API \\| gateway |" in md  # a pipe in a value cannot break the table
    # Plain-text safe: no HTML entity; still safe: the tag is backslash-escaped, never raw HTML.
    assert re.search(r"(?<!\\)<[A-Za-z/!?]", md) is None and "&lt;" not in md
    assert "Token rejected \\<script>alert('x')\\</script>" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and "`" in ln and "evidence/" not in ln]
    assert "FAIL" in rows[0] and "PASS" in rows[-1]


def test_show_html_escapes_everything(invoke, good: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = invoke("packet", "show", good, "--html", page)
    assert result.exit_code == 3, result.stderr
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "<style>" in text and "http://" not in text and "src=" not in text
    assert "CS-1234" in text and "evidence/notes.txt" in text


def test_show_json_document(invoke, good: Path, keys: dict[str, Any]) -> None:
    result = invoke("packet", "show", good, "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["case"] == {"case_id": "CS-1234", "product": "API | gateway"}
    assert [f["severity"] for f in doc["findings"]] == ["fail", "fail", "pass"]
    assert doc["packet"]["signer"]["key_id"] == keys["alice"]["signing"]["key_id"]
    assert doc["evidence"][0]["name"] == "evidence/notes.txt" and len(doc["evidence"][0]["sha256"]) == 64
    assert doc["results"][0]["probe"] == "tls"


def test_show_options_are_exclusive(invoke, good: Path) -> None:
    result = invoke("packet", "show", good, "--json", "--markdown")
    assert result.exit_code == 2


# ---------------------------------------------------------------- extract
def test_extract_stays_inside_and_refuses_overwrite(invoke, good: Path, tmp_path: Path) -> None:
    out = tmp_path / "case"
    result = invoke("packet", "extract", good, out)
    assert result.exit_code == 0, result.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["case.yaml", "evidence/notes.txt", "findings.json", "manifest.json", "manifest.sig",
                     "signer.pub", "summary.md"]
    assert (out / "evidence/notes.txt").read_bytes() == b"redacted notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["alice", "mallory", "good.zip", "case"])
    (out / "evidence/notes.txt").write_bytes(b"local edit")
    assert_one_error_line(invoke("packet", "extract", good, out), r"already holds .*evidence/notes.txt.*nothing was extracted")
    assert (out / "evidence/notes.txt").read_bytes() == b"local edit"
    forced = invoke("packet", "extract", good, out, "--force")
    assert forced.exit_code == 0
    assert (out / "evidence/notes.txt").read_bytes() == b"redacted notes\n"


def test_extract_refuses_symlinked_folder(invoke, good: Path, tmp_path: Path) -> None:
    out = tmp_path / "case"
    outside = tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "evidence").symlink_to(outside, target_is_directory=True)
    assert_one_error_line(invoke("packet", "extract", good, out, "--force"), r"is a symlink")
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------------- build command
def test_build_command_from_saved_results(invoke, tmp_path: Path, keys: dict[str, Any]) -> None:
    from diagkit.findings import results_document

    single = tmp_path / "tls.json"
    single.write_text(json.dumps(sample_results()[0].to_dict()))
    several = tmp_path / "all.json"
    several.write_text(json.dumps(results_document(sample_results())))
    out = tmp_path / "cli.zip"
    result = invoke("packet", "build", "--results", single, "--results", several, "--case-field", "case_id=CS-77",
                    "--case-field", "summary=login fails = 401", "--sign-key", keys["alice"]["signing"]["private_path"],
                    "-o", out)
    assert result.exit_code == 0, result.stderr
    assert re.search(r"wrote .*cli.zip \(\d+ members, signed by ed25519:[0-9a-f]{16}, packet id ", result.stdout)
    shown = json.loads(invoke("packet", "show", out, "--json").stdout)
    assert shown["case"] == {"case_id": "CS-77", "summary": "login fails = 401"}
    assert len(shown["results"]) == 3


def test_build_default_key_created_on_first_use(invoke, tmp_path: Path) -> None:
    from diagkit.config import config_dir

    results = tmp_path / "r.json"
    results.write_text(json.dumps(pass_results()[0].to_dict()))
    result = invoke("packet", "build", "--results", results, "-o", tmp_path / "p.zip")
    assert result.exit_code == 0, result.stderr
    key = config_dir() / "signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    verified = invoke("packet", "verify", tmp_path / "p.zip", "--trusted-key", config_dir() / "signing.pub")
    assert verified.exit_code == 0, verified.stderr


@pytest.mark.parametrize("content, pattern", [
    ("{not json", r"results file '.*bad.json' is not diagkit --json output \(not JSON\)"),
    ('{"hello": 1}', r"results file '.*bad.json' is not diagkit --json output"),
])
def test_build_rejects_bad_results(invoke, tmp_path: Path, content: str, pattern: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "p.zip"
    assert_one_error_line(invoke("packet", "build", "--results", bad, "-o", out), pattern)
    assert not out.exists()


def test_build_rejects_bad_case_field(invoke, tmp_path: Path) -> None:
    result = invoke("packet", "build", "--case-field", "novalue", "-o", tmp_path / "p.zip")
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.stderr


def test_build_attachments_are_redacted_or_refused(invoke, tmp_path: Path, keys: dict[str, Any]) -> None:
    import importlib.util

    note = tmp_path / "notes.txt"
    note.write_text("customer jane.doe@example.com says login fails\n")
    out = tmp_path / "p.zip"
    result = invoke("packet", "build", "--attach", note, "--sign-key", keys["alice"]["signing"]["private_path"],
                    "-o", out)
    if importlib.util.find_spec("diagkit.redact.engine") is None:
        assert_one_error_line(result, r"--attach needs the redaction engine")
        assert not out.exists()
    else:
        assert result.exit_code == 0, result.stderr
        members = {i.filename: d for i, d in read_entries(out)}
        assert b"jane.doe@example.com" not in members["evidence/notes.txt"]
        assert b"jane.doe@example.com" not in members["manifest.json"]


def test_evidence_names_are_validated(tmp_path: Path, keys: dict[str, Any]) -> None:
    from diagkit.errors import InputError

    for name in ("../escape.txt", "evidence/../x", "evidence/a\\b"):
        with pytest.raises(InputError, match="not a safe relative path"):
            make_packet(tmp_path / "x.zip", keys, evidence=[Evidence(name, b"x")])
    with pytest.raises(InputError, match="both be stored as"):
        make_packet(tmp_path / "x.zip", keys, evidence=[Evidence("a.txt", b"1"), Evidence("evidence/A.txt", b"2")])
    assert not (tmp_path / "x.zip").exists()
    info = build_packet(tmp_path / "y.zip", results=[], evidence=[Evidence("session.har", b"{}")],
                        sign_key=keys["alice"]["signing"]["private_path"])
    assert "evidence/session.har" in [m["name"] for m in info.members]


def test_packet_help_and_subprocess_verify(good: Path) -> None:
    """The installed entry point, start to finish, in a real process."""
    for args in (["packet", "--help"], ["packet", "build", "--help"], ["keys", "generate", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "diagkit", *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "Example" in proc.stdout, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "diagkit", "packet", "verify", str(good)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "not pinned" in proc.stdout
