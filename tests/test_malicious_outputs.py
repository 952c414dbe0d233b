"""Every command that writes, interrupted at the write step (Ctrl-C injected where the data is flushed),
leaves no partial file, no temporary file and no half set of outputs; an unwritable place gives one line.

/proc stands in for a read-only folder: the suite may run as root, for whom chmod 0500 means nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from diagkit.packet.keys import generate_keys
from tests.fixtures import secret_har as sh

HAR = {"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [
    {"startedDateTime": "2026-03-01T10:00:00Z", "time": 5,
     "request": {"method": "GET", "url": "https://api.example.com/v1?access_token=tok-123456789",
                 "headers": [{"name": "Cookie", "value": "sid=abcdef123456"}]},
     "response": {"status": 200, "headers": [], "content": {"mimeType": "text/plain", "text": "ok"}},
     "timings": {"wait": 5}}]}}


@pytest.fixture
def work(tmp_path: Path) -> dict[str, Path]:
    keys = generate_keys(tmp_path / "keys", comment="t")
    har = tmp_path / "in" / "s.har"
    har.parent.mkdir()
    har.write_text(json.dumps(HAR))
    results = tmp_path / "in" / "r.json"
    results.write_text(json.dumps({"probe": "tls", "target": "a.example:443", "started_at": "2026-01-01T00:00:00Z",
                                   "duration_ms": 1, "facts": {},
                                   "findings": [{"id": "tls.connect.ok", "severity": "pass", "title": "ok"}]}))
    out = tmp_path / "out"
    out.mkdir()
    return {"har": har, "results": results, "out": out, "sign": Path(keys["signing"]["private_path"]),
            "tmp": tmp_path}


def _packet(w: dict[str, Path]) -> Path:
    path = w["tmp"] / "in" / "p.zip"
    if not path.exists():
        from click.testing import CliRunner

        from diagkit.cli import cli

        result = CliRunner().invoke(cli, ["packet", "build", "--results", str(w["results"]), "--sign-key",
                                          str(w["sign"]), "-o", str(path)])
        assert result.exit_code == 0, result.output
    return path


COMMANDS: dict[str, Callable[[dict[str, Path]], list[Any]]] = {
    "redact": lambda w: ["redact", w["har"], "-o", w["out"] / "r.har", "--report", w["out"] / "rep.json",
                         "--map", w["out"] / "map.json"],
    "packet_build": lambda w: ["packet", "build", "--results", w["results"], "--attach", w["har"],
                               "--sign-key", w["sign"], "-o", w["out"] / "p.zip"],
    "collect": lambda w: ["collect", "--har", w["har"], "--yes", "--sign-key", w["sign"], "-o", w["out"] / "c.zip"],
    "keys_generate": lambda w: ["keys", "generate", "--dir", w["out"] / "keys"],
    "packet_show_html": lambda w: ["packet", "show", _packet(w), "--html", w["out"] / "show.html"],
    "packet_extract": lambda w: ["packet", "extract", _packet(w), w["out"] / "x"],
}


# Commands that write (fsync) a single file; the others write at least three.
ONE_FILE = {"collect": 1, "packet_build": 1, "packet_show_html": 1}


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


@pytest.mark.parametrize("nth", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_interrupted_write_leaves_nothing(invoke, work: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                         name: str, nth: int) -> None:
    from diagkit import fsutil

    args = COMMANDS[name](work)
    inputs_before = _files(work["tmp"] / "in")
    calls = {"n": 0}
    real = fsutil.os.fsync

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == nth:
            raise KeyboardInterrupt
        real(fd)

    monkeypatch.setattr(fsutil.os, "fsync", fsync)
    result = invoke(*args)
    if nth > ONE_FILE.get(name, nth):  # the command writes fewer files than that: it simply succeeded
        assert calls["n"] == ONE_FILE[name] and result.exit_code == 0, result.stderr
        return
    assert calls["n"] == nth
    assert result.exit_code == 130, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines()[-1] == "diagkit: error[DK002]: interrupted; nothing was written"
    assert "Traceback" not in result.stderr
    assert _files(work["out"]) == [], _files(work["out"])  # no output, no .diagkit-*.tmp, no half set
    assert _files(work["tmp"] / "in") == inputs_before


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_unwritable_destination_is_one_line(invoke, work: dict[str, Path], name: str) -> None:
    _packet(work)
    work = {**work, "out": Path("/proc/diagkit-test-unwritable")}
    result = invoke(*COMMANDS[name](work))
    assert result.exit_code == 1, (result.stdout, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("diagkit: error[DK") and "/proc/diagkit-test-unwritable" in last, result.stderr
    assert "Traceback" not in result.stderr and "DK999" not in result.stderr


def test_redact_unwritable_map_writes_no_redacted_copy(invoke, work: dict[str, Path]) -> None:
    result = invoke("redact", work["har"], "-o", work["out"] / "r.har", "--map", "/proc/diagkit-map.json")
    assert result.exit_code == 1
    assert result.stderr.strip() == "diagkit: error[DK102]: cannot write '/proc/diagkit-map.json': " \
                                    "No such file or directory"
    assert _files(work["out"]) == []


def test_no_temp_files_left_after_success(invoke, work: dict[str, Path]) -> None:
    for name in ("redact", "packet_build", "packet_show_html", "packet_extract"):
        result = invoke(*COMMANDS[name](work))
        assert result.exit_code == 0, (name, result.stderr)
    leftovers = [p for p in _files(work["out"]) if ".diagkit-" in p or p.endswith(".tmp")]
    assert leftovers == [] and _files(work["out"]), _files(work["out"])
    assert oct(os.stat(work["out"] / "map.json").st_mode & 0o777) == "0o600"


# ---------------------------------------------------------------- outputs checked before anything is written


def test_redact_checks_every_output_before_writing(invoke: Any, tmp_path: Path) -> None:
    """A bad --report used to fail after the redacted copy was already written; --report INPUT overwrote the input."""
    src = tmp_path / "notes.txt"
    original = f"mail {sh.PLANTED['email']}\n"
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
    assert good.exit_code == 0 and sh.PLANTED["email"] not in out.read_text()


def test_atomic_writer_refuses_a_folder_as_target(tmp_path: Path) -> None:
    """fsutil: a folder given as an output file was an internal error (IsADirectoryError) with a temp path."""
    import pytest

    from diagkit.errors import DiagkitError
    from diagkit.fsutil import write_atomic

    with pytest.raises(DiagkitError, match="is a folder"):
        write_atomic(tmp_path, b"x")
    assert not list(tmp_path.glob(".diagkit-*"))
