"""The JSON Schemas diagkit validates against (checklists, findings, packet manifests), loaded once."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any


@functools.cache  # package data: the same for the life of the process
def load(name: str) -> dict[str, Any]:
    """The schema `<name>.schema.json`, e.g. load("checklist")."""
    text = resources.files("diagkit.schemas").joinpath(f"{name}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)
