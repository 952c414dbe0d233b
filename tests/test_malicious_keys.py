"""Hostile or careless key files: symlinks, world-readable private keys, the wrong kind of key in every
key option, trailing garbage and CRLF line endings."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from diagkit.packet.keys import generate_keys


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Any]:
    return generate_keys(tmp_path / "keys", comment="t")


@pytest.fixture
def results(tmp_path: Path) -> Path:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"probe": "tls", "target": "a.example:443", "started_at": "2026-01-01T00:00:00Z",
                                "duration_ms": 1, "facts": {},
                                "findings": [{"id": "tls.connect.ok", "severity": "pass", "title": "ok"}]}))
    return path


def _build(invoke, results: Path, out: Path, *extra: Any) -> Any:
    return invoke("packet", "build", "--results", results, "-o", out, *extra)


def _one_error(result: Any, pattern: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and pattern in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_symlinked_private_key_works_and_mode_of_target_counts(invoke, tmp_path: Path, keys: dict[str, Any],
                                                               results: Path) -> None:
    link = tmp_path / "link.key"
    link.symlink_to(keys["signing"]["private_path"])
    result = _build(invoke, results, tmp_path / "p.zip", "--sign-key", link)
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr  # the target is 0600
    os.chmod(keys["signing"]["private_path"], 0o644)
    result = _build(invoke, results, tmp_path / "p2.zip", "--sign-key", link)
    assert result.exit_code == 0
    assert "can be read by other users (mode 0644)" in result.stderr


def test_world_readable_identity_warns_once(invoke, tmp_path: Path, keys: dict[str, Any], results: Path) -> None:
    packet = tmp_path / "enc.zip"
    assert _build(invoke, results, packet, "--sign-key", keys["signing"]["private_path"],
                  "--encrypt-to", keys["encryption"]["public_path"]).exit_code == 0
    os.chmod(keys["encryption"]["private_path"], 0o604)
    result = invoke("packet", "verify", packet, "--identity", keys["encryption"]["private_path"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("warning:") == 1 and "mode 0604" in result.stderr


@pytest.mark.parametrize("option,key,message", [
    ("--sign-key", ("signing", "public_path"), "is a public key; a private key file (.key) is needed here"),
    ("--sign-key", ("encryption", "private_path"), "is an X25519 encryption key; an Ed25519 signing key"),
    ("--encrypt-to", ("signing", "public_path"), "is an ed25519 key; an x25519 key is needed here"),
    ("--encrypt-to", ("encryption", "private_path"), "is a private key; pass the matching .pub file"),
])
def test_wrong_kind_of_key(invoke, tmp_path: Path, keys: dict[str, Any], results: Path, option: str,
                           key: tuple[str, str], message: str) -> None:
    out = tmp_path / "p.zip"
    _one_error(_build(invoke, results, out, option, keys[key[0]][key[1]]), message)
    assert not out.exists()


def test_wrong_kind_for_verify_options(invoke, tmp_path: Path, keys: dict[str, Any], results: Path) -> None:
    packet = tmp_path / "p.zip"
    assert _build(invoke, results, packet, "--sign-key", keys["signing"]["private_path"]).exit_code == 0
    _one_error(invoke("packet", "verify", packet, "--trusted-key", keys["signing"]["private_path"]),
               "is a private key")
    _one_error(invoke("packet", "verify", packet, "--trusted-key", keys["encryption"]["public_path"]),
               "is an x25519 key")
    _one_error(invoke("packet", "verify", packet, "--trusted-key", "/dev/zero"), "too large to be a key file")


def test_crlf_and_trailing_newlines_still_work(invoke, tmp_path: Path, keys: dict[str, Any], results: Path) -> None:
    pub = Path(keys["signing"]["public_path"]).read_text()
    crlf_pub = tmp_path / "crlf.pub"
    crlf_pub.write_bytes((pub.strip() + "\r\n\r\n").encode())
    priv = Path(keys["signing"]["private_path"]).read_text()
    crlf_key = tmp_path / "crlf.key"
    crlf_key.write_bytes(priv.replace("\n", "\r\n").encode())
    crlf_key.chmod(0o600)
    packet = tmp_path / "p.zip"
    assert _build(invoke, results, packet, "--sign-key", crlf_key).exit_code == 0
    result = invoke("packet", "verify", packet, "--trusted-key", crlf_pub)
    assert result.exit_code == 0, result.stderr
    assert "pinned via --trusted-key" in result.stdout


def test_trailing_garbage(invoke, tmp_path: Path, keys: dict[str, Any], results: Path) -> None:
    pub = Path(keys["signing"]["public_path"]).read_text().strip()
    garbage_pub = tmp_path / "g.pub"
    garbage_pub.write_text(pub + "\nnot a key\n")
    packet = tmp_path / "p.zip"
    assert _build(invoke, results, packet, "--sign-key", keys["signing"]["private_path"]).exit_code == 0
    _one_error(invoke("packet", "verify", packet, "--trusted-key", garbage_pub), "is not one PEM public key block")
    # Text around a PEM block is ignored, as openssl does; the key itself is unchanged.
    garbage_key = tmp_path / "g.key"
    garbage_key.write_text("comment line\n" + Path(keys["signing"]["private_path"]).read_text() + "trailing\n")
    garbage_key.chmod(0o600)
    assert _build(invoke, results, tmp_path / "p2.zip", "--sign-key", garbage_key).exit_code == 0
    truncated = tmp_path / "t.key"
    truncated.write_text(Path(keys["signing"]["private_path"]).read_text()[:60])
    _one_error(_build(invoke, results, tmp_path / "p3.zip", "--sign-key", truncated), "is not a PEM private key")


def test_keys_generate_interrupted_leaves_no_half_set(invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from diagkit import fsutil

    calls = {"n": 0}
    real = fsutil.os.fsync

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # after the signing pair, while writing encryption.key
            raise KeyboardInterrupt
        real(fd)

    monkeypatch.setattr(fsutil.os, "fsync", fsync)
    folder = tmp_path / "k"
    result = invoke("keys", "generate", "--dir", folder)
    assert result.exit_code == 130
    assert "interrupted; nothing was written" in result.stderr
    assert sorted(os.listdir(folder)) == []
    monkeypatch.setattr(fsutil.os, "fsync", real)
    assert invoke("keys", "generate", "--dir", folder).exit_code == 0
