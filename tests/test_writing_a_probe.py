"""docs/writing-a-probe.md is true: its example plugin installs and runs, and the built-in probes are laid out
as it says (a folder per family with the ids beside the code, one registration line each)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from diagkit import plugins
from tests.plugin_install import installed
from tests.servers import Response

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "acme-probe"


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example installed as pip would lay it out, with the entry points its pyproject.toml declares."""
    import tomllib

    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    source = (EXAMPLE / "acme_probe.py").read_text()
    with installed(tmp_path, monkeypatch, project["name"], {"acme_probe": source},
                   project["entry-points"]["diagkit.probes"]):
        yield


def test_the_page_shows_the_example_unchanged():
    page = (ROOT / "docs" / "writing-a-probe.md").read_text()
    assert (EXAMPLE / "acme_probe.py").read_text() in page
    assert (EXAMPLE / "pyproject.toml").read_text() in page


def test_the_example_plugin_runs_like_a_built_in(invoke, acme, web):
    srv = web({"/status": Response(200, [("Content-Type", "text/plain")], "ok\n"),
               "/health": Response(503, [("Content-Type", "text/plain")], "down")})
    result = invoke("probe", "acme", srv.base_url, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [f["id"] for f in doc["findings"]] == ["acme.status.ok"]
    assert doc["facts"]["status"] == 200

    result = invoke("probe", "acme", srv.base_url, "--path", "/health", "--json")
    assert result.exit_code == 4, result.output  # a warn, no fail
    finding = json.loads(result.stdout)["findings"][0]
    assert (finding["id"], finding["severity"], finding["evidence"]) == ("acme.status.degraded", "warn", {"status": 503})

    with socket.socket() as bound:  # bound, never listening: the connection is refused, a finding not a crash
        bound.bind(("127.0.0.1", 0))
        result = invoke("probe", "acme", f"http://127.0.0.1:{bound.getsockname()[1]}", "--timeout", "2", "--json")
    assert result.exit_code == 3, result.output
    finding = json.loads(result.stdout)["findings"][0]
    assert (finding["id"], finding["evidence"]) == ("acme.status.unreachable", {"error": "ConnectError"})

    listed = invoke("findings", "list", "--area", "acme")
    assert listed.exit_code == 0
    assert [line.split()[1] for line in listed.stdout.splitlines()] == \
        ["acme.status.ok", "acme.status.degraded", "acme.status.unreachable"]


def _entry_points() -> dict[str, str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return project["project"]["entry-points"]["diagkit.probes"]


def test_each_built_in_probe_is_one_registration_line_into_its_family_folder():
    collectors = ROOT / "diagkit" / "collectors"
    families = sorted(p.name for p in collectors.iterdir() if (p / "__init__.py").is_file())
    used = set()
    for name, target in _entry_points().items():
        module, _, attr = target.partition(":")
        parts = module.split(".")
        assert parts[:2] == ["diagkit", "collectors"] and len(parts) == 4 and attr == "probe", (name, target)
        assert (collectors / parts[2] / f"{parts[3]}.py").is_file(), target
        used.add(parts[2])
    assert sorted(used) == families  # no family folder without a registered probe


def test_each_family_s_ids_live_beside_it():
    collectors = ROOT / "diagkit" / "collectors"
    for name in _entry_points():
        probe = plugins.get(name)
        family = collectors / probe.run.__module__.split(".")[2]
        ids = yaml.safe_load((family / "findings.yaml").read_text())
        area = name.split("-")[0]
        assert any(fid.startswith(area + ".") for fid in ids), (name, family)
