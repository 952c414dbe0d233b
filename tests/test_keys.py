"""`diagkit keys generate` and key files: modes, one-line public keys, key ids, wrong files refused."""

from __future__ import annotations

import base64
import hashlib
import re
import stat
from pathlib import Path

import pytest

from diagkit.packet import keys as keymod


def test_generate_writes_four_files_with_modes(invoke, tmp_path: Path) -> None:
    folder = tmp_path / "k"
    result = invoke("keys", "generate", "--dir", folder, "--comment", "support@example")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["encryption.key", "encryption.pub", "signing.key", "signing.pub"]
    for name in ("signing.key", "encryption.key"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
        assert (folder / name).read_text().startswith("-----BEGIN PRIVATE KEY-----")
    for name, kind in (("signing.pub", "ed25519"), ("encryption.pub", "x25519")):
        # The file is PEM SubjectPublicKeyInfo, read here by cryptography, not by diagkit.
        from cryptography.hazmat.primitives import serialization

        text = (folder / name).read_text()
        assert text.startswith("-----BEGIN PUBLIC KEY-----\n") and text.endswith("-----END PUBLIC KEY-----\n")
        raw = serialization.load_pem_public_key(text.encode()).public_bytes(serialization.Encoding.Raw,
                                                                            serialization.PublicFormat.Raw)
        key_id = f"{kind}:{hashlib.sha256(raw).hexdigest()[:16]}"
        assert key_id in result.stdout  # printed next to the public key
        # ... and the one-line form of the same key, for pasting, with its comment.
        assert f"diagkit-{kind} {base64.b64encode(raw).decode()} support@example" in result.stdout
        assert keymod.key_id(text) == key_id
    assert "PRIVATE" not in result.stdout


def test_generate_default_dir_is_config_dir(invoke) -> None:
    from diagkit.config import config_dir

    result = invoke("keys", "generate")
    assert result.exit_code == 0, result.stderr
    assert (config_dir() / "signing.key").exists() and (config_dir() / "encryption.pub").exists()


def test_generate_refuses_overwrite_unless_force(invoke, tmp_path: Path) -> None:
    invoke("keys", "generate", "--dir", tmp_path)
    before = (tmp_path / "signing.pub").read_text()
    result = invoke("keys", "generate", "--dir", tmp_path)
    assert result.exit_code == 1
    assert re.search(r"error\[DK300\]: keys already exist in '.*'.*refusing to overwrite", result.stderr)
    assert (tmp_path / "signing.pub").read_text() == before
    forced = invoke("keys", "generate", "--dir", tmp_path, "--force")
    assert forced.exit_code == 0
    assert (tmp_path / "signing.pub").read_text() != before


def test_key_id_from_line_bytes_and_raw(tmp_path: Path) -> None:
    made = keymod.generate_keys(tmp_path)
    line = made["signing"]["public_key"]
    raw = base64.b64decode(line.split()[1])
    assert keymod.key_id(line) == keymod.key_id(line.encode()) == keymod.key_id(raw) == made["signing"]["key_id"]
    assert re.fullmatch(r"ed25519:[0-9a-f]{16}", made["signing"]["key_id"])
    assert re.fullmatch(r"x25519:[0-9a-f]{16}", made["encryption"]["key_id"])


def test_keys_id_command(invoke, tmp_path: Path) -> None:
    made = keymod.generate_keys(tmp_path)
    for role in ("signing", "encryption"):
        result = invoke("keys", "id", made[role]["public_path"])
        assert result.exit_code == 0
        assert result.stdout.strip() == made[role]["key_id"]


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    keymod.generate_keys(tmp_path / "k")
    (tmp_path / "garbage.key").write_bytes(b"\x00\x01not a key at all")
    return tmp_path


@pytest.mark.parametrize("option, filename, pattern", [
    ("--sign-key", "k/signing.pub", r"signing key '.*signing.pub' is a public key; a private key file"),
    ("--sign-key", "garbage.key", r"signing key '.*garbage.key' is not a PEM private key"),
    ("--sign-key", "k/encryption.key", r"signing key '.*encryption.key' is an X25519 encryption key; "
                                       r"an Ed25519 signing key is needed"),
    ("--sign-key", "missing.key", r"signing key '.*missing.key' does not exist"),
    ("--encrypt-to", "k/encryption.key", r"recipient key '.*encryption.key' is a private key; pass the matching .pub"),
    ("--encrypt-to", "k/signing.pub", r"recipient key '.*signing.pub' is an ed25519 key; an x25519 key is needed"),
    ("--encrypt-to", "garbage.key", r"recipient key '.*garbage.key' is not a diagkit public key"),
])
def test_wrong_key_files_fail_with_one_line(invoke, key_dir: Path, option: str, filename: str, pattern: str) -> None:
    out = key_dir / "p.zip"
    result = invoke("packet", "build", option, key_dir / filename, "-o", out)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), result.stderr
    assert not out.exists()


def test_wrong_trusted_key_and_identity_files(invoke, key_dir: Path) -> None:
    from diagkit.packet.build import build_packet

    packet = key_dir / "p.zip"
    build_packet(packet, results=[], sign_key=key_dir / "k/signing.key", encrypt_to=[key_dir / "k/encryption.pub"])
    for args, pattern in (
        (["--trusted-key", key_dir / "k/encryption.pub", "--identity", key_dir / "k/encryption.key"],
         r"trusted key '.*encryption.pub' is an x25519 key"),
        (["--identity", key_dir / "k/encryption.pub"], r"identity '.*encryption.pub' is a public key"),
        (["--identity", key_dir / "k/signing.key"], r"identity '.*signing.key' is an Ed25519 signing key; "
                                                     r"an X25519 encryption key is needed"),
    ):
        result = invoke("packet", "verify", packet, *args)
        assert result.exit_code == 1
        assert re.search(pattern, result.stderr), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_bad_trusted_keys_file_is_named(invoke, key_dir: Path) -> None:
    from diagkit.config import config_dir
    from diagkit.packet.build import build_packet

    packet = key_dir / "p.zip"
    build_packet(packet, results=[], sign_key=key_dir / "k/signing.key")
    config_dir().mkdir(parents=True, exist_ok=True)
    (config_dir() / "trusted_keys").write_text("# ok\nnot a key\n")
    result = invoke("packet", "verify", packet)
    assert result.exit_code == 1
    assert re.search(r"trusted keys file '.*trusted_keys' line 2 is not a diagkit public key line", result.stderr)
