"""Phone numbers in free text: a cheap candidate scan, then python-phonenumbers decides.

presidio's PhoneRecognizer wraps python-phonenumbers' PhoneNumberMatcher, one run a default region over the
whole text. Here a candidate regex finds digit groups, `plausible` drops what is a version or an id, and
phonenumbers parses what is left for presidio's default regions and its matcher confirms it at presidio's
leniency (VALID).

parse() and the matcher are slow Python (tens of microseconds a call) and most candidates in a log are not
phones (an access log's "200 881029" is a status and a size). Two tests read phonenumbers' own metadata
first, without parsing:
- `may_be_valid`: a valid number's national significant number (NSN) is its digits less a calling code or
  national prefix, and matches one of its region's number-type patterns;
- `_prefix_missing`: a number written in a region's national format without the national prefix that the
  region's formatting rule asks for is rejected by the matcher (a French "200 881029").
Both are exact in the one direction that matters: they only rule out what phonenumbers rejects
(tests/test_phones.py checks them against parse, is_valid_number and the matcher's own verdicts).
"""

from __future__ import annotations

import functools
import re
from typing import Any

# The regions presidio's PhoneRecognizer checks by default (PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS).
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")
PHONE_CONTEXT = ("phone", "number", "telephone", "cell", "cellphone", "mobile", "call", "tel", "fax")
# Candidates: digits with the separators phone formats use, an optional +/00 and extension. Between two digits:
# nothing, one of " .-/", "(" after an optional one of " .-", or ")" before one. Written with one branch per
# first character, so that a digit followed by a digit fails each branch at once (a date's "2023-11-14T22"
# costs a third less; at most one way of reading a separator can be followed by a digit, so the matches are
# those of the plainer (?:[ .\-/]|[ .\-]?\(|\)[ .\-]?)?: a test checks). The lookahead first: a match's first
# seven characters are digits or these (seven digits come before any extension), a cheap test that turns
# away most starts ("05:33Z" in a time, "200 in") before the digit loop is tried.
CANDIDATE_RE = re.compile(r"(?<![\w.+/\\-])(?=[+()\d .\-/]{7})(?:\+|00)?(?:\(\+?\d{1,4}\)[ .\-]?)?\d"
                          r"(?:(?:[ .\-]\(?|/|\(|\)[ .\-]?)?\d){6,16}(?:\s?(?:ext\.?|x)\s?\d{1,6})?(?![\w@])")
# The same, for ASCII text (str.isascii() is free): a match starts with '+', '(' or a digit, and a character
# set the engine checks first makes the scan of a whole text a fifth quicker.
_ASCII_CANDIDATE_RE = re.compile(r"(?=[+(0-9])" + CANDIDATE_RE.pattern)
# How much of the text around a candidate the matcher reads (its _extract_match and _parse_and_verify): the
# character before it, the one after it, and after a time-like candidate ("12:30") the ":dd" that follows.
NEIGHBOURS = (1, 3)
# The number-type descriptions phonenumbers' _number_type_helper tries; a valid number matches one of them.
_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
          "fixed_line", "mobile")
# Candidates the metadata test understands: digits and the separators between them. Anything else ('+', an
# extension, letters) is parsed as it always was.
_SIMPLE_RE = re.compile(r"[0-9 .\-/()]+")
_SEPARATORS = str.maketrans("", "", " .-/()")
_GROUPS_RE = re.compile(r"\d+")


@functools.cache
def _library() -> Any:
    """python-phonenumbers, with its own cache of compiled patterns switched on (re_util's
    enable_pattern_cache: the RegexCache of the Java original). Without it every metadata pattern goes
    through re.compile's cache look-up, dozens a number: a fifth of the time a phone number takes."""
    import phonenumbers
    from phonenumbers import re_util

    enable = getattr(re_util, "enable_pattern_cache", None)
    if enable is not None:
        enable()
    return phonenumbers


@functools.cache
def _nsn_re(country_code: int) -> tuple[frozenset[int], re.Pattern[str], str] | None:
    """(lengths, pattern, its source with the length test first): the lengths and the full match of any NSN
    valid for a region with this calling code.

    is_valid_number() holds when the NSN matches its region's general description and one number type
    (phonenumbers' _number_type_helper); for a shared calling code (1: the NANP, 44: GB and the Crown
    dependencies) any of its regions may be the one. None when the metadata cannot be read (then nothing
    is ruled out)."""
    phonenumbers = _library()
    from phonenumbers import PhoneMetadata

    lengths: set[int] = set()
    alternatives = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        meta = PhoneMetadata.metadata_for_region(region)
        general = meta.general_desc if meta is not None else None
        if general is None or not general.national_number_pattern:
            continue
        types = [desc.national_number_pattern for desc in (getattr(meta, t, None) for t in _TYPES)
                 if desc is not None and desc.national_number_pattern]
        if not types:
            continue
        lengths.update(general.possible_length)
        alternatives.append(f"(?=(?:{general.national_number_pattern})\\Z)(?:{'|'.join(types)})")
    if not alternatives or not lengths or min(lengths) < 1:
        return None
    source = f"(?:{'|'.join(alternatives)})\\Z"
    size = "|".join(rf"[0-9]{{{n}}}" for n in sorted(lengths))
    return frozenset(lengths), re.compile(source), f"(?=(?:{size})\\Z){source}"


class _Unsure(Exception):
    """The metadata test cannot tell: the number is parsed."""


class _Region:
    """What parse() does with a national-format number for one default region, from its metadata."""

    def __init__(self, region: str) -> None:
        phonenumbers = _library()
        from phonenumbers import PhoneMetadata

        meta = PhoneMetadata.metadata_for_region(region)
        self.usable = meta is not None
        self.cc = ""
        self.valid: tuple[frozenset[int], re.Pattern[str], str] | None = None
        self.idd: re.Pattern[str] | None = None  # the international dialling prefix
        self.prefix: re.Pattern[str] | None = None  # the national prefix (and carrier code), for parsing
        self.main_prefix: re.Pattern[str] | None = None
        self.whole: re.Pattern[str] | None = None
        self.keep_group: int | None = None  # a transform rule that keeps one group (BR's keeps its second group)
        self.formats: list[Any] | None = None
        self.format_rule: Any = None
        self.first_group_only: Any = None
        if meta is None:
            return
        cc = phonenumbers.country_code_for_region(region)
        self.cc = str(cc)
        self.valid = _nsn_re(cc)
        self.idd = re.compile(meta.international_prefix) if meta.international_prefix else None
        self.prefix = re.compile(meta.national_prefix_for_parsing) if meta.national_prefix_for_parsing else None
        rule = meta.national_prefix_transform_rule
        if rule:
            m = re.fullmatch(r"\\(\d)", rule)
            if m is None:
                self.usable = False  # a rule that rewrites digits: nothing can be ruled out
            else:
                self.keep_group = int(m.group(1))
        self.usable = self.usable and self.valid is not None
        # What the matcher's national prefix check reads: the main region of the calling code (the US for
        # the NANP, GB for 44), its formatting rules and its national prefix.
        main = PhoneMetadata.metadata_for_region(phonenumbers.region_code_for_country_code(cc))
        self.formats = list(main.number_format) if main is not None else None
        self.main_prefix = (re.compile(main.national_prefix_for_parsing)
                            if main is not None and main.national_prefix_for_parsing else None)
        # the matcher's own helpers for that check (private: without them the check is not made)
        self.format_rule = _matcher_helper("_choose_formatting_pattern_for_number")
        self.first_group_only = _matcher_helper("_formatting_rule_has_first_group_only")
        # Without a transform rule, the NSNs parse() can make are what one pattern matches: the calling code,
        # then the national prefix at most twice, then a valid NSN (backtracking tries every way to strip,
        # a few more than parse() does: still only ever ruling out what cannot be valid). One match call
        # instead of one a way to strip.
        if self.usable and self.keep_group is None and self.valid is not None:
            npp = f"(?:{meta.national_prefix_for_parsing})?" * 2 if meta.national_prefix_for_parsing else ""
            self.whole = re.compile(f"(?:{re.escape(self.cc)})?{npp}{self.valid[2]}")

    def strip_prefix(self, number: str) -> str | None:
        """The number with its national prefix (and carrier code) taken off as
        _maybe_strip_national_prefix_carrier_code takes it, or None when no prefix matches."""
        if self.prefix is None:
            return None
        m = self.prefix.match(number)
        if m is None:
            return None
        if self.keep_group is not None and m.groups() and m.groups()[-1] is not None:
            if m.end(self.keep_group) != m.end():
                raise _Unsure  # the kept group is not the end of the prefix: not a suffix of the digits
            return number[m.start(self.keep_group):]
        return number[m.end():]

    def nsns(self, group: str) -> set[str]:
        """Every NSN parse() can make of these digits: as they are, without a national prefix, without the
        calling code (then without a national prefix, once or twice: the country code step strips one and
        parse() tries again)."""
        out = {group}
        national = [group]
        if group.startswith(self.cc):
            national.append(group[len(self.cc):])
        for number in national:
            out.add(number)
            for _ in range(2):
                stripped = self.strip_prefix(number)
                if stripped is None:
                    break
                out.add(stripped)
                number = stripped
        return out


@functools.cache
def _region(region: str) -> _Region:
    return _Region(region)


@functools.cache
def prepare() -> None:
    """Read the default regions' metadata and compile their patterns now: before workers are forked, so that
    they share them instead of each compiling its own (the NANP's pattern alone is 14 KB)."""
    phonenumbers = _library()

    for region in PHONE_REGIONS:
        _region(region)
        # phonenumbers compiles a region's patterns (number types, formats) the first time they are used
        example = phonenumbers.example_number(region)
        if example is not None:
            national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
            accepted.__wrapped__(national, f"call {national} now", 5)


def may_be_valid(candidate: str, region: str) -> bool:
    """False only when parse(candidate, region) cannot give a valid number (the matcher asks this of the
    candidate and of each inner match it tries, one string at a time).

    Why this is exact: without '+' or letters, parse() reads the digits only, and with the default region's
    calling code the NSN is what is left once a national prefix, a carrier code or the calling code is taken
    off the front (`_Region.nsns`). The one way to another calling code, an international dialling prefix at
    the start, is left to parse()."""
    if not _SIMPLE_RE.fullmatch(candidate):
        return True
    return _digits_may_be_valid(candidate.translate(_SEPARATORS), region)


@functools.lru_cache(maxsize=16384)  # accepted() and then the matcher ask about the same digits
def _digits_may_be_valid(digits: str, region: str) -> bool:
    info = _region(region)
    if not info.usable or info.idd is not None and info.idd.match(digits):
        return True
    if info.whole is not None:
        return info.whole.match(digits) is not None
    assert info.valid is not None
    lengths, valid, _ = info.valid
    try:
        return any(len(nsn) in lengths and valid.match(nsn) is not None for nsn in info.nsns(digits))
    except _Unsure:
        return True


@functools.lru_cache(maxsize=16384)
def _prefix_missing(digits: str, region: str) -> bool:
    """True when the matcher, at leniency VALID, rejects these digits written in `region`'s national format
    for want of the national prefix the region's formatting rules ask for (a French "200 881029" is not
    "0 200 881029"), so that parse() and the validity checks need not run. phonenumbers' own check
    (_is_national_prefix_present_if_required) applies when the calling code came from the region (no '+',
    no international dialling prefix, no calling code at the start), and it then reads the NSN's formatting
    rule and whether a national prefix starts the digits; when neither prefix can be stripped, the NSN is the
    digits themselves."""
    info = _region(region)
    if not info.usable or info.formats is None or info.format_rule is None or info.first_group_only is None:
        return False
    if digits.startswith(info.cc) or info.idd is not None and info.idd.match(digits):
        return False
    if any(prefix is not None and prefix.match(digits) for prefix in (info.prefix, info.main_prefix)):
        return False
    rule = info.format_rule(info.formats, digits)
    if rule is None or not rule.national_prefix_formatting_rule or rule.national_prefix_optional_when_formatting:
        return False
    return not info.first_group_only(rule.national_prefix_formatting_rule)


def _a_part_may_be_valid(runs: list[str], region: str) -> bool:
    """Whether a part of a candidate (its groups of digits `runs`) may be a valid number: the matcher's
    inner matches are pieces cut where a separator is, so their digits are some neighbouring groups. With the
    whole candidate rejected (`_prefix_missing`), the matcher can only accept one of these."""
    for first in range(len(runs)):
        for last in range(first, len(runs)):
            if (first, last) != (0, len(runs) - 1) and _digits_may_be_valid("".join(runs[first:last + 1]), region):
                return True
    return False


def _matcher_helper(name: str) -> Any:
    from phonenumbers import phonenumbermatcher

    return getattr(phonenumbermatcher, name, None)


def candidates(text: str) -> Any:
    """CANDIDATE_RE.finditer(text)."""
    return (_ASCII_CANDIDATE_RE if text.isascii() else CANDIDATE_RE).finditer(text)


def plausible(value: str, before: str, after: str, lead: str) -> bool:
    """phonenumbers is lenient: drop versions (1.2.3.4), epoch-like bare digit runs and digits in paths."""
    if before.endswith(("/", ".", "_", "v", "V", "#", "=")) or after.startswith((".", "/", "_")) and after[1:2].isdigit():
        return False
    if value.startswith("+") or value.startswith("00"):
        return True
    groups = _GROUPS_RE.findall(value)
    if "." in value and not all(2 <= len(g) <= 4 for g in groups):
        return False  # 120.0.6099.109 is a version, 415.555.0137 a phone
    if len(groups) == 1:
        # a bare digit run is a phone only when the words just before say so (presidio's context words)
        lower = lead.lower()
        return any(word in lower for word in PHONE_CONTEXT)
    return True


def _digit_count_ok(candidate: str) -> bool:
    return 7 <= sum(c.isdigit() for c in candidate) <= 17


@functools.lru_cache(maxsize=65536)
def _international_valid(candidate: str) -> bool:
    """A number written in international format ('+' or '00' first) that phonenumbers finds valid: the
    calling code is in the number, so one default region (the US, for its dialling prefix) is enough."""
    phonenumbers = _library()

    if not _digit_count_ok(candidate) or not may_be_valid(candidate, "US"):
        return False
    try:
        number = phonenumbers.parse(candidate, "US")
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


@functools.cache
def _matcher_class() -> Any:
    """phonenumbers' matcher, with the metadata tests in front of each parse (the candidate and its inner
    matches): at leniency VALID a number must be valid and carry the national prefix its region's format
    asks for, so a part that cannot be, or lacks it, is not parsed at all."""
    phonenumbers = _library()

    class Matcher(phonenumbers.PhoneNumberMatcher):  # type: ignore[misc]
        def _parse_and_verify(self, candidate: str, offset: int) -> Any:
            if _SIMPLE_RE.fullmatch(candidate):
                digits = candidate.translate(_SEPARATORS)
                if not _digits_may_be_valid(digits, self.preferred_region) or _prefix_missing(
                        digits, self.preferred_region):
                    return None
            return super()._parse_and_verify(candidate, offset)

    return Matcher if hasattr(Matcher, "_extract_match") else None


@functools.lru_cache(maxsize=16384)
def accepted(candidate: str, window: str, offset: int) -> bool:
    """A number in international format valid for presidio's default regions; one in national format
    accepted by the matcher presidio uses, for one of its default regions, at presidio's leniency: valid,
    national prefix where the region requires one, x-chars, dates, brackets. As presidio runs the matcher
    for every region, a number any region's matcher accepts is accepted (regions the metadata rules out for
    the whole candidate are not asked: their matcher could only accept a part of it). Where the whole lacks
    the national prefix its region asks for and no part of it can be valid either, the matcher's answer is
    known without asking it (an access log's "200 881029" in France).

    `offset`: where the candidate starts in `window` (the text around it, for the matcher's checks on the
    characters before and after)."""
    phonenumbers = _library()

    if candidate.startswith(("+", "00")):
        return _international_valid(candidate)
    if not _digit_count_ok(candidate):
        return False
    matcher_class = _matcher_class()
    simple = _SIMPLE_RE.fullmatch(candidate) is not None
    digits = candidate.translate(_SEPARATORS) if simple else ""
    for region in PHONE_REGIONS:
        if simple and (not _digits_may_be_valid(digits, region) or matcher_class is not None and _prefix_missing(
                digits, region) and not _a_part_may_be_valid(_GROUPS_RE.findall(candidate), region)):
            continue
        if matcher_class is not None:
            # The matcher's own checks on our candidate: the same verdicts as iterating the matcher over the
            # window (which first re-finds candidates with its large pattern, three times slower)
            matcher = matcher_class(window, region, leniency=phonenumbers.Leniency.VALID)
            if matcher._extract_match(candidate, offset) is not None:
                return True
        else:
            matcher = phonenumbers.PhoneNumberMatcher(window, region, leniency=phonenumbers.Leniency.VALID)
            if any(candidate in match.raw_string or match.raw_string in candidate for match in matcher):
                return True
    return False
