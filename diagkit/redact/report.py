"""What was redacted, by rule and location, with counts; never the values themselves."""

from __future__ import annotations

from collections import Counter
from typing import Any


class RedactionReport:
    """Counts per rule and per (location, rule); merging keeps the order locations were first seen.

    A location is a string, or a JSON path as the redactor's linked tuple (structured.Loc): such paths
    become strings only when they are read (`locations`, `to_dict`), since a big HAR records hundreds of
    thousands of them and most runs only print the counts."""

    def __init__(self, locations: bool = True) -> None:
        self.by_rule: Counter[str] = Counter()
        self.by_location: dict[tuple[Any, str], int] = {}
        self.files: list[str] = []
        # False: counts per rule only (a run that writes no report; a big HAR has ~5 locations per entry)
        self.tracks_locations = locations

    @property
    def total(self) -> int:
        return sum(self.by_rule.values())

    def add(self, rule: str, location: Any, count: int = 1) -> None:
        self.by_rule[rule] += count
        if self.tracks_locations:
            key = (location, rule)
            self.by_location[key] = self.by_location.get(key, 0) + count

    def locations(self) -> dict[tuple[str, str], int]:
        """(location string, rule) -> count, in first-seen order."""
        from diagkit.redact.structured import loc_str

        out: dict[tuple[str, str], int] = {}
        for (location, rule), count in self.by_location.items():
            key = (location if isinstance(location, str) else loc_str(location), rule)
            out[key] = out.get(key, 0) + count
        return out

    def merge(self, other: RedactionReport, prefix: str = "") -> None:
        if not other.tracks_locations or not self.tracks_locations:
            self.by_rule.update(other.by_rule)
        elif prefix:
            for (location, rule), count in other.locations().items():
                self.add(rule, f"{prefix}{location}", count)
        else:
            for (location, rule), count in other.by_location.items():
                self.add(rule, location, count)
        self.files.extend(f for f in other.files if f not in self.files)

    def summary(self) -> str:
        """One line for stderr: `12 values redacted (cookie 5, jwt 2, ...)`."""
        if not self.total:
            return "nothing needed redacting"
        parts = ", ".join(f"{rule} {count}" for rule, count in sorted(self.by_rule.items(), key=lambda x: (-x[1], x[0])))
        return f"{self.total} value{'s' if self.total != 1 else ''} redacted ({parts})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": int(self.total),
            "by_rule": {rule: int(n) for rule, n in sorted(self.by_rule.items())},
            "locations": [{"location": loc, "rule": rule, "count": int(n)}
                          for (loc, rule), n in self.locations().items()],
            "files": list(self.files),
        }
