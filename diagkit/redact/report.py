"""What was redacted, by rule and location, with counts; never the values themselves."""

from __future__ import annotations

from collections import Counter
from typing import Any

NOT_DETECTED = ("names and places are not detected: the optional NER model is not installed or was turned off "
                "(pip install 'diagkit[ner]')")


def where_str(where: Any) -> str:
    """`log.entries[3].request.headers[0].Authorization` from the (parent, key) chain the redactor builds."""
    keys = []
    while isinstance(where, tuple):
        where, key = where
        keys.append(key)
    out = str(where or "")
    for key in reversed(keys):
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


class RedactionReport:
    """Counts per rule and per (location, rule); merging keeps the order locations were first seen.

    names_detected: False when the NER model is not installed (or --no-ner): names and places in free
    text were then not looked for, and the summary and to_dict() say so."""

    def __init__(self, locations: bool = True, names_detected: bool = True) -> None:
        self.names_detected = names_detected
        self.by_rule: Counter[str] = Counter()
        self.by_location: dict[tuple[Any, str], int] = {}
        self.files: list[str] = []
        # False: counts per rule only (a run that writes no report; a big HAR has ~5 locations per entry)
        self.tracks_locations = locations
        self.notes: list[str] = []  # what the person who ran it must know (content left unread elsewhere)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

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
        out: dict[tuple[str, str], int] = {}
        for (location, rule), count in self.by_location.items():
            key = (where_str(location) or "/", rule)
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
        self.names_detected = self.names_detected and other.names_detected
        for text in other.notes:
            self.note(text)

    def summary(self) -> str:
        """One line for stderr: `12 values redacted (cookie 5, jwt 2, ...)`, then the notes."""
        if not self.total:
            line = "nothing needed redacting"
        else:
            parts = ", ".join(f"{rule} {count}" for rule, count in sorted(self.by_rule.items(), key=lambda x: (-x[1], x[0])))
            line = f"{self.total} value{'s' if self.total != 1 else ''} redacted ({parts})"
        return "; ".join([line, *self._all_notes()])

    def _all_notes(self) -> list[str]:
        return self.notes + ([] if self.names_detected else [NOT_DETECTED])

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": int(self.total),
            "by_rule": {rule: int(n) for rule, n in sorted(self.by_rule.items())},
            "locations": [{"location": loc, "rule": rule, "count": int(n)}
                          for (loc, rule), n in self.locations().items()],
            "files": list(self.files),
            "names_detected": self.names_detected,
            "notes": self._all_notes(),
        }
