"""Reproducible output: packet build and collect, run twice on the same inputs with the same key, give
the same bytes for everything but the packet's id, time and signature (redaction pseudonyms are keyed
per case, not per run)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from diagkit.packet.keys import generate_keys
from tests.fixtures import secret_har as sh


def test_packet_build_twice_gives_same_member_bytes(invoke: Any, tmp_path: Path) -> None:
    """Reproducible packets: redacted evidence used to differ because pseudonyms had a random key per run."""
    keys = generate_keys(tmp_path / "k")
    har = sh.secret_har(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text(f"customer {sh.PLANTED['email']} said password={sh.PLANTED['password']}\n")
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
    assert not any(value in evidence for value in sh.PLANTED.values())


def test_collect_twice_gives_same_evidence_bytes(invoke: Any, tmp_path: Path) -> None:
    keys = generate_keys(tmp_path / "k")
    har = sh.secret_har(tmp_path)
    packets = []
    for name in ("a.zip", "b.zip"):
        result = invoke("collect", "--har", har, "--case", "CS-2", "--yes",
                        "--sign-key", keys["signing"]["private_path"], "-o", tmp_path / name)
        assert result.exit_code == 0, result.stderr
        packets.append(zipfile.ZipFile(tmp_path / name))
    assert packets[0].read("evidence/session.har") == packets[1].read("evidence/session.har")
    assert packets[0].read("case.yaml") == packets[1].read("case.yaml")
