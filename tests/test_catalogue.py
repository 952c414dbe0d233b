"""Every finding id a code path can emit must be in the one catalogue (diagkit/catalogue.yaml)."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import yaml

from diagkit import catalogue

PACKAGE = Path(__file__).resolve().parents[1] / "diagkit"
AREAS = "dns|tls|http|jwt|oauth|saml|oidc|har|webhook|probe|redact|packet|collect|checklist"
ID_SHAPE = re.compile(rf"^({AREAS})(\.[a-z0-9_]+)+$")


def _is_module_name(text: str) -> bool:
    try:
        return importlib.util.find_spec(text) is not None
    except (ImportError, ValueError):
        return False


def _id_literals() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ID_SHAPE.match(node.value):
                if not _is_module_name(node.value):
                    found.setdefault(node.value, []).append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_every_emitted_id_is_catalogued():
    known = catalogue.load()
    missing = {fid: where for fid, where in _id_literals().items() if fid not in known}
    assert not missing, f"ids used in code but absent from catalogue.yaml: {missing}"


def test_scanner_finds_ids_in_code():
    # Guards the test above against silently scanning nothing.
    literals = _id_literals()
    assert "tls.connect.failed" in literals
    assert "probe.run.crashed" in literals


def test_catalogue_entries_are_well_formed():
    raw = yaml.safe_load((PACKAGE / "catalogue.yaml").read_text(encoding="utf-8"))
    for finding_id, spec in raw.items():
        assert ID_SHAPE.match(finding_id) or re.match(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", finding_id), finding_id
        assert spec["severity"] in {"pass", "info", "warn", "fail", "error"}, finding_id
        assert spec.get("title"), finding_id
        assert "meaning" in spec and "remediation" in spec, finding_id
        assert isinstance(spec.get("refs", []), list), finding_id


def test_catalogue_has_every_contract_id():
    contract = Path(__file__).resolve().parents[2] / "shared" / "CONTRACT.md"
    if not contract.exists():
        import pytest

        pytest.skip("../shared/CONTRACT.md not present")
    ids = set(re.findall(r"`((?:dns|tls|http|jwt|oauth|saml|oidc|har|webhook)\.[a-z_.]+)`", contract.read_text()))
    assert len(ids) > 50
    missing = sorted(ids - set(catalogue.load()))
    assert not missing, missing
