"""Malicious packets, in the style of sigstore-python's deliberately broken fixtures: zip slip in every
spelling, lying ZIP headers, hostile member names, member floods, broken encryption headers, huge
DSSE envelopes and ambiguous signed JSON. Each is refused with one line, exit 1, nothing written."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from diagkit.findings import ProbeResult
from diagkit.packet.build import Evidence, build_packet
from diagkit.packet.keys import generate_keys
from tests.cli_results import assert_one_error_line

ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Any]:
    return generate_keys(tmp_path / "keys", comment="t")


@pytest.fixture
def good(tmp_path: Path, keys: dict[str, Any]) -> Path:
    from diagkit import catalogue

    result = ProbeResult("tls", "a.example:443", __import__("datetime").datetime(2026, 1, 1, tzinfo=__import__(
        "datetime").UTC), 1, [catalogue.make("tls.connect.ok")])
    path = tmp_path / "good.zip"
    build_packet(path, results=[result], evidence=[Evidence("evidence/notes.txt", b"notes\n", "text/plain", "n")],
                 case={"case_id": "CS-1"}, sign_key=keys["signing"]["private_path"])
    return path


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def write_zip(path: Path, entries: list[tuple[Any, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """zipfile's layout, names in order: the same as build writes, so later checks are reached."""
    entries = sorted(entries, key=lambda e: (e[0] if isinstance(e[0], str) else e[0].filename).encode())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of some tests
        with zipfile.ZipFile(path, "w", compression) as archive:
            for info, data in entries:
                if isinstance(info, str):
                    info = zipfile.ZipInfo(info, date_time=ZIP_TIME)
                    info.external_attr = 0o100644 << 16
                info.compress_type = compression
                archive.writestr(info, data)
    return path


def resigned(good: Path, keys: dict[str, Any], manifest: bytes, extra: dict[str, bytes] | None = None,
             envelope: bytes | None = None) -> dict[str, bytes]:
    """The packet's members with manifest.json replaced and validly signed by the same key: what a
    malicious (or tricked) signer could produce."""
    from diagkit.packet import dsse
    from diagkit.packet.keys import load_signing_key, public_of

    members = members_of(good)
    key = load_signing_key(keys["signing"]["private_path"])
    members["manifest.json"] = manifest
    members["manifest.sig"] = envelope if envelope is not None else dsse.sign(manifest, key, public_of(key).key_id)
    members.update(extra or {})
    return members


def _tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


# ---------------------------------------------------------------- zip slip


SLIP_NAMES = {
    "dotdot": "../escaped.txt",
    "nested_dotdot": "evidence/../../escaped.txt",
    "absolute": "/tmp/escaped.txt",
    "backslash": "..\\escaped.txt",
    "drive": "C:/escaped.txt",
    "drive_backslash": "C:\\escaped.txt",
    "fullwidth_dots": "\uff0e\uff0e/escaped.txt",
    "one_dot_leaders": "\u2025/escaped.txt",
    "division_slash": "..\u2215escaped.txt",
    "bidi_override": "evidence/\u202etxt.exe",
    "newline": "evidence/a\nb.txt",
    "dot": "./escaped.txt",
    "empty_component": "evidence//escaped.txt",
}


@pytest.mark.parametrize("name", sorted(SLIP_NAMES))
def test_zip_slip_names_refused_before_anything_is_written(invoke, good: Path, tmp_path: Path, name: str) -> None:
    bad = write_zip(tmp_path / "slip.zip", [*members_of(good).items(), (SLIP_NAMES[name], b"pwned")])
    out = tmp_path / "out" / "case"
    before = _tree(tmp_path)
    for command in (("packet", "verify", bad), ("packet", "extract", bad, out), ("packet", "show", bad)):
        assert_one_error_line(invoke(*command), r"DK404.*unsafe member path")
    assert _tree(tmp_path) == before  # not even the output folder was created
    assert not Path("/tmp/escaped.txt").exists()


def test_nul_in_member_name(invoke, good: Path, tmp_path: Path) -> None:
    """zipfile cuts names at NUL; the patched name then no longer matches the manifest."""
    raw = write_zip(tmp_path / "x.zip", list(members_of(good).items())).read_bytes()
    assert raw.count(b"evidence/notes.txt") == 2  # local header and central directory
    bad = tmp_path / "nul.zip"
    bad.write_bytes(raw.replace(b"evidence/notes.txt", b"evidence/no\x00es.txt"))
    out = tmp_path / "out"
    assert_one_error_line(invoke("packet", "extract", bad, out), r"DK4\d\d")
    assert not out.exists()


def test_extract_into_symlinked_dir_refused(invoke, good: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "case"
    link.symlink_to(elsewhere, target_is_directory=True)
    assert_one_error_line(invoke("packet", "extract", good, link), r"'.*case': it is a symlink")
    assert list(elsewhere.iterdir()) == []


def test_extract_through_symlinked_component_refused(invoke, good: Path, tmp_path: Path) -> None:
    out = tmp_path / "case"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "evidence").symlink_to(elsewhere, target_is_directory=True)
    assert_one_error_line(invoke("packet", "extract", good, out, "--force"), r"is a symlink")
    assert list(elsewhere.iterdir()) == []
    assert sorted(os.listdir(out)) == ["evidence"]


# ---------------------------------------------------------------- lying ZIP structures


def _patch_central(raw: bytes, name: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite one field of the central directory record of `name`."""
    data = bytearray(raw)
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46:at + 46 + name_len]) == name:
            struct.pack_into(fmt, data, at + offset, value)
            return bytes(data)
        at += 4


@pytest.mark.parametrize("field,offset,value,pattern", [
    ("uncompressed_small", 24, 3, r"DK416.*local header for member 'evidence/notes.txt' that differs from its central"),
    ("compressed_zip64_marker", 20, 0xFFFFFFFF, r"DK416.*uses ZIP64 sizes for member 'evidence/notes.txt'"),
    ("compressed_huge", 20, 0x7FFFFFFF, r"DK416.*local header for member 'evidence/notes.txt' that differs"),
    ("local_offset_past_end", 42, 0x7FFFFFFF, r"DK416.*member 'evidence/notes.txt' at offset 2147483647 where \d+ "
                                              r"was expected"),
    ("local_offset_wrong", 42, 5, r"DK416.*member 'evidence/notes.txt' at offset 5 where \d+ was expected"),
])
def test_lying_sizes_and_offsets(invoke, good: Path, tmp_path: Path, field: str, offset: int, value: int,
                                 pattern: str) -> None:
    raw = write_zip(tmp_path / "x.zip", list(members_of(good).items())).read_bytes()
    bad = tmp_path / f"{field}.zip"
    bad.write_bytes(_patch_central(raw, b"evidence/notes.txt", offset, "<I", value))
    assert_one_error_line(invoke("packet", "verify", bad), pattern)


def test_lying_uncompressed_size_refused_and_nothing_written(invoke, good: Path, tmp_path: Path) -> None:
    """A ZIP64 marker as uncompressed size: refused, whatever the bytes would inflate to."""
    raw = write_zip(tmp_path / "x.zip", list(members_of(good).items())).read_bytes()
    bad = tmp_path / "zip64.zip"
    bad.write_bytes(_patch_central(raw, b"evidence/notes.txt", 24, "<I", 0xFFFFFFFF))
    out = tmp_path / "out"
    assert_one_error_line(invoke("packet", "extract", bad, out), r"DK416.*uses ZIP64 sizes for member")
    assert not out.exists()


def test_central_directory_and_local_header_disagree(invoke, good: Path, tmp_path: Path) -> None:
    raw = write_zip(tmp_path / "x.zip", list(members_of(good).items())).read_bytes()
    first = raw.index(b"evidence/notes.txt")  # the local header comes first
    bad = tmp_path / "mismatch.zip"
    bad.write_bytes(raw[:first] + b"evidence/evil!.txt" + raw[first + 18:])
    assert_one_error_line(invoke("packet", "verify", bad), r"DK416.*local header for member 'evidence/notes.txt' "
                                                           r"that differs from its central directory entry")


def test_100k_members_refused_quickly(invoke, tmp_path: Path) -> None:
    path = tmp_path / "flood.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(100_000):
            archive.writestr(zipfile.ZipInfo(f"evidence/{i}", date_time=ZIP_TIME), b"")
    # zipfile needs ZIP64 records for more than 65535 entries, which diagkit never writes.
    assert_one_error_line(invoke("packet", "verify", path), r"DK416.*is a ZIP64 archive")


# ---------------------------------------------------------------- encrypted packets


@pytest.mark.parametrize("case,pattern", [
    ("count_zero", r"invalid recipient count \(0\)"),
    ("count_255", r"invalid recipient count \(255\)"),
    ("count_16_truncated", r"truncated \(header\)"),
    ("version_2", r"format version 2"),
    ("magic_only", r"truncated \(header\)"),
    ("length_2_32", r"invalid recipient count|truncated"),
])
def test_hostile_encryption_headers(invoke, tmp_path: Path, keys: dict[str, Any], case: str, pattern: str) -> None:
    from diagkit.packet.crypto import MAGIC

    header = {
        "count_zero": MAGIC + bytes([1, 0]) + b"\0" * 200,
        "count_255": MAGIC + bytes([1, 255]) + b"\0" * 200,
        "count_16_truncated": MAGIC + bytes([1, 16]) + b"\0" * 100,
        "version_2": MAGIC + bytes([2, 1]) + b"\0" * 200,
        "magic_only": MAGIC,
        "length_2_32": MAGIC + bytes([1]) + struct.pack(">I", 2 ** 32 - 1) + b"\0" * 64,
    }[case]
    path = tmp_path / "enc.zip"
    path.write_bytes(header)
    assert_one_error_line(invoke("packet", "verify", path, "--identity", keys["encryption"]["private_path"]), pattern)


def test_encrypted_packet_with_forged_recipients_and_wrong_key(invoke, good: Path, tmp_path: Path,
                                                               keys: dict[str, Any]) -> None:
    from diagkit.packet.crypto import encrypt
    from diagkit.packet.keys import load_public_key

    other = generate_keys(tmp_path / "other", comment="o")
    recipients = [load_public_key(other["encryption"]["public_path"], "x25519")] * 16
    path = tmp_path / "enc.zip"
    path.write_bytes(encrypt(good.read_bytes(), recipients))
    assert_one_error_line(invoke("packet", "verify", path, "--identity", keys["encryption"]["private_path"]),
                   r"cannot open encrypted packet")


# ---------------------------------------------------------------- signatures and signed JSON


def test_huge_dsse_payload_refused_by_size(invoke, good: Path, tmp_path: Path) -> None:
    from diagkit.packet import format as fmt

    members = members_of(good)
    noise = base64.b64encode(os.urandom(fmt.MAX_SIGNATURE_BYTES)).decode()  # incompressible, not a bomb
    members["manifest.sig"] = json.dumps({"payload": noise, "payloadType": fmt.PAYLOAD_TYPE,
                                          "signatures": [{"keyid": "x", "sig": "AAAA"}]}).encode()
    bad = write_zip(tmp_path / "bigsig.zip", list(members.items()))
    assert_one_error_line(invoke("packet", "verify", bad), r"DK4\d\d.*manifest.sig .* larger than \d+ bytes")


def test_deeply_nested_envelope_and_manifest(invoke, good: Path, tmp_path: Path, keys: dict[str, Any]) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    bad = write_zip(tmp_path / "deepsig.zip", list({**members_of(good), "manifest.sig": deep}.items()))
    assert_one_error_line(invoke("packet", "verify", bad), r"manifest.sig .* not a DSSE envelope")
    bad = write_zip(tmp_path / "deepman.zip", list(resigned(good, keys, b'{"a":' * 50_000 + b"1" + b"}" * 50_000).items()))
    assert_one_error_line(invoke("packet", "verify", bad), r"DK417.*manifest.json .* is not canonical JSON: nested "
                                                           r"more than 32 levels deep")


def test_duplicate_subject_key_in_signed_manifest(invoke, good: Path, tmp_path: Path, keys: dict[str, Any]) -> None:
    """{"subject": [...], "subject": [...]}: which list was meant depends on the parser; refuse it."""
    manifest = members_of(good)["manifest.json"].decode()
    doc = json.loads(manifest)
    decoy = json.dumps([{"digest": {"sha256": "0" * 64}, "name": "evidence/notes.txt"}], separators=(",", ":"))
    ambiguous = manifest.replace('"subject":[', f'"subject":{decoy},"subject":[', 1)
    assert ambiguous != manifest
    assert json.loads(ambiguous)["subject"] == doc["subject"]  # last-wins would accept it silently
    members = resigned(good, keys, ambiguous.encode())
    bad = write_zip(tmp_path / "dup.zip", list(members.items()))
    for command in (("packet", "verify", bad), ("packet", "extract", bad, tmp_path / "out")):
        assert_one_error_line(invoke(*command), r"DK417.*manifest.json .* is not canonical JSON: an object names the "
                                                r"same key twice")
    assert not (tmp_path / "out").exists()


def test_duplicate_key_in_dsse_envelope(invoke, good: Path, tmp_path: Path) -> None:
    members = members_of(good)
    envelope = members["manifest.sig"].decode()
    swapped = envelope.replace('"payload": ', '"payload": "e30=", "payload": ', 1)
    members["manifest.sig"] = swapped.encode()
    bad = write_zip(tmp_path / "dupsig.zip", list(members.items()))
    assert_one_error_line(invoke("packet", "verify", bad), r"manifest.sig .*\(ambiguous JSON: duplicate key 'payload'\)")


@pytest.mark.parametrize("listed", ["manifest.sig", "manifest.json"])
def test_manifest_listing_itself_or_its_signature(invoke, good: Path, tmp_path: Path, keys: dict[str, Any],
                                                  listed: str) -> None:
    members = members_of(good)
    doc = json.loads(members["manifest.json"])
    doc["subject"].append({"name": listed, "digest": {"sha256": hashlib.sha256(members[listed]).hexdigest()}})
    from diagkit.packet.canonjson import dumps

    bad = write_zip(tmp_path / "self.zip", list(resigned(good, keys, dumps(doc)).items()))
    assert_one_error_line(invoke("packet", "verify", bad), rf"DK417.*malformed manifest: .* lists '{listed}' twice or "
                                                           "lists itself")


def test_unsafe_name_reason_unit() -> None:
    from diagkit.packet.format import unsafe_name_reason

    for name in SLIP_NAMES.values():
        assert unsafe_name_reason(name), name
    for name in ("manifest.json", "evidence/session.har", "evidence/a-b_c.1.txt"):
        assert unsafe_name_reason(name) is None, name


def test_stored_zip_member_bytes_round_trip(good: Path) -> None:
    """Sanity for the helpers above: an untouched re-zip by zipfile, in order, still verifies in-process."""
    from diagkit.packet.verify import verify_packet

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in sorted(members_of(good).items()):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.external_attr = 0o100644 << 16
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    copy = good.with_name("copy.zip")
    copy.write_bytes(buffer.getvalue())
    assert verify_packet(copy, use_trust_file=False).packet_id
