"""Checklists: the shipped files, `diagkit checklist list|show|validate`, answers, substitution and readiness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diagkit.casework import checklists, plan, readiness, templates
from diagkit.casework.checklists import Question

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (ROOT / "checklists").glob("*.yaml"))
EXPECTED = ["api-auth-failure", "dns-resolution-failure", "slow-page-load", "sso-oidc-login-failure",
            "sso-saml-login-failure", "tls-certificate-error", "webhook-delivery-failure"]

MINIMAL = """\
id: my-case
title: My case
description: When to use it.
questions:
  - name: api_url
    prompt: API URL
    type: url
    required: true
  - name: token
    prompt: Token
    sensitive: true
probes:
  - probe: tls
    target: "{{ answers.api_url | hostport }}"
evidence:
  - name: log
    title: The client log
    kind: log
    required: true
"""


def test_every_required_checklist_ships_and_is_installed_as_package_data() -> None:
    assert SHIPPED == EXPECTED
    # Loaded through importlib.resources (diagkit/casework/checklists_data), not the repo path.
    assert checklists.builtin_names() == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_shipped_checklist_is_complete(name: str) -> None:
    item = checklists.load(name)
    names = {q.name for q in item.questions}
    # What every escalation needs, whatever the area.
    assert {"summary", "first_seen", "impact", "severity", "actual_result"} <= names
    assert item.question("first_seen").type == "datetime"
    assert any(q.required for q in item.questions)
    assert item.probes, "a checklist should run at least one probe"
    assert any(e.required for e in item.evidence)
    assert len(item.description) > 100


def test_list_prints_every_checklist(invoke) -> None:
    result = invoke("checklist", "list")
    assert result.exit_code == 0
    for name in EXPECTED:
        assert name in result.stdout
    data = json.loads(invoke("checklist", "list", "--json").stdout)
    assert [c["id"] for c in data["checklists"]] == EXPECTED
    assert all(c["questions"] > 5 for c in data["checklists"])


def test_show_human_and_json(invoke) -> None:
    result = invoke("checklist", "show", "sso-saml-login-failure")
    assert result.exit_code == 0
    assert "idp_metadata_url" in result.stdout and "saml-metadata" in result.stdout
    assert "Firefox" in result.stdout  # HAR instructions per browser
    data = json.loads(invoke("checklist", "show", "sso-saml-login-failure", "--json").stdout)
    assert data["id"] == "sso-saml-login-failure"
    assert {q["name"] for q in data["questions"]} >= {"sp_entity_id", "acs_url", "idp_type"}
    assert data["probes"][0]["probe"] == "saml-metadata"


def test_show_unknown_name_is_one_line_error(invoke) -> None:
    result = invoke("checklist", "show", "no-such-list")
    assert result.exit_code == 1
    assert "no checklist named 'no-such-list'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_show_accepts_a_file(invoke, tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(MINIMAL)
    result = invoke("checklist", "show", str(path))
    assert result.exit_code == 0 and "My case" in result.stdout


def test_validate_shipped_files(invoke) -> None:
    result = invoke("checklist", "validate", *[str(ROOT / "checklists" / f"{n}.yaml") for n in EXPECTED])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("valid checklist") == len(EXPECTED)


def _validate(invoke, tmp_path: Path, text: str):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    return invoke("checklist", "validate", str(path)), str(path)


def test_validate_broken_yaml_names_the_line(invoke, tmp_path: Path) -> None:
    text = MINIMAL.replace("    prompt: Token\n", "    prompt: [Token\n")
    result, path = _validate(invoke, tmp_path, text)
    assert result.exit_code == 1
    assert "invalid YAML" in result.stderr
    line = int(result.stderr.split(f"{path}:")[1].split(":")[0])
    assert 10 <= line <= 13  # the unclosed flow sequence starts on line 10


def test_validate_schema_errors_name_the_line(invoke, tmp_path: Path) -> None:
    text = MINIMAL.replace("    type: url\n", "    type: telephone\n").replace("    kind: log\n", "    kind: log\n    colour: red\n")
    result, path = _validate(invoke, tmp_path, text)
    assert result.exit_code == 1
    assert f"{path}:7: questions[0].type: 'telephone' is not one of" in result.stderr
    assert f"{path}:19: evidence[0]: unknown key(s) ('colour' was unexpected)" in result.stderr


@pytest.mark.parametrize(("change", "line", "message"), [
    (("| hostport }}", "| upper }}"), 14, "unknown filter 'upper'"),
    (("answers.api_url | hostport", "answers.api_host"), 14, "unknown question 'api_host'"),
    (("answers.api_url | hostport", "__import__('os').system('id')"), 14, "unsupported placeholder"),
    (("probe: tls", "probe: telnet"), 13, "unknown probe 'telnet'"),
    (("  - name: token\n", "  - name: api_url\n"), 9, "defined twice"),
    (("    sensitive: true\n", "    sensitive: true\n    default: hunter2\n"), 12, "must not carry a default"),
    (("title: My case\n", "title: My case\ntitle: Again\n"), 3, "duplicate key 'title'"),
])
def test_validate_semantic_errors(invoke, tmp_path: Path, change: tuple[str, str], line: int, message: str) -> None:
    result, path = _validate(invoke, tmp_path, MINIMAL.replace(*change))
    assert result.exit_code == 1
    assert f"{path}:{line}:" in result.stderr and message in result.stderr, result.stderr


def test_validate_unknown_probe_option(invoke, tmp_path: Path) -> None:
    text = MINIMAL.replace('    target: "{{ answers.api_url | hostport }}"\n',
                           '    target: "{{ answers.api_url | hostport }}"\n    options:\n      sni: x\n')
    result, path = _validate(invoke, tmp_path, text)
    assert result.exit_code == 1
    assert "probe 'tls' has no option 'sni'" in result.stderr


def test_validate_json_output(invoke, tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(MINIMAL)
    data = json.loads(invoke("checklist", "validate", str(path), "--json").stdout)
    assert data["results"][0] == {"file": str(path), "valid": True, "id": "my-case", "problems": []}


def test_validate_missing_file(invoke, tmp_path: Path) -> None:
    result = invoke("checklist", "validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_collect_with_invalid_checklist_file_names_the_line(invoke, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL.replace("type: url", "type: nope"))
    result = invoke("collect", "--checklist", str(path), "--yes", "-o", str(tmp_path / "p.zip"))
    assert result.exit_code == 1
    assert f"{path}:7:" in result.stderr
    assert not (tmp_path / "p.zip").exists()


# ---------------------------------------------------------------- answers, substitution, readiness


@pytest.mark.parametrize(("qtype", "value", "expected"), [
    ("url", "https://idp.example.com/metadata", "https://idp.example.com/metadata"),
    ("email", "ops@example.com", "ops@example.com"),
    ("bool", "yes", True),
    ("bool", False, False),
    ("int", "502", 502),
    ("datetime", "2026-11-23T09:40:00Z", "2026-11-23T09:40+00:00"),
    ("datetime", "2026-11-23 09:40 +01:00", "2026-11-23T09:40+01:00"),
    ("host", "app.example.com", "app.example.com"),
    ("hostport", "[2001:db8::1]:8443", "[2001:db8::1]:8443"),
])
def test_check_answer_accepts(qtype: str, value: object, expected: object) -> None:
    assert checklists.check_answer(Question("q", "Q", type=qtype), value) == expected


def test_check_answer_naive_datetime_gets_local_offset() -> None:
    value = checklists.check_answer(Question("q", "Q", type="datetime"), "2026-11-23 09:40")
    assert value.startswith("2026-11-23T09:40") and ("+" in value[16:] or "-" in value[16:])


@pytest.mark.parametrize(("qtype", "value"), [
    ("url", "ftp://x.example.com"), ("url", "not a url"), ("email", "nobody"), ("bool", "maybe"),
    ("int", "5xx"), ("datetime", "last tuesday"), ("host", "https://app.example.com"),
    ("hostport", "app.example.com:99999"), ("string", "two\nlines"), ("hostport", "[::1]:https"),
    ("hostport", "[zzz]:443"), ("host", "[::1]:443"),
])
def test_check_answer_rejects(qtype: str, value: str) -> None:
    with pytest.raises(ValueError):
        checklists.check_answer(Question("q", "Q", type=qtype), value)


def test_choice_is_case_insensitive_and_canonical() -> None:
    q = Question("q", "Q", type="choice", choices=("GET", "POST"))
    assert checklists.check_answer(q, "post") == "POST"
    with pytest.raises(ValueError, match="GET, POST"):
        checklists.check_answer(q, "PUT")


def test_fill_filters_and_missing() -> None:
    answers = {"url": "https://idp.example.com:8443/app/metadata?x=1", "plain": "http://h.example.com/a"}
    assert templates.fill("{{ answers.url | hostport }}", answers) == ("idp.example.com:8443", [])
    assert templates.fill("{{answers.plain|hostport}}", answers) == ("h.example.com:80", [])
    assert templates.fill("{{ answers.url | host }}", answers) == ("idp.example.com", [])
    assert templates.fill("{{ answers.url | origin }}", answers) == ("https://idp.example.com:8443", [])
    assert templates.fill("x={{ answers.gone }}", answers) == (None, ["gone"])


def test_fill_inserts_text_and_never_evaluates() -> None:
    answers = {"a": "{{ answers.b }}", "b": "secret"}
    assert templates.fill("{{ answers.a }}", answers) == ("{{ answers.b }}", [])
    with pytest.raises(ValueError, match="unsupported placeholder"):
        templates.placeholders("{{ answers.a.__class__ }}")


def test_plan_skips_runs_and_drops_options() -> None:
    item = checklists.load("api-auth-failure")
    runs, skipped = plan.planned_runs(item, {"api_url": "https://api.example.com/v2/orders", "http_method": "POST"})
    http = next(r for r in runs if r.probe == "http")
    assert http.target == "https://api.example.com/v2/orders"
    assert http.options == {"method": "POST"}
    assert set(http.dropped_options) == {"bearer", "expect_issuer", "expect_audience", "expect_scope"}
    assert any(r.probe == "tls" and r.target == "api.example.com:443" for r in runs)
    assert [s.reason() for s in skipped] == [
        'skipped the OpenID Connect check (The issuer\'s discovery document and keys): no answer to '
        '"Expected token issuer (iss) / authorization server URL"']
    assert skipped[0].to_dict()["missing_answers"] == ["issuer"]


def test_readiness() -> None:
    item = checklists.parse(MINIMAL, "mine.yaml")
    not_ready = readiness.readiness(item, {}, [("trace.har", True)])
    assert not_ready["ready"] is False and not_ready["score"] == 0
    assert [m["name"] for m in not_ready["missing_answers"]] == ["api_url"]
    assert [m["name"] for m in not_ready["missing_evidence"]] == ["log"]
    half = readiness.readiness(item, {"api_url": "https://x.example.com"}, [])
    assert half["score"] == 50 and not half["ready"]
    ready = readiness.readiness(item, {"api_url": "https://x.example.com"}, [("client.log", False)])
    assert ready["ready"] is True and ready["score"] == 100


def test_answers_file_errors(tmp_path: Path) -> None:
    from diagkit.casework.answers import read_answers_file
    from diagkit.errors import InputError

    bad = tmp_path / "a.yaml"
    bad.write_text("summary: [unclosed\n")
    with pytest.raises(InputError, match="a.yaml' line 2: invalid YAML"):
        read_answers_file(str(bad))
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="must be a YAML mapping"):
        read_answers_file(str(bad))
