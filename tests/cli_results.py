"""Helpers the CLI tests share: run a command with --json, pick findings out of the document, and check
that a refused input ends in exactly one stderr line."""

from __future__ import annotations

import json
import re
from typing import Any


def run_json(invoke: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any] | None]:
    """(result, parsed stdout or None when stdout is empty); never a traceback on either stream."""
    result = invoke(*args, **kwargs)
    assert "Traceback" not in result.stdout + result.stderr
    doc = json.loads(result.stdout) if result.stdout.strip() else None
    return result, doc


def ids(doc: dict[str, Any], severity: str | None = None) -> set[str]:
    return {f["id"] for f in doc["findings"] if severity is None or f["severity"] == severity}


def severities(result: Any) -> dict[str, str]:
    """{finding id: severity} of a --json result with one probe run."""
    return {f["id"]: f["severity"] for f in json.loads(result.stdout)["findings"]}


def find(doc: dict[str, Any], finding_id: str) -> dict[str, Any]:
    return next(f for f in doc["findings"] if f["id"] == finding_id)


def assert_one_error_line(result: Any, pattern: str) -> None:
    """Exit 1 with one stderr line matching `pattern` (the CLI's rule for bad input)."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.stderr
