"""Installing a probe plugin for one test the way pip lays one out: its modules and a .dist-info whose
entry_points.txt registers them, on sys.path; everything the plugin added is forgotten afterwards."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def installed(folder: Path, monkeypatch: pytest.MonkeyPatch, distribution: str,
              modules: Mapping[str, str], entry_points: Mapping[str, str]) -> Iterator[Path]:
    """modules: module name -> source; entry_points: probe name -> "module:attribute"."""
    from diagkit import catalogue, plugins
    from diagkit.diagnosis import rules

    for name, source in modules.items():
        (folder / f"{name}.py").write_text(source)
    info = folder / f"{distribution.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[diagkit.probes]\n{lines}")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(rules, "_registered", [])  # rules a plugin registers go with it
    for name in modules:
        monkeypatch.delitem(sys.modules, name, raising=False)  # each test imports its own copy
    plugins.registered.cache_clear()
    plugins._load.cache_clear()
    try:
        yield folder
    finally:
        plugins.registered.cache_clear()
        plugins._load.cache_clear()
        catalogue.load.cache_clear()  # forget the plugin's ids
        for name in modules:
            sys.modules.pop(name, None)
