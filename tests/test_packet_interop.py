"""A packet verifies without diagkit: by the openssl and securesystemslib recipes in docs/packet-format.md
(run as written there), and by an independent verifier written here from the DSSE spec that never
imports diagkit. Packets are built through the CLI; everything after that uses other tools only."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs" / "packet-format.md"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


def recipe(name: str) -> str:
    """The fenced code block that follows `<!-- recipe: NAME` in docs/packet-format.md."""
    text = DOCS.read_text("utf-8")
    match = re.search(rf"<!-- recipe: {name}\b.*?-->\n```\w+\n(.*?)```", text, re.S)
    assert match, f"no {name} recipe in {DOCS}"
    return match.group(1)


@pytest.fixture
def built(invoke, tmp_path: Path) -> dict[str, Path]:
    """A packet with evidence, the sender's signing.pub beside it, and another person's key."""
    for who in ("sender", "other"):
        assert invoke("keys", "generate", "--dir", tmp_path / who, "--comment", who).exit_code == 0
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"results": []}))
    notes = tmp_path / "notes.txt"
    notes.write_text("a plain note\n")
    packet = tmp_path / "packet.zip"
    result = invoke("packet", "build", "--results", results, "--attach", notes, "--case-field", "case=CS-7",
                    "--sign-key", tmp_path / "sender" / "signing.key", "-o", packet)
    assert result.exit_code == 0, result.stderr
    shutil.copy(tmp_path / "sender" / "signing.pub", tmp_path / "signing.pub")
    return {"packet": packet, "key": tmp_path / "signing.pub", "other": tmp_path / "other" / "signing.pub"}


# ---------------------------------------------------------------- independent verifier (DSSE spec only)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding (protocol.md): lengths are byte counts in ASCII decimal."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 " + str(len(kind)).encode() + b" " + kind + b" " + str(len(payload)).encode() + b" " + payload


def independent_verify(packet: bytes, pem_key: bytes) -> dict:
    """Verify a packet as a third party would from the spec; return the in-toto Statement or raise."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    with zipfile.ZipFile(io.BytesIO(packet)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    envelope = json.loads(members["manifest.sig"])
    assert envelope["payloadType"] == PAYLOAD_TYPE
    payload = base64.b64decode(envelope["payload"])
    key = load_pem_public_key(pem_key)
    key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae(envelope["payloadType"], payload))
    assert payload == members["manifest.json"]
    statement = json.loads(payload)
    # RFC 8785 for this document (ASCII keys, integers): compact, sorted, no trailing newline.
    assert json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == payload
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    listed = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert set(members) == set(listed) | {"manifest.json", "manifest.sig"}
    for name, digest in listed.items():
        assert hashlib.sha256(members[name]).hexdigest() == digest, name
    return statement


def test_independent_verifier_accepts_a_built_packet(built: dict[str, Path]) -> None:
    statement = independent_verify(built["packet"].read_bytes(), built["key"].read_bytes())
    assert statement["predicateType"] == "https://diagkit.dev/escalation-packet/v1"
    assert {s["name"] for s in statement["subject"]} == {"case.yaml", "evidence/notes.txt", "findings.json",
                                                         "signer.pub", "summary.md"}
    raw = built["key"].read_bytes()
    from cryptography.hazmat.primitives import serialization

    public = serialization.load_pem_public_key(raw).public_bytes(serialization.Encoding.Raw,
                                                                  serialization.PublicFormat.Raw)
    assert statement["predicate"]["signer"]["key_id"] == "ed25519:" + hashlib.sha256(public).hexdigest()[:16]


def test_independent_verifier_refuses_another_key(built: dict[str, Path]) -> None:
    from cryptography.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        independent_verify(built["packet"].read_bytes(), built["other"].read_bytes())


# ---------------------------------------------------------------- the documented recipes


def require_tools() -> None:
    """The recipe's tools; .ci/run installs them, so in CI a missing one fails the test instead of skipping it."""
    missing = [t for t in ("openssl", "unzip", "sha256sum", "base64", "bash") if shutil.which(t) is None]
    if missing and os.environ.get("CI"):
        pytest.fail(f"the packet recipe needs {', '.join(missing)} on PATH", pytrace=False)
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH")


def test_openssl_recipe_from_the_docs(built: dict[str, Path], tmp_path: Path) -> None:
    require_tools()
    script = recipe("openssl")
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1] == "Signature Verified Successfully"
    # The same recipe with the wrong sender key fails at the signature, and a changed member at sha256sum.
    shutil.copy(built["other"], built["key"])
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode != 0 and "Signature Verification Failure" in run.stdout + run.stderr


def test_openssl_recipe_notices_an_edited_member(built: dict[str, Path], tmp_path: Path) -> None:
    require_tools()
    with zipfile.ZipFile(built["packet"]) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members["evidence/notes.txt"] = b"an edited note\n"
    with zipfile.ZipFile(built["packet"], "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    run = subprocess.run(["bash", "-c", recipe("openssl")], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode != 0 and "evidence/notes.txt: FAILED" in run.stdout + run.stderr


def test_securesystemslib_recipe_from_the_docs(built: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "unzipped"
    folder.mkdir()
    with zipfile.ZipFile(built["packet"]) as archive:
        archive.extractall(folder)
    shutil.copy(built["key"], tmp_path / "sender-signing.pub")
    run = subprocess.run([sys.executable, "-c", recipe("securesystemslib")], cwd=folder, capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert re.fullmatch(r"verified [0-9a-f-]{36} signed by ed25519:[0-9a-f]{16}\n", run.stdout)
    shutil.copy(built["other"], tmp_path / "sender-signing.pub")
    run = subprocess.run([sys.executable, "-c", recipe("securesystemslib")], cwd=folder, capture_output=True,
                         text=True, check=False)
    assert run.returncode != 0 and "VerificationError" in run.stderr
