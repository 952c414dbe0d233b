"""Probe discovery through the `diagkit.probes` entry-point group.

Built-in probes are registered in pyproject.toml exactly as a third party's would be, so there is one
code path. A plugin that fails to load is reported, never fatal for the others.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from diagkit.errors import PluginError
from diagkit.probe import Probe

GROUP = "diagkit.probes"


@dataclass(frozen=True)
class Registered:
    name: str
    entry_point: EntryPoint

    @property
    def distribution(self) -> str:
        dist = getattr(self.entry_point, "dist", None)
        return f"{dist.name} {dist.version}" if dist is not None else "?"

    def load(self) -> Probe:
        try:
            obj = self.entry_point.load()
        except Exception as exc:  # a broken third-party plugin must not take the CLI down
            raise PluginError(
                f"probe plugin '{self.name}' ({self.entry_point.value}) failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        if callable(obj) and not isinstance(obj, Probe):
            obj = obj()
        if not isinstance(obj, Probe):
            raise PluginError(f"probe plugin '{self.name}' ({self.entry_point.value}) is not a diagkit.probe.Probe")
        if obj.name != self.name:
            raise PluginError(f"probe plugin '{self.name}' declares the name '{obj.name}'")
        if obj.findings:
            from diagkit import catalogue

            try:
                catalogue.register(f"probe plugin '{self.name}'", obj.findings)
            except (ValueError, KeyError) as exc:
                raise PluginError(f"probe plugin '{self.name}' has a bad finding catalogue: {exc}") from exc
        if obj.diagnosis:
            from diagkit import diagnosis

            try:
                diagnosis.register(f"probe plugin '{self.name}'", obj.diagnosis)
            except (ValueError, KeyError, TypeError) as exc:
                raise PluginError(f"probe plugin '{self.name}' has a bad diagnosis rule: {exc}") from exc
        return obj


@functools.cache
def registered() -> dict[str, Registered]:
    found: dict[str, Registered] = {}
    for ep in entry_points(group=GROUP):
        # First one wins, so a duplicate third-party name cannot shadow a built-in silently.
        found.setdefault(ep.name, Registered(ep.name, ep))
    return dict(sorted(found.items()))


def load_all() -> None:
    """Load every plugin so their finding ids are known (for `findings list`); broken ones are skipped."""
    for name in registered():
        try:
            _load(name)
        except PluginError:
            pass


def names() -> list[str]:
    return list(registered())


def get(name: str) -> Probe:
    reg = registered().get(name)
    if reg is None:
        known = ", ".join(names()) or "none"
        raise PluginError(f"no probe named '{name}' is installed (installed: {known})",
                          hint="run 'diagkit probe --list'")
    return _load(name)


@functools.cache
def _load(name: str) -> Probe:
    return registered()[name].load()
