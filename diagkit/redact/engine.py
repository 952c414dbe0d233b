"""Redactor: the library entry point used by `diagkit redact`, `collect` and `packet build`.

The pipeline, top to bottom, for one input:

  engine.Redactor.redact_bytes   detect the format, parse it                       (this file)
  formats.walk / markup / ...    visit every string with its context              (formats.py)
  spread.walk_entries            a big HAR's entries, in slices, in worker processes (spread.py)
  decide.Redaction.value         name rule -> decode -> free text (scan, NER)     (decide.py, decode.py, scan.py, ner.py)
  rules.NAME_RULES/VALUE_RULES   the one table every stage reads                  (rules.py)
  pseudonym.Pseudonymizer        <KIND:hex>, HMAC of the decoded value            (pseudonym.py)
  decide.Redaction.sweep         secrets found and personal words learned under a name, hidden everywhere else
  gate.check                     the output's every decoded form scanned again; a hit -> LeakDetected

One Redactor per run: the same value gets the same pseudonym in every file, place and encoding of that run.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any

from diagkit.errors import InputFormatError
from diagkit.gcpause import gc_paused
from diagkit.redact import decode, formats, gate, jsonout, ner, rules, spread
from diagkit.redact.decide import Ctx, Redaction
from diagkit.redact.pseudonym import Pseudonymizer
from diagkit.redact.report import RedactionReport

FORMATS = ("auto", "har", "json", "yaml", "xml", "text")
_EXTENSIONS = {".har": "har", ".json": "json", ".jsonl": "text", ".xml": "xml", ".saml": "xml", ".yaml": "yaml",
               ".yml": "yaml", ".txt": "text", ".log": "text", ".md": "text", ".csv": "text", ".tsv": "text", ".pem": "text",
               ".env": "text", ".config": "xml", ".html": "xml", ".htm": "xml", ".ini": "text", ".cfg": "text",
               ".conf": "text", ".cnf": "text", ".properties": "text", ".toml": "text", ".tfvars": "text", ".sh": "text",
               ".tfstate": "json"}


def ner_available() -> bool:
    """Whether names and places can be detected (the optional `[ner]` model is installed)."""
    return ner.available()


class RedactionResult:
    """The redacted copy (`data`, in UTF-8; XML keeps its declaration) and what was redacted in it."""

    def __init__(self, data: bytes, format: str, report: RedactionReport) -> None:
        self.data = data
        self.format = format
        self.report = report

    def write_to(self, handle: IO[bytes]) -> None:
        handle.write(self.data)


class Redactor:
    """Redacts bytes, text and JSON-like objects with one key, one mapping and one cumulative report.

    terms: extra words to hide everywhere, case-insensitively (`<TERM:…>`): a company, a project, a host.
    ner: None = use the NER model when installed; False = never. `names_detected` says which it is.
    """

    def __init__(self, key: bytes | None = None, *, ner: bool | None = None, terms: tuple[str, ...] | list[str] = (),
                 locations: bool = True) -> None:
        self._pseudo = Pseudonymizer(key)
        self.names_detected = ner_available() if ner is None else bool(ner and ner_available())
        self._locations = locations
        self._report = self.new_report()
        self._run = Redaction(self._pseudo, self._report, tuple(terms), self.names_detected,
                              walk=formats.walk, document=formats.document)

    def new_report(self) -> RedactionReport:
        return RedactionReport(self._locations, names_detected=self.names_detected)

    @property
    def ner(self) -> bool:
        return self.names_detected

    @property
    def key(self) -> bytes:
        return self._pseudo.key

    @property
    def mapping(self) -> dict[str, str]:
        return dict(self._pseudo.mapping)

    @property
    def report(self) -> RedactionReport:
        return self._report

    # ------------------------------------------------------------ API

    def redact_text(self, text: str) -> str:
        return self._with_report(lambda: self._text(text, "<text>"))

    def redact_obj(self, obj: Any) -> Any:
        return self._with_report(lambda: self._tree(copy.deepcopy(obj), "<object>"))

    def redact_file(self, path: str, *, name: str | None = None, fmt: str = "auto") -> RedactionResult:
        from diagkit.errors import read_input_bytes

        return self.redact_bytes(read_input_bytes(path, "input"), name=name or path, fmt=fmt)

    def redact_bytes(self, data: bytes, *, name: str = "<input>", fmt: str = "auto") -> RedactionResult:
        if fmt not in FORMATS:
            raise InputFormatError(f"'{name}': unknown format '{fmt}' (use one of {', '.join(FORMATS)})")
        kind = binary_kind(data)
        if kind is not None:  # read as Latin-1 it would pass through unread: refused, as nothing in it can be judged
            raise InputFormatError(f"'{name}' is not text but {kind}: diagkit redacts text files (HAR, JSON, YAML, "
                                   f"XML, logs); nothing was written",
                                   hint="extract or decompress it and redact the files inside")
        guessed = fmt == "auto" and os.path.splitext(name)[1].lower() not in _EXTENSIONS
        auto = fmt == "auto"
        if fmt == "auto":
            fmt = detect_format(data, name)
        # held here only: a big HAR's bytes are let go once it is parsed (_document), as they would be a sixth of
        # the memory of its whole run
        source = [data]
        del data
        try:
            try:
                out, report = self._with_report(lambda: self._document(source, name, fmt), keep=True)
            except InputFormatError:
                if fmt not in ("json", "har") or not (guessed or (auto and _json_lines(source[0]))):
                    raise
                # only its first character said JSON (an INI file's "[section]"), or it is JSON Lines named
                # .json (one document a line, each read whole by the text path): read as text instead
                fmt = "text"
                out, report = self._with_report(lambda: self._document(source, name, fmt), keep=True)
        except RecursionError:
            raise InputFormatError(f"'{name}' is nested too deeply to redact; nothing was written") from None
        report.files.append(name)
        self._report.merge(report)
        if not report.total and source and json.detect_encoding(source[0]) == "utf-8" and fmt != "xml":
            out = source[0]  # nothing to hide: the input exactly as it was (a big HAR's is written again)
        return RedactionResult(out, fmt, report)

    # ------------------------------------------------------------ formats

    def _with_report(self, work: Any, keep: bool = False) -> Any:
        report = self.new_report()
        self._run.report = report
        try:
            out = work()
        finally:
            self._run.report = self._report
        if keep:
            return out, report
        self._report.merge(report)
        return out

    def _document(self, source: list[bytes], name: str, fmt: str) -> bytes:
        """source: the input's bytes, in a list emptied when a big HAR is shared with workers."""
        data = source[0]
        if fmt in ("har", "json"):
            text = _decode(data, name, har=fmt == "har")
            del data
            indent, newline = jsonout.indented(text[:2000]), text.endswith("\n")
            nonfinite: list[str] = []  # json.loads reads NaN and Infinity, which orjson would write as null

            def constant(word: str) -> float:
                nonfinite.append(word)
                return float(word)

            with gc_paused():  # a parsed tree has no cycles: collecting while it grows only costs time
                tree = _parse_json(text, name, har=fmt == "har", parse_constant=constant)
                entries = tree["log"]["entries"] if fmt == "har" else None
                spread_entries = entries if spread.worth_it(entries, len(text)) else None
                if spread_entries is not None:
                    source.clear()
                del text
                out = self._tree(tree, name, spread_entries)
            return jsonout.encode(out, indent, bool(nonfinite)) + (b"\n" if newline else b"")
        text = _decode(data, name)
        if fmt == "yaml":
            import yaml

            try:
                docs = list(yaml.safe_load_all(text))
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" at line {mark.line + 1}" if mark is not None else ""
                raise InputFormatError(f"'{name}' is not valid YAML{where}") from None
            out_docs = [self._tree(doc, name) for doc in docs]
            return yaml.safe_dump_all(out_docs, sort_keys=False, allow_unicode=True).encode("utf-8")
        if fmt == "xml":
            ctx = Ctx("")
            try:
                out = formats.markup(self._run, text.lstrip("\ufeff"), ctx, whole_file=True)
            except formats.UnsafeXml:
                raise InputFormatError(f"'{name}' declares a DTD or entities, which diagkit never reads "
                                       f"(XML bombs, external entities); nothing was written") from None
            out = self._run.sweep(out, ctx.where)
            gate.check(_lines(out), name, self._run.terms)
            return out.encode("utf-8")
        if os.path.splitext(name)[1].lower() in (".csv", ".tsv"):  # a sign-in log's export: a column's name
            out = formats.csv_text(self._run, text, Ctx(""))             # is the name of each value below it
            if out is not None:
                out = self._run.sweep(out, "text")
                gate.check(_lines(out), name, self._run.terms, lines=True)
                return out.encode("utf-8")
        return self._text(text, name).encode("utf-8")

    def _tree(self, tree: Any, name: str, entries: list | None = None) -> Any:
        """entries: a big HAR's log.entries, shared with worker processes (spread.py), which gate them."""
        run = self._run
        spread_used = False  # the walk reached the entries and handed them to spread.walk_entries
        tokens: set[int] = set()  # (entries in workers) hashes of the tokens left, where a found secret could be echoed
        if entries is not None:
            def spread_walk(node: list, key: str, here: Ctx) -> list:
                nonlocal spread_used
                spread_used = True
                walked, left = spread.walk_entries(run, node, key, here, name, self._locations)
                tokens.update(left)
                return walked
            run.spread = (entries, spread_walk)
        try:
            out = formats.walk(run, tree, None, Ctx(""))
        finally:
            run.spread = None
        if spread_used and not run.learned:  # the workers hashed their entries' tokens; what lies outside them too
            tokens.update(rules.echo_hashes(text for _, text in gate.strings(out["log"] | {"entries": []})))
        changed: list[tuple[str, str]] = []
        if run.learned or (run.echoes and (not spread_used or any(hash(secret) in tokens for secret in run.echoes))):
            if isinstance(out, str):
                out = run.sweep(out, "")
                changed.append(("", out))
            else:
                _sweep_tree(run, out, "", changed, set())
        if not spread_used:
            gate.check(gate.strings(out), name, run.terms, tree=out)
            return out
        # the entries were gated as they were walked: what lies outside them, and what the sweep changed there
        log = out["log"]
        walked, log["entries"] = log["entries"], []
        outside = list(gate.strings(out))
        log["entries"] = walked
        gate.check(itertools.chain(outside, changed), name, run.terms, tree=out)
        return out

    def _text(self, text: str, name: str) -> str:
        """Text line by line (PEM blocks first, as they span lines); NER looks at the lines in one batch."""
        if "-----BEGIN" in text:
            pem = rules.VALUE_RULES[0]
            text = pem.regex.sub(lambda m: self._run.pseudo(pem.kind, m.group(0), pem.id, Ctx("text")), text)
        lines = text.split("\n")
        # Base64 cut into lines (a SAMLResponse, a certificate) goes whole through the decode stage, in its
        # first line's place (the others are dropped when the text is joined again): a value may span two lines.
        blocks = decode.base64_blocks(lines)
        for start, end in blocks:
            lines[start] = self._run.value(None, "\n".join(lines[start:end]), Ctx(f"line {start + 1}"))
        dumps = decode.hex_dump_blocks(lines)  # curl --trace: the bytes a dump spells, redacted and dumped again
        for start, end in dumps:
            dumped = decode.hex_dump_text(lines[start:end])
            new = self._run.value(None, dumped, Ctx(f"line {start + 1}"))
            lines[start] = "\n".join(lines[start:end]) if new == dumped else decode.hex_dump_rows(new)
        blocks += dumps
        dropped = {i for start, end in blocks for i in range(start + 1, end)}
        done = dropped | {start for start, _ in blocks}
        # Lines that are a document of their own (JSON, markup, base64, a URL) go one by one through the
        # decode stage; the others are scanned as one text (one pass of each rule, not one a line).
        own = [i for i, line in enumerate(lines) if i not in done and line.strip() and _document_line(line)]
        for i in own:
            lines[i] = self._run.value(None, lines[i], Ctx(f"line {i + 1}"))
        own_set = set(own)
        plain = [i for i, line in enumerate(lines) if line.strip() and i not in own_set and i not in done]
        if plain:
            joined = "\n".join(lines[i] for i in plain)
            starts = list(itertools.accumulate((len(lines[i]) + 1 for i in plain[:-1]), initial=0))
            names = None
            if self._run.ner is not None:
                found = self._run.ner.find_many([lines[i] for i in plain])
                names = [(s + starts[j], e + starts[j], kind) for j, spans in enumerate(found) for s, e, kind in spans]
            out = self._run.text(joined, Ctx("text"), names=names,
                                 where=lambda at: f"line {plain[bisect.bisect_right(starts, at) - 1] + 1}")
            if self._run.terms is not None:
                out = self._run.hide_terms(out, Ctx("text"))
            pieces = out.split("\n")
            if len(pieces) != len(plain):  # a replacement took a line break with it: one line at a time
                pieces = [self._run.value(None, lines[i], Ctx(f"line {i + 1}")) for i in plain]
            for i, piece in zip(plain, pieces, strict=True):
                lines[i] = piece
        out_text = "\n".join(line for i, line in enumerate(lines) if i not in dropped)
        out_text = self._run.sweep(out_text, "text")
        gate.check([("", out_text)], name, self._run.terms, lines=True)
        return out_text


_MAGIC = ((b"PK\x03\x04", "a ZIP archive"), (b"PK\x05\x06", "a ZIP archive"), (b"\x1f\x8b", "gzip data"),
          (b"BZh", "bzip2 data"), (b"\xfd7zXZ\x00", "xz data"), (b"7z\xbc\xaf", "a 7-Zip archive"),
          (b"\x28\xb5\x2f\xfd", "zstd data"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
          (b"GIF8", "a GIF image"), (b"%PDF-", "a PDF document"))


def binary_kind(data: bytes) -> str | None:
    """What binary data is ("a ZIP archive"), or None for text: a known signature, or a NUL byte in the first
    64 KB of what is not UTF-16 or UTF-32 (where NUL bytes are part of the text)."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if json.detect_encoding(data).startswith("utf-8") and b"\x00" in data[:65536]:
        return "binary data"
    return None


def _json_lines(data: bytes) -> bool:
    """Whether every line that is not blank is a JSON document of its own, and there are two or more."""
    try:
        lines = [line for line in data.decode("utf-8-sig").splitlines() if line.strip()]
        return len(lines) > 1 and all(isinstance(json.loads(line), (dict, list)) for line in lines)
    except (UnicodeDecodeError, ValueError):
        return False


def _document_line(line: str) -> bool:
    stripped = line.strip()
    return stripped[:1] in "{[<" or (" " not in stripped and len(stripped) >= 16 and decode.unwrap(stripped) is not None)


def _lines(text: str) -> list[tuple[str, str]]:
    return [(f"line {i + 1}", line) for i, line in enumerate(text.split("\n"))]


def _sweep_tree(run: Redaction, node: Any, where: Any, changed: list[tuple[str, str]], kept: set[str]) -> None:
    """Redaction.sweep on every string of a tree, in place; each string it changes is added to `changed`.
    kept: strings the sweep left as they were (a header repeated in every entry is looked at once)."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if value.__class__ is str:
            if value in kept or len(value) < 3:  # no learned word nor found secret is that short
                continue
            new = run.sweep(value, (where, key))
            if new is not value:
                node[key] = new
                changed.append(("", new))
            else:
                kept.add(value)
        elif isinstance(value, (dict, list)):
            _sweep_tree(run, value, (where, key), changed, kept)


def _parse_json(text: str, name: str, har: bool, parse_constant: Callable[[str], Any]) -> Any:
    if har:
        from diagkit.formats.har import parse_har_text

        return parse_har_text(text, name, parse_constant)
    try:
        return json.loads(text, parse_constant=parse_constant)
    except json.JSONDecodeError as exc:
        raise InputFormatError(f"'{name}' is not valid JSON: {exc.msg.removesuffix(' at')} at line "
                               f"{exc.lineno} column {exc.colno}") from None
    except ValueError:  # the only other ValueError of json.loads: an integer past Python's digit limit
        raise InputFormatError(f"'{name}' holds a number too long to read "
                               f"(over {sys.get_int_max_str_digits()} digits)") from None


def _decode(data: bytes, name: str, har: bool = False) -> str:
    """Text from UTF-8 (BOM or not), UTF-16/32 (BOM or not), else Latin-1 so a legacy log is still read."""
    if har:
        from diagkit.formats.har import decode_har_bytes

        return decode_har_bytes(data, name)
    encoding = json.detect_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        if encoding.startswith("utf-8"):
            return data.decode("latin-1")
        raise InputFormatError(f"'{name}' is not valid {encoding.upper()} text") from None
    return text[1:] if text.startswith("\ufeff") else text


def detect_format(data: bytes, name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    encoding = json.detect_encoding(data)
    head = data[:8192].decode(encoding, "ignore").lstrip("\ufeff \t\r\n")[:2048]
    if head[:1] in ("{", "["):
        return "har" if '"log"' in head and '"entries"' in data[:262144].decode(encoding, "ignore") else "json"
    if head[:1] == "<":
        return "xml"
    return "text"
