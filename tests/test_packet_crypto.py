"""Units for the packet's crypto and parsing: DSSE PAE, envelopes, encryption (STREAM), member-name safety."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from diagkit.packet import crypto, dsse
from diagkit.packet import format as fmt
from diagkit.packet.errors import DecryptionFailed
from diagkit.packet.keys import X25519, generate_keys, load_identity, load_public_key
from tests.cli_results import assert_one_error_line
from tests.test_packet import make_packet


# ---------------------------------------------------------------- DSSE
def test_pae_known_vector() -> None:
    # Worked out by hand from the DSSE spec: "DSSEv1" SP len(type) SP type SP len(body) SP body.
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert dsse.pae("application/vnd.in-toto+json", b"") == b"DSSEv1 28 application/vnd.in-toto+json 0 "
    # Lengths count bytes, not characters.
    assert dsse.pae("t\u00e9", "\u00e9\u00e9".encode()) == b"DSSEv1 3 t\xc3\xa9 4 \xc3\xa9\xc3\xa9"


def test_envelope_sign_verify_and_reject(tmp_path: Path) -> None:
    from diagkit.packet.keys import load_signing_key, public_of

    made = generate_keys(tmp_path)
    key = load_signing_key(made["signing"]["private_path"])
    payload = b'{"a": 1}\n'
    raw = dsse.sign(payload, key, made["signing"]["key_id"])
    envelope = dsse.parse(raw)
    assert envelope.payload == payload and envelope.payload_type == fmt.PAYLOAD_TYPE
    assert dsse.verify(envelope, public_of(key).ed25519())
    # The signature covers the PAE, so changing the payload type breaks it.
    envelope.payload_type = "application/json"
    assert not dsse.verify(envelope, public_of(key).ed25519())
    other = generate_keys(tmp_path / "other")
    assert not dsse.verify(dsse.parse(raw), load_public_key(other["signing"]["public_path"], "ed25519").ed25519())
    with pytest.raises(dsse.EnvelopeError):
        dsse.parse(b"[]")
    with pytest.raises(dsse.EnvelopeError):
        dsse.parse(b'{"payloadType": "x", "payload": "!!", "signatures": []}')


# ---------------------------------------------------------------- member names
@pytest.mark.parametrize("name, reason", [
    ("/etc/passwd", "absolute path"), ("../x", "'..' component"), ("a/../../x", "'..' component"),
    ("a\\b", "backslash"), ("C:/x", "drive letter"), ("c:x", "drive letter"), ("a//b", "empty or '.'"),
    ("./a", "empty or '.'"), ("dir/", "empty or '.'"), ("", "empty name"), ("a\x00b", "control character"),
])
def test_unsafe_names(name: str, reason: str) -> None:
    assert reason in (fmt.unsafe_name_reason(name) or "")


@pytest.mark.parametrize("name", ["manifest.json", "evidence/session.har", "evidence/a b/c-1.txt", "évidence/ü.txt"])
def test_safe_names(name: str) -> None:
    assert fmt.unsafe_name_reason(name) is None


def test_no_floats_and_canonical_json() -> None:
    assert fmt.no_floats({"a": 1.5, "b": [2.0, True, None], "c": {"d": "x"}}) == \
        {"a": "1.5", "b": ["2.0", True, None], "c": {"d": "x"}}
    with pytest.raises(ValueError):
        fmt.no_floats({"x": float("nan")})
    assert fmt.pretty_json({"b": 1, "a": "é"}) == '{\n  "a": "é",\n  "b": 1\n}\n'.encode()


# ---------------------------------------------------------------- encryption
@pytest.fixture
def people(tmp_path: Path) -> dict[str, Any]:
    return {name: generate_keys(tmp_path / name) for name in ("alice", "bob", "carol", "eve")}


def _recipient(people: dict[str, Any], who: str) -> Any:
    return load_public_key(people[who]["encryption"]["public_path"], X25519)


def _identity(people: dict[str, Any], who: str) -> Any:
    return load_identity(people[who]["encryption"]["private_path"])


@pytest.mark.parametrize("size", [0, 1, crypto.CHUNK - 1, crypto.CHUNK, crypto.CHUNK + 1, 3 * crypto.CHUNK + 17])
def test_round_trip_sizes(people: dict[str, Any], size: int) -> None:
    import os

    plain = os.urandom(size)
    sealed = crypto.encrypt(plain, [_recipient(people, "bob"), _recipient(people, "carol")])
    assert sealed.startswith(crypto.MAGIC)
    assert crypto.decrypt(sealed, _identity(people, "bob"), "p") == plain
    assert crypto.decrypt(sealed, _identity(people, "carol"), "p") == plain
    with pytest.raises(DecryptionFailed, match="cannot open encrypted packet 'p'"):
        crypto.decrypt(sealed, _identity(people, "eve"), "p")


@pytest.fixture
def sealed(people: dict[str, Any]) -> bytes:
    import os

    return crypto.encrypt(os.urandom(3 * crypto.CHUNK + 100), [_recipient(people, "bob")])


def _header_len(count: int = 1) -> int:
    return len(crypto.MAGIC) + 2 + count * (8 + 32 + 48) + 16 + 32


@pytest.mark.parametrize("where, pattern", [
    (lambda n: len(crypto.MAGIC) + 2 + 10, r"cannot open"),                    # ephemeral key of the stanza
    (lambda n: len(crypto.MAGIC) + 2 + 60, r"cannot open"),                    # wrapped file key
    (lambda n: _header_len() - 40, r"tampered header \(MAC mismatch\)"),        # payload salt
    (lambda n: _header_len() - 1, r"tampered header \(MAC mismatch\)"),         # the MAC itself
    (lambda n: _header_len() + 5, r"chunk 0 failed authentication"),
    (lambda n: n - 1, r"chunk 3 failed authentication"),
])
def test_flipped_byte_fails_cleanly(people: dict[str, Any], sealed: bytes, where: Any, pattern: str) -> None:
    data = bytearray(sealed)
    data[where(len(data))] ^= 0x40
    with pytest.raises(DecryptionFailed, match=pattern):
        crypto.decrypt(bytes(data), _identity(people, "bob"), "p")


def test_truncation_and_reordering_detected(people: dict[str, Any], sealed: bytes) -> None:
    bob = _identity(people, "bob")
    sealed_chunk = crypto.CHUNK + 16
    head, body = sealed[:_header_len()], sealed[_header_len():]
    with pytest.raises(DecryptionFailed, match=r"truncated \(the last chunk is missing\)"):
        crypto.decrypt(head + body[:2 * sealed_chunk], bob, "p")
    with pytest.raises(DecryptionFailed, match="failed authentication"):
        crypto.decrypt(sealed[:-10], bob, "p")
    with pytest.raises(DecryptionFailed, match=r"truncated \(no payload"):
        crypto.decrypt(head, bob, "p")
    with pytest.raises(DecryptionFailed, match=r"truncated \(header\)"):
        crypto.decrypt(sealed[:40], bob, "p")
    swapped = head + body[sealed_chunk:2 * sealed_chunk] + body[:sealed_chunk] + body[2 * sealed_chunk:]
    with pytest.raises(DecryptionFailed, match="chunk 0 failed authentication"):
        crypto.decrypt(swapped, bob, "p")


def test_recipient_limit(people: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        crypto.encrypt(b"x", [_recipient(people, "bob")] * (fmt.MAX_RECIPIENTS + 1))


# ---------------------------------------------------------------- encrypted packets through the CLI
@pytest.fixture
def keys_ab(people: dict[str, Any]) -> dict[str, Any]:
    return {"alice": people["alice"], "mallory": people["eve"]}


def test_encrypted_packet_round_trip(invoke, tmp_path: Path, people: dict[str, Any], keys_ab: dict[str, Any]) -> None:
    path = make_packet(tmp_path / "enc.zip", keys_ab, encrypt_to=[people["bob"]["encryption"]["public_path"],
                                                                  people["carol"]["encryption"]["public_path"]])
    assert not path.read_bytes().startswith(b"PK")
    bob = people["bob"]["encryption"]["private_path"]
    result = invoke("packet", "verify", path, "--identity", bob)
    assert result.exit_code == 0, result.stderr
    assert people["bob"]["encryption"]["key_id"] in result.stdout
    shown = invoke("packet", "show", path, "--identity", people["carol"]["encryption"]["private_path"], "--markdown")
    assert shown.exit_code == 3 and "| case_id | CS-1234 |" in shown.stdout
    out = tmp_path / "out"
    assert invoke("packet", "extract", path, out, "--identity", bob).exit_code == 0
    assert (out / "evidence/notes.txt").read_bytes() == b"redacted notes\n"


def test_encrypted_packet_failures(invoke, tmp_path: Path, people: dict[str, Any], keys_ab: dict[str, Any]) -> None:
    path = make_packet(tmp_path / "enc.zip", keys_ab, encrypt_to=[people["bob"]["encryption"]["public_path"]])
    bob_id = people["bob"]["encryption"]["key_id"]
    assert_one_error_line(invoke("packet", "verify", path),
                    rf"DK410.*packet '.*enc.zip' is encrypted; pass --identity.*{bob_id}")
    assert_one_error_line(invoke("packet", "show", path, "--identity", people["eve"]["encryption"]["private_path"]),
                    rf"DK411.*identity '.*eve/encryption.key' \(x25519:[0-9a-f]{{16}}\) cannot open .*{bob_id}")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(data))
    out = tmp_path / "out"
    assert_one_error_line(invoke("packet", "extract", flipped, out, "--identity", people["bob"]["encryption"]["private_path"]),
                    r"DK411.*chunk 0 failed authentication")
    assert not out.exists()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(path.read_bytes()[:-20])
    assert_one_error_line(invoke("packet", "verify", cut, "--identity", people["bob"]["encryption"]["private_path"]),
                    r"DK411.*failed authentication \(tampered, corrupt or truncated\)")


def test_encryption_wraps_the_signature(invoke, tmp_path: Path, people: dict[str, Any], keys_ab: dict[str, Any]) -> None:
    """Decrypted bytes are the signed ZIP: the signer is still checked against --trusted-key."""
    path = make_packet(tmp_path / "enc.zip", keys_ab, signer="mallory",
                       encrypt_to=[people["bob"]["encryption"]["public_path"]])
    result = invoke("packet", "verify", path, "--identity", people["bob"]["encryption"]["private_path"],
                    "--trusted-key", people["alice"]["signing"]["public_path"])
    assert_one_error_line(result, r"DK408.*untrusted signer")


def test_too_many_recipients_cli(invoke, tmp_path: Path, people: dict[str, Any]) -> None:
    pub = people["bob"]["encryption"]["public_path"]
    args = [a for _ in range(fmt.MAX_RECIPIENTS + 1) for a in ("--encrypt-to", pub)]
    assert_one_error_line(invoke("packet", "build", *args, "-o", tmp_path / "p.zip"), r"at most 16 --encrypt-to recipients")


def test_recipient_ids_match_key_ids(people: dict[str, Any]) -> None:
    sealed = crypto.encrypt(b"x", [_recipient(people, "bob")])
    tag = crypto.recipients_of(sealed, "p")[0]
    assert f"x25519:{tag}" == people["bob"]["encryption"]["key_id"]
    assert re.fullmatch(r"[0-9a-f]{16}", tag)
