"""The CLI spine: version, help, catalogue listing, probe listing, errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from diagkit import __version__
from tests.cli_results import severities


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"diagkit {__version__}"


def test_python_m_is_the_same_program():
    out = subprocess.run([sys.executable, "-m", "diagkit", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.strip() == f"diagkit {__version__}"


def test_help_lists_commands_with_an_example(invoke):
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("probe", "findings"):
        assert command in result.stdout
    assert "Example" in result.stdout


def test_help_does_not_import_heavy_modules():
    """`diagkit --help` must stay instant: no presidio, spaCy, httpx, dnspython, lxml or cryptography at start-up."""
    code = (
        "import sys\n"
        "from diagkit.cli import cli\n"
        "try:\n"
        "    cli.main(['--help'], prog_name='diagkit', standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('presidio_analyzer', 'spacy', 'httpx', 'dns', 'lxml', 'cryptography', 'signxml', 'yaml')"
        " if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "HEAVY=\n" in out.stdout, out.stdout


def test_findings_list_json_is_the_whole_catalogue(invoke):
    result = invoke("findings", "list", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    ids = {f["id"] for f in data["findings"]}
    for contract_id in ("tls.certificate.expired", "dns.resolve.nxdomain", "har.invalid", "oauth.error",
                        "saml.assertion.unsigned", "oidc.jwks.private_key", "http.redirect.auth_dropped"):
        assert contract_id in ids
    for entry in data["findings"]:
        assert set(entry) == {"id", "severity", "title", "meaning", "remediation", "refs"}
        assert entry["severity"] in {"pass", "info", "warn", "fail", "error"}
        if entry["severity"] in {"warn", "fail", "error"}:
            assert entry["remediation"], f"{entry['id']} has no remediation"


def test_findings_list_human_filtered_by_area(invoke):
    result = invoke("findings", "list", "--area", "tls")
    assert result.exit_code == 0
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines and all(" tls." in line for line in lines)


def test_probe_list_shows_builtins(invoke):
    result = invoke("probe", "--list")
    assert result.exit_code == 0
    assert "tls" in result.stdout
    data = json.loads(invoke("probe", "--list", "--json").stdout)
    tls = next(p for p in data["probes"] if p["name"] == "tls")
    assert tls["loaded"] is True
    assert tls["entry_point"] == "diagkit.collectors.tls.probe:probe"
    assert "--servername" in tls["options"]


def test_probe_help_has_generated_options_and_example(invoke):
    result = invoke("probe", "tls", "--help")
    assert result.exit_code == 0
    for text in ("--servername", "--ca-file", "--timeout", "--json", "Example"):
        assert text in result.stdout


def test_unknown_probe_is_a_usage_error(invoke):
    result = invoke("probe", "no-such-probe", "x")
    assert result.exit_code == 2


def test_missing_target_is_a_usage_error(invoke):
    assert invoke("probe", "tls").exit_code == 2


def test_bad_input_is_one_line_without_traceback(invoke):
    result = invoke("probe", "tls", "example.invalid:notaport")
    assert result.exit_code == 2  # an impossible port is a usage error
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "notaport" in lines[0] and lines[0].startswith("diagkit: error[")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_debug_shows_the_traceback():
    out = subprocess.run([sys.executable, "-m", "diagkit", "--debug", "probe", "tls", "x:notaport"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "Traceback" in out.stderr
    assert "notaport" in out.stderr


@pytest.mark.parametrize("args", [["probe", "tls", "127.0.0.1:1", "--timeout", "2"]])
def test_json_output_is_one_document_and_exit_code_follows_worst(invoke, args):
    result = invoke(*args, "--json")
    data = json.loads(result.stdout)
    assert set(data) - {"options", "diagnosis"} == {"diagkit_version", "probe", "target", "started_at", "duration_ms", "findings", "facts"}
    assert data["started_at"].endswith("Z")
    assert isinstance(data["duration_ms"], int)
    worst = {f["severity"] for f in data["findings"]}
    assert "fail" in worst and result.exit_code == 3


def test_several_targets_print_one_results_document(invoke):
    result = invoke("probe", "tls", "127.0.0.1:1", "127.0.0.1:2", "--timeout", "2", "--json")
    data = json.loads(result.stdout)
    assert list(data) == ["results"]
    assert [r["target"] for r in data["results"]] == ["127.0.0.1:1", "127.0.0.1:2"]


def _all_command_paths():
    import click

    from diagkit.cli import cli

    ctx = click.Context(cli)
    paths = []

    def walk(group, prefix):
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is None:
                continue
            paths.append([*prefix, name])
            if isinstance(command, click.Group):
                walk(command, [*prefix, name])

    walk(cli, [])
    return paths


def test_every_command_has_help_with_an_example(invoke):
    paths = _all_command_paths()
    assert ["probe", "tls"] in paths and ["packet", "verify"] in paths and ["collect"] in paths
    for path in paths:
        result = invoke(*path, "--help")
        assert result.exit_code == 0, path
        assert "Example" in result.stdout, f"`diagkit {' '.join(path)} --help` has no example"


def test_generated_catalogue_doc_is_current(invoke):
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "findings.md"
    result = invoke("findings", "list", "--markdown")
    assert result.exit_code == 0
    assert doc.read_text(encoding="utf-8") == result.stdout, \
        "docs/findings.md is stale: run `diagkit findings list --markdown > docs/findings.md`"


def test_no_color_is_honoured_even_when_colour_is_forced(runner, tmp_path):
    from diagkit.cli import cli

    har = Path(__file__).resolve().parents[1] / "examples" / "slow-page.har"
    coloured = runner.invoke(cli, ["probe", "har", str(har)], color=True, env={"NO_COLOR": None})
    plain = runner.invoke(cli, ["probe", "har", str(har)], color=True, env={"NO_COLOR": "1"})
    assert "\x1b[" in coloured.stdout
    assert plain.exit_code == coloured.exit_code == 3
    assert "\x1b[" not in plain.stdout and "[har.auth.unauthorized]" in plain.stdout


def test_keys_dir_prints_the_config_folder(invoke, tmp_path):
    result = invoke("keys", "dir", env={"DIAGKIT_CONFIG_DIR": str(tmp_path / "cfg")})
    assert result.exit_code == 0 and result.stdout == f"{tmp_path / 'cfg'}\n"


def test_shell_completion_lists_commands_and_probes():
    env = {**os.environ, "_DIAGKIT_COMPLETE": "bash_complete", "COMP_WORDS": "diagkit probe sa", "COMP_CWORD": "2"}
    out = subprocess.run([sys.executable, "-c", "from diagkit.cli import main; main()"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["plain,saml-metadata", "plain,saml-response"]


# ---------------------------------------------------------------- timeouts are `error` in every network probe; help text


def test_network_timeouts_are_errors_not_verdicts(invoke: Any, silent_server: Any) -> None:
    """CONTRACT.md: `error` means the check could not run (timeout), in every network probe."""
    cases = [("http", "/v1", "http.connect.failed", [b"GET /v1 "]),
             ("oidc", "/tenant", "oidc.discovery.unreachable",
              [b"GET /tenant/.well-known/openid-configuration ", b"GET /.well-known/oauth-authorization-server/tenant ",
               b"GET /tenant/.well-known/oauth-authorization-server "]),
             ("saml-metadata", "/md", "saml.metadata.unreachable", [b"GET /md "])]
    for probe, path, finding_id, requests in cases:
        srv = silent_server()
        result = invoke("probe", probe, f"http://127.0.0.1:{srv.port}{path}", "--timeout", "0.2", "--json")
        assert result.exit_code == 5, (probe, result.stdout)
        assert severities(result)[finding_id] == "error"
        assert finding_id in result.stderr  # the check that could not run is also said on stderr
        # Each request was sent whole and then abandoned by the client itself: no retry beyond them.
        assert srv.wait_closed(), probe
        assert [sent[:len(start)] for sent, start in zip(srv.received, requests, strict=True)] == requests, srv.received


def test_packet_help_examples_are_not_rewrapped(invoke: Any) -> None:
    """`packet build --help` printed its example command broken over two lines (`-o` / `case-1234.zip`)."""
    build = invoke("packet", "build", "--help")
    assert build.exit_code == 0
    assert ("  diagkit packet build --results tls.json --attach session.har --case-field case=CS-1234 "
            "-o case-1234.zip\n") in build.stdout
    group = invoke("packet", "--help")
    assert "  diagkit packet build --results tls.json --case-field case=CS-1234 -o case.zip\n" in group.stdout
