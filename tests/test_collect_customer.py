"""collect as a customer meets it: prompts, the preview, interruptions, outputs and a private CA."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import servers

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_HAR = ROOT / "examples" / "slow-page.har"
NO_EDITOR = {"EDITOR": None, "VISUAL": None}


@pytest.fixture
def at_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """collect believes a person is at the terminal (CliRunner's stdin is not a tty)."""
    from diagkit.cli import collect as cli_collect

    monkeypatch.setattr(cli_collect, "is_interactive", lambda: True)


def case_of(packet: Path) -> dict[str, Any]:
    with zipfile.ZipFile(packet) as zf:
        return yaml.safe_load(zf.read("case.yaml"))


# ---------------------------------------------------------------- interactive


def test_multi_line_answers_end_with_an_empty_line(invoke, tmp_path: Path, at_terminal: None) -> None:
    # slow-page-load's questions in order; "steps_to_reproduce" and "request_ids" take several lines.
    answers = [
        "Orders page is slow",          # summary
        "https://127.0.0.1:1/orders",   # page_url
        "1. Sign in", "2. Open Orders", "",  # steps_to_reproduce: two lines, then an empty line
        "2 s", "20 s",                  # expected, actual
        "2026-11-23 09:40 +01:00",      # first_seen
        "", "all-users", "", "acme", "", "", "",  # frequency (default), impact, severity, tenant, region, browser, network
        "req-1 at 09:41", "req-2 at 09:42", "",  # request_ids: two lines
        "",                             # HAR evidence: skip
        "Acme Widgets", "",             # words to hide: one, then an empty line
        "y",                            # write the packet
    ]
    out = tmp_path / "p.zip"
    result = invoke("collect", "--checklist", "slow-page-load", "--timeout", "1", "-o", out,
                    input="\n".join(answers) + "\n", env=NO_EDITOR)
    assert result.exit_code == 3, result.stderr  # the page's port refuses connections: tls/http `fail`
    case = case_of(out)
    assert case["steps_to_reproduce"] == "1. Sign in\n2. Open Orders"
    assert case["request_ids"] == "req-1 at 09:41\nreq-2 at 09:42"
    assert case["tenant"] == "acme"
    # The preview shows each answer as it will be sent, multi-line ones kept on their lines.
    assert "  answers, as they will be sent:\n" in result.stderr
    assert "    steps_to_reproduce: 1. Sign in\n                        2. Open Orders\n" in result.stderr


def test_multi_line_answer_in_the_editor(invoke, tmp_path: Path, at_terminal: None) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nprintf 'line one\\nline two\\n' >> \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    answers = ["slow", "https://127.0.0.1:1/x"] + [""] * 20
    out = tmp_path / "p.zip"
    result = invoke("collect", "--checklist", "slow-page-load", "--timeout", "1", "-o", out,
                    input="\n".join(answers) + "\ny\n", env={"EDITOR": str(editor), "VISUAL": None})
    assert "opening your editor" in result.stderr
    assert case_of(out)["steps_to_reproduce"] == "line one\nline two"


def test_ctrl_d_at_a_prompt_is_an_interruption(invoke, tmp_path: Path, at_terminal: None) -> None:
    result = invoke("collect", "--checklist", "slow-page-load", "-o", tmp_path / "p.zip", input="only one answer\n",
                    env=NO_EDITOR)
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == "diagkit: error[DK002]: interrupted; nothing was written"
    assert "Aborted!" not in result.stderr + result.stdout
    assert not (tmp_path / "p.zip").exists()


def test_ctrl_c_at_a_prompt_is_an_interruption(invoke, tmp_path: Path, at_terminal: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import click.termui

    def pressed_ctrl_c(prompt: str = "") -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(click.termui, "visible_prompt_func", pressed_ctrl_c)
    result = invoke("collect", "--checklist", "slow-page-load", "-o", tmp_path / "p.zip", env=NO_EDITOR)
    assert result.exit_code == 130
    assert "error[DK002]: interrupted; nothing was written" in result.stderr
    assert "Aborted!" not in result.stderr + result.stdout


def test_declining_the_preview_writes_nothing(invoke, tmp_path: Path, at_terminal: None) -> None:
    result = invoke("collect", "--har", EXAMPLE_HAR, "-o", tmp_path / "p.zip", input="\nn\n")
    assert result.exit_code == 1
    assert "not written: nothing was saved" in result.stderr
    assert not (tmp_path / "p.zip").exists()


def test_preview_shows_redacted_values_and_counts_by_kind(invoke, tmp_path: Path) -> None:
    result = invoke("collect", "--har", EXAMPLE_HAR, "--case", "jane.doe@example.com asked", "--yes",
                    "-o", tmp_path / "p.zip")
    assert result.exit_code == 3, result.stderr
    preview = result.stderr[result.stderr.index("packet preview"):]
    assert "jane.doe@example.com" not in preview
    assert "    case_id: <EMAIL:" in preview
    line = next(x for x in preview.splitlines() if x.startswith("  evidence/slow-page.har: "))
    assert " value(s) replaced (" in line and " cookie" in line and " jwt" in line


def test_preview_says_names_are_not_detected_without_ner(invoke, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from diagkit.redact import engine

    monkeypatch.setattr(engine, "ner_available", lambda: False)
    result = invoke("collect", "--har", EXAMPLE_HAR, "--yes", "-o", tmp_path / "p.zip")
    assert ("note: people's names and postal addresses in free text are NOT detected without the optional "
            "[ner] extra") in result.stderr


def test_sensitive_prompt_promises_only_what_is_true() -> None:
    from diagkit.casework import checklists

    for name in checklists.builtin_names():
        for q in checklists.load(name).questions:
            if q.sensitive:
                assert "never stored" not in q.prompt + q.help, (name, q.name)


# ---------------------------------------------------------------- outputs


@pytest.mark.parametrize("kind", ["fifo", "symlink", "folder"])
def test_non_regular_outputs_are_refused_before_anything_runs(invoke, tmp_path: Path, kind: str) -> None:
    target = tmp_path / "out.zip"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink":
        target.symlink_to(victim)
    else:
        target.mkdir()
    result = invoke("collect", "--har", EXAMPLE_HAR, "--yes", "-o", target)
    assert result.exit_code == 1
    word = {"fifo": "a FIFO", "symlink": "a symbolic link", "folder": "a folder"}[kind]
    assert result.stderr.strip() == (f"diagkit: error[DK102]: cannot write packet '{target}': it is {word}, and "
                                     f"diagkit only replaces regular files (hint: give a new file name, or '-' "
                                     f"for standard output)")
    assert "running" not in result.stderr  # refused before any probe ran
    assert victim.read_text() == "keep me"
    assert target.is_symlink() if kind == "symlink" else True


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/null"), reason="replacing a device needs root")
def test_a_device_is_never_replaced(invoke, tmp_path: Path) -> None:
    result = invoke("redact", EXAMPLE_HAR, "-o", "/dev/null")
    assert result.exit_code == 1 and "it is a device" in result.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_an_input_is_never_the_output(invoke, tmp_path: Path) -> None:
    har = tmp_path / "session.har"
    har.write_bytes(EXAMPLE_HAR.read_bytes())
    result = invoke("collect", "--har", har, "--yes", "-o", har)
    assert result.exit_code == 1
    assert f"packet '{har}' is the input file '{har}'; diagkit never overwrites its input" in result.stderr
    assert har.read_bytes() == EXAMPLE_HAR.read_bytes()


def test_collect_dash_o_dash_writes_the_packet_to_stdout(invoke, tmp_path: Path) -> None:
    result = invoke("collect", "--har", EXAMPLE_HAR, "--yes", "-o", "-")
    assert result.exit_code == 3
    packet = tmp_path / "from-stdout.zip"
    packet.write_bytes(result.stdout_bytes)
    assert invoke("packet", "verify", packet).exit_code == 0
    assert "Packet written to standard output" in result.stderr
    assert not Path("-").exists()


def test_collect_dash_o_dash_with_json_is_a_usage_error(invoke) -> None:
    result = invoke("collect", "--har", EXAMPLE_HAR, "--yes", "--json", "-o", "-")
    assert result.exit_code == 2 and "cannot also take --json" in result.stderr


def test_packet_show_html_to_stdout(invoke, tmp_path: Path) -> None:
    invoke("collect", "--har", EXAMPLE_HAR, "--yes", "-o", tmp_path / "p.zip")
    result = invoke("packet", "show", tmp_path / "p.zip", "--html", "-")
    assert result.exit_code == 3, result.stderr  # the example's failures
    assert result.stdout.lstrip().lower().startswith("<!doctype html>")
    assert not Path("-").exists()


# ---------------------------------------------------------------- messages


def test_an_error_hint_is_never_masked(invoke, tmp_path: Path) -> None:
    result = invoke("collect", "--probe", "http", "--yes", "-o", tmp_path / "p.zip")
    assert result.exit_code == 2
    assert "http=https://api.example.com/v1;method=POST" in result.stderr
    assert "<REDACTED>" not in result.stderr


@pytest.mark.parametrize("target", ["localhost:99999", "localhost:0", "localhost:http", "[::1]:70000"])
def test_an_impossible_port_is_a_usage_error(invoke, target: str) -> None:
    result = invoke("probe", "tls", target)
    assert result.exit_code == 2
    assert "is not a port number (1-65535)" in result.stderr


def test_no_template_syntax_reaches_the_customer_or_the_packet(invoke, tmp_path: Path) -> None:
    result = invoke("collect", "--checklist", "slow-page-load", "--har", EXAMPLE_HAR, "--yes", "-o", tmp_path / "p.zip")
    assert 'skipped the HTTP check (The page itself, from this computer): no answer to "URL of the slow page"' \
        in result.stderr
    with zipfile.ZipFile(tmp_path / "p.zip") as zf:
        text = b"".join(zf.read(n) for n in zf.namelist()).decode("utf-8", "replace")
    assert "{{" not in result.stderr + result.stdout and "{{" not in text


# ---------------------------------------------------------------- a private CA


def test_collect_ca_file_reaches_every_network_probe(invoke, tmp_path: Path, ca: Any, ca_file: str,
                                                     http_server: Any) -> None:
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    site = http_server({"/": servers.Response(200, [("Content-Type", "text/plain")], "ok")},
                       ssl_context=servers.server_context(leaf))
    args = ["--probe", f"tls=127.0.0.1:{site.port}", "--probe", f"http={site.url('/')}", "--yes", "--json"]
    without = invoke("collect", *args, "-o", tmp_path / "a.zip")
    with_ca = invoke("collect", *args, "--ca-file", ca_file, "-o", tmp_path / "b.zip")
    assert without.exit_code == 3
    ids_without = {f["id"] for r in json.loads(without.stdout)["results"] for f in r["findings"]}
    assert "tls.chain.untrusted" in ids_without
    assert with_ca.exit_code == 0, with_ca.stdout
    results = json.loads(with_ca.stdout)["results"]
    assert {r["probe"] for r in results} >= {"tls", "http"}
    assert not [f for r in results for f in r["findings"] if f["severity"] in ("fail", "error")]


# ---------------------------------------------------------------- what stays


def test_server_addresses_stay_in_the_packet_and_client_addresses_do_not(invoke, tmp_path: Path,
                                                                         dns_server: Any) -> None:
    srv = dns_server("app.test. 60 IN A 93.184.216.34\napp.test. 60 IN A 10.20.30.40\n")
    out = tmp_path / "p.zip"
    result = invoke("collect", "--probe", f"dns=app.test;resolver={srv.address}", "--case",
                    "user at 198.51.100.7 cannot log in", "--yes", "-o", out)
    assert result.exit_code == 4, result.stderr  # 10.20.30.40 is a private answer: dns.answer.private
    with zipfile.ZipFile(out) as zf:
        findings = zf.read("findings.json").decode()
        case = zf.read("case.yaml").decode()
    assert "93.184.216.34" in findings and "10.20.30.40" in findings  # DNS answers an engineer compares
    assert "198.51.100.7" not in case and "<IP:" in case  # the person's own address is personal data
    doc = json.loads(findings)
    dns = next(r for r in doc["results"] if r["probe"] == "dns")
    assert dns["options"]["resolver"] == [srv.address]


def test_words_to_hide_from_options_a_file_and_the_prompt(invoke, tmp_path: Path, at_terminal: None) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Acme Widgets support saw it on build.globex.internal for Project Nightjar\n")
    terms = tmp_path / "terms.txt"
    terms.write_text("# our names\nglobex.internal\n\n")
    out = tmp_path / "p.zip"
    result = invoke("collect", "--attach", notes, "--redact-term", "acme widgets", "--terms", terms, "-o", out,
                    input="Nightjar\n\ny\n")
    assert result.exit_code == 0, result.stderr
    with zipfile.ZipFile(out) as zf:
        text = zf.read("evidence/notes.txt").decode()
    for word in ("Acme", "globex", "Nightjar"):
        assert word.lower() not in text.lower(), word
    assert text.count("<TERM:") == 3
    assert "Words to hide" in result.stderr


def test_a_missing_terms_file_stops_before_anything_runs(invoke, tmp_path: Path) -> None:
    result = invoke("collect", "--har", EXAMPLE_HAR, "--terms", tmp_path / "none.txt", "--yes", "-o", tmp_path / "p.zip")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"diagkit: error[DK101]: --terms file '{tmp_path / 'none.txt'}' does not exist (hint: check the path; "
        "relative paths are taken from the current directory)"]
