"""Every finding id a code path can emit must be in the catalogue (catalogue.yaml and each findings.yaml).

Which strings count as finding ids is derived, not listed: the areas of the registered probes
(diagkit.plugins: a probe's name and the ids its own catalogue declares) plus the areas the core emits.
A new probe's ids are therefore checked without editing this file.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from diagkit import catalogue, plugins
from diagkit.errors import PluginError
from tests.conftest import require_shared

PACKAGE = Path(__file__).resolve().parents[1] / "diagkit"
# Emitted by the core rather than by one probe: the runner (probe.*), collect, the environment report,
# checklists, the redactor and packets.
CORE_AREAS = ("probe", "collect", "env", "checklist", "redact", "packet")
# Shared formats several probes report on (http, har, oidc all read JWTs and OAuth errors).
FORMAT_AREAS = ("jwt", "oauth")


def probe_areas() -> set[str]:
    """The id prefixes of the registered probes: each name's first word (saml-metadata -> saml) and the
    areas of any ids a probe declares in its own catalogue."""
    found: set[str] = set()
    for name in plugins.names():
        found.add(name.split("-")[0])
        try:
            probe = plugins.get(name)
        except PluginError:
            continue
        found.update(finding_id.split(".")[0] for finding_id in probe.findings or {})
    return found


def areas() -> set[str]:
    return probe_areas() | set(CORE_AREAS) | set(FORMAT_AREAS)


def id_shape(known: set[str] | None = None) -> re.Pattern[str]:
    names = "|".join(sorted(map(re.escape, known if known is not None else areas())))
    return re.compile(rf"^({names})(\.[a-z0-9_]+)+$")


def _is_module_name(text: str) -> bool:
    try:
        return importlib.util.find_spec(text) is not None
    except (ImportError, ValueError):
        return False


@functools.cache  # two tests read it; parsing every module once is enough
def _id_literals() -> dict[str, list[str]]:
    shape = id_shape()
    found: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and shape.match(node.value):
                if not _is_module_name(node.value):
                    found.setdefault(node.value, []).append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_every_emitted_id_is_catalogued():
    known = catalogue.load()
    missing = {fid: where for fid, where in _id_literals().items() if fid not in known}
    assert not missing, f"ids used in code but absent from the catalogue: {missing}"


def test_scanner_finds_ids_in_code():
    # Guards the test above against silently scanning nothing.
    literals = _id_literals()
    assert "tls.connect.failed" in literals
    assert "probe.run.crashed" in literals
    assert any(fid.startswith("env.") for fid in literals)  # core areas count too


def test_areas_come_from_the_registered_probes():
    assert probe_areas() == {"dns", "har", "http", "oidc", "saml", "tls", "webhook"}
    # Every area of the catalogue is one the scanner looks for, so no catalogued id escapes the check.
    assert {fid.split(".")[0] for fid in catalogue.load()} <= areas()


def test_a_new_probe_s_ids_are_checked_without_editing_this_file(monkeypatch: pytest.MonkeyPatch):
    from importlib.metadata import EntryPoint

    from diagkit.probe import Probe

    def run(ctx, report, target):  # pragma: no cover - never run
        report.add("gizmo.part.broken")

    gizmo = Probe(name="gizmo-check", summary="A probe added after this test was written.", target="X", run=run)
    fake = plugins.Registered("gizmo-check", EntryPoint("gizmo-check", "gizmo:probe", plugins.GROUP))
    registered, load = plugins.registered, plugins._load
    monkeypatch.setattr(plugins, "registered", lambda: {**registered(), "gizmo-check": fake})
    monkeypatch.setattr(plugins, "_load", lambda name: gizmo if name == "gizmo-check" else load(name))
    assert "gizmo" in probe_areas()
    assert id_shape().match("gizmo.part.broken")
    assert not id_shape({"dns"}).match("gizmo.part.broken")


def test_catalogue_entries_are_well_formed():
    shape = id_shape()
    files = catalogue._catalogue_files()
    assert len(files) == 9  # the runner's, one per probe family (7), collect's
    raw = {fid: spec for f in files for fid, spec in yaml.safe_load(f.read_text(encoding="utf-8")).items()}
    assert len(raw) == len(catalogue.load())
    for finding_id, spec in raw.items():
        assert shape.match(finding_id) or re.match(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", finding_id), finding_id
        assert spec["severity"] in {"pass", "info", "warn", "fail", "error"}, finding_id
        assert spec.get("title"), finding_id
        assert "meaning" in spec and "remediation" in spec, finding_id
        assert isinstance(spec.get("refs", []), list), finding_id


def test_catalogue_has_every_contract_id():
    contract = require_shared("CONTRACT.md")  # fails when ../shared is there without it, or in CI
    names = "|".join(sorted(probe_areas() | set(FORMAT_AREAS)))
    ids = set(re.findall(rf"`((?:{names})\.[a-z_.]+)`", contract.read_text()))
    assert len(ids) > 50
    missing = sorted(ids - set(catalogue.load()))
    assert not missing, missing
