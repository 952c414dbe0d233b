"""Redactor: the library entry point used by `diagkit redact`, `collect` and `packet build`.

One Redactor per run: the same value gets the same pseudonym in every file, place and encoding of
that run. Each input goes structure first (structured.py), then text (text.py), then the leak gate
(gate.py); a RedactionResult is only returned when the gate is satisfied.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
from collections.abc import Callable
from typing import IO, Any

from diagkit.errors import InputFormatError
from diagkit.gcpause import gc_paused
from diagkit.redact import jsonout, phones
from diagkit.redact.gate import Detector, Gate
from diagkit.redact.pseudonym import Pseudonymizer
from diagkit.redact.report import RedactionReport
from diagkit.redact.structured import LineCounts, LineFound, LineIndex, Scrubber
from diagkit.redact.text import TextScanner, load_ner, may_name_people, ner_available

FORMATS = ("auto", "har", "json", "yaml", "xml", "text")
_EXTENSIONS = {".har": "har", ".json": "json", ".jsonl": "text", ".xml": "xml", ".saml": "xml", ".yaml": "yaml",
               ".yml": "yaml", ".txt": "text", ".log": "text", ".md": "text", ".csv": "text", ".pem": "text"}
# HARs from this size up are redacted by a process pool, one worker a core (bench/redact_bench.py
# --workers 1,2 compares): below it, starting the workers costs more than the second core saves.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
TEXT_PARALLEL_MIN_BYTES = 256 * 1024  # text costs far more per byte than a HAR's structure
MAX_WORKERS = 8


class RedactionResult:
    """The redacted copy: `write_to(handle)` streams it (a big HAR is never held twice as text and
    bytes); `data` builds the bytes on first use for callers that want them in memory."""

    def __init__(self, data: bytes | None, format: str, report: RedactionReport,
                 writer: Callable[[IO[bytes]], None] | None = None) -> None:
        self._data = data
        self.format = format
        self.report = report
        self._writer = writer

    @property
    def data(self) -> bytes:
        if self._data is None:
            buffer = io.BytesIO()
            self.write_to(buffer)
            self._data, self._writer = buffer.getvalue(), None
        return self._data

    def write_to(self, handle: IO[bytes]) -> None:
        if self._data is not None or self._writer is None:
            handle.write(self.data)
        else:
            self._writer(handle)


class Redactor:
    """Redacts bytes, text and JSON-like objects with one key, one mapping and one cumulative report."""

    def __init__(self, key: bytes | None = None, *, ner: bool | None = None,
                 detectors: list[Detector] | None = None, workers: int | None = None,
                 locations: bool = True) -> None:
        self._pseudo = Pseudonymizer(key)
        self.ner = ner_available() if ner is None else bool(ner and ner_available())
        self._scanner = TextScanner(self.ner)
        # locations=False: the report counts per rule only (what `diagkit redact` without --report needs)
        self._locations = locations
        self._report = self.new_report()
        self._detectors = detectors  # None = gate.DETECTORS; tests inject extra ones
        self._workers = workers

    def new_report(self) -> RedactionReport:
        return RedactionReport(self._locations)

    @property
    def key(self) -> bytes:
        return self._pseudo.key

    @property
    def mapping(self) -> dict[str, str]:
        return dict(self._pseudo.mapping)

    @property
    def report(self) -> RedactionReport:
        return self._report

    def _scrubber(self, report: RedactionReport, name: str = "<input>") -> Scrubber:
        scrubber = Scrubber(self._pseudo, self._scanner, report)
        scrubber.name = name
        cache = getattr(self, "_string_cache", None)
        if cache is None:
            cache = self._string_cache = scrubber._cache
        scrubber._cache = cache
        return scrubber

    # ------------------------------------------------------------ API

    def redact_text(self, text: str) -> str:
        report = self.new_report()
        out = self._text(text, report, "<text>")
        self._report.merge(report)
        return out

    def redact_obj(self, obj: Any) -> Any:
        report = self.new_report()
        scrubber = self._scrubber(report)
        # the walk shares unchanged subtrees and the gate fixes in place: never touch the caller's object
        out = scrubber.walk(copy.deepcopy(obj), None)
        out = Gate(self._pseudo, report, "<object>", self._detectors).tree(out)
        self._report.merge(report)
        return out

    def redact_bytes(self, data: bytes, *, name: str = "<input>", fmt: str = "auto") -> RedactionResult:
        return self._redact(_Source(data), name, fmt)

    def redact_file(self, path: str, *, name: str | None = None, fmt: str = "auto") -> RedactionResult:
        """As redact_bytes on the file's content ("-": standard input), but a HAR or JSON file's bytes are
        let go once parsed: a big HAR is never held as bytes, text and tree at once."""
        from diagkit.errors import read_input_bytes

        data = read_input_bytes(path, "input")
        source = _Source(data, None if path == "-" else path)
        del data
        return self._redact(source, name or path, fmt)

    def _redact(self, source: _Source, name: str, fmt: str) -> RedactionResult:
        if fmt not in FORMATS:
            raise InputFormatError(f"'{name}': unknown format '{fmt}' (use one of {', '.join(FORMATS)})")
        data = source.data
        assert data is not None
        if fmt == "auto":
            fmt = detect_format(data, name)
        report = self.new_report()
        if fmt in ("har", "json"):
            del data
            out, writer = self._json(source, name, fmt, report)
            report.files.append(name)
            self._report.merge(report)
            return RedactionResult(out, fmt, report, writer)
        if fmt == "yaml":
            out = self._yaml(data, name, report)
        elif fmt == "xml":
            out = self._xml(data, name, report)
        else:
            out = self._text(_decode(data, name), report, name).encode("utf-8")
        report.files.append(name)
        self._report.merge(report)
        return RedactionResult(out, fmt, report)

    # ------------------------------------------------------------ formats

    def _json(self, source: _Source, name: str, fmt: str,
              report: RedactionReport) -> tuple[bytes | None, Callable[[IO[bytes]], None] | None]:
        """(unchanged input, None) or (None, a writer that streams the redacted document, always UTF-8)."""
        data = source.data
        assert data is not None
        size, encoding = len(data), json.detect_encoding(data)
        if fmt == "har":
            from diagkit.collectors.har_file import decode_har_bytes, parse_har_text

            # The HAR reader `diagkit probe har` uses: the same encodings (UTF-8 with or without a BOM,
            # UTF-16/32 with or without one) and the same messages for what is not a HAR.
            text = decode_har_bytes(data, name)
        else:
            text = _decode(data, name)
        del data
        source.release()
        layout = (text[:2000], text.endswith("\n"))
        nonfinite = jsonout.has_nonfinite(text)
        if fmt == "har":
            obj = parse_har_text(text, name)
        else:
            try:
                with gc_paused():
                    obj = json.loads(text)
            except ValueError as exc:
                raise InputFormatError(f"'{name}' is not valid JSON: {exc.msg} at line {exc.lineno} column "
                                       f"{exc.colno}") from None
        del text
        scrubber = self._scrubber(report, name)
        gate = Gate(self._pseudo, report, name, self._detectors)
        indent, trailing_newline = jsonout.indented(layout[0]), layout[1]
        entries = obj["log"]["entries"] if fmt == "har" else None
        workers = self._pool_size()
        if entries and workers > 1 and size >= PARALLEL_MIN_BYTES and len(entries) >= 2 * workers:
            from diagkit.redact import parallel

            # The rest of the HAR first, as one process meets it (HAR keys put the entries last), so that its
            # pseudonyms come first in the map; its report counts only if the pool does the entries.
            head = self.new_report()
            skeleton = Gate(self._pseudo, head, name, self._detectors).tree(
                self._scrubber(head, name).walk({**obj, "log": {**obj["log"], "entries": []}}, None))
            pooled = self._pooled(lambda mine: parallel.redact_entries(self, entries, mine, workers, name, indent,
                                                                       nonfinite))
            if pooled is not None:
                chunks, mine = pooled
                report.merge(head)
                report.merge(mine)
                if not report.total and encoding == "utf-8":
                    return source.original(), None
                slot = skeleton["log"]["entries"]
                return None, lambda handle: jsonout.write_spliced(skeleton, slot, chunks, indent, 3, handle,
                                                                  trailing_newline, nonfinite)
        with gc_paused():
            out = gate.tree(scrubber.walk(obj, None))
        if not report.total and encoding == "utf-8":
            return source.original(), None

        def write(handle: IO[bytes]) -> None:
            handle.write(jsonout.encode(out, indent, nonfinite))
            if trailing_newline:
                handle.write(b"\n")

        return None, write

    def _pooled(self, run: Callable[[RedactionReport], Any]) -> tuple[Any, RedactionReport] | None:
        """(result, its report) of run(report) on every core; None when the work is to be done in this
        process: it cannot fork, or the pool gave up (this process then gives the answer, or the error,
        that a run on one core gives)."""
        from diagkit.redact import parallel

        if not parallel.can_fork():
            return None
        mine = self.new_report()
        try:
            return run(mine), mine
        except parallel.Fallback:
            return None

    def _pool_size(self) -> int:
        if self._workers is not None and self._workers > 0:
            return self._workers
        from diagkit.redact.parallel import available_cores

        return min(available_cores(), MAX_WORKERS)

    def _yaml(self, data: bytes, name: str, report: RedactionReport) -> bytes:
        import yaml

        text = _decode(data, name)
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise InputFormatError(f"'{name}' is not valid YAML{where}") from None
        scrubber = self._scrubber(report)
        gate = Gate(self._pseudo, report, name, self._detectors)
        out_docs = [gate.tree(scrubber.walk(doc, (None, f"doc{i}") if len(docs) > 1 else None))
                    for i, doc in enumerate(docs)]
        if not report.total:
            return data if json.detect_encoding(data) == "utf-8" else text.encode("utf-8")
        return yaml.safe_dump_all(out_docs, sort_keys=False, allow_unicode=True).encode("utf-8")

    def _xml(self, data: bytes, name: str, report: RedactionReport) -> bytes:
        scrubber = self._scrubber(report)
        body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        found: list[str] = []
        out = scrubber.xml(body, found, loc=None, name=f"'{name}'")
        if found:  # locations not recorded inside xml() when loc is None
            for rule in found:
                report.add(rule, "/")
        text = _decode(out, name)
        gated = Gate(self._pseudo, report, name, self._detectors).text(text, escape=True)
        return out if gated == text else gated.encode("utf-8")

    def _text(self, text: str, report: RedactionReport, name: str) -> str:
        scrubber = self._scrubber(report)
        found: list[str] = []
        if "-----BEGIN" in text:
            from diagkit.redact import secrets as S

            text = S.PEM_PRIVATE_RE.sub(lambda m: scrubber._hit("PRIVATE_KEY", m.group(0), "pem_private_key",
                                                                 found), text)
            for rule in found:
                report.add(rule, "text")
        workers = self._pool_size()
        if len(text) >= TEXT_PARALLEL_MIN_BYTES and workers > 1:
            from diagkit.redact import parallel

            if self.ner and may_name_people(text):
                load_ner()  # loaded once, here, and shared with the workers: not once in each of them
            phones.prepare()  # the same for the phone metadata
            pooled = self._pooled(lambda mine: parallel.redact_text(self, text, mine, workers, name))
            if pooled is not None:
                report.merge(pooled[1])
                return pooled[0]
        with gc_paused():
            return self._lines(text, report, name, 0)

    def _lines(self, text: str, report: RedactionReport, name: str, first: int) -> str:
        """Text without PEM blocks, line by line; `first`: the 0-based number of its first line in the input."""
        from diagkit.redact import secrets as S

        scrubber = self._scrubber(report)
        lines = text.split("\n")
        hits: list[tuple[int, str]] = []
        plain: list[int] = []  # lines of prose/log text: redacted together in one pass, much faster
        # lines that may be a secret header, found for a long text by a few passes of str.find over all of it
        # (the index is the text pass's too when every line is prose: needles it shares are looked for once)
        index = LineIndex(text) if len(lines) > 32 else None
        headers = index.lines(S.SECRET_HEADER_HINTS, lower=True) if index is not None else None
        for i, line in enumerate(lines):
            here: list[str] = []
            new = _header_line(scrubber, line, here) if headers is None or i in headers else None
            if new is None:
                stripped = line.strip()
                if len(stripped) < 3:
                    continue
                if " " in stripped and stripped[:1] not in "{[<":
                    plain.append(i)
                    continue
                new = scrubber.string(line, here, prose=True)  # JSON, XML, base64, JWT, URL or form lines
            if here:
                lines[i] = new
                hits.extend((i, rule) for rule in here)
        if plain:
            found = LineFound(index) if report.tracks_locations else LineCounts(index)
            out = scrubber.text("\n".join(lines[i] for i in plain), found, prose=True).split("\n")
            if len(out) == len(plain):
                for j, i in enumerate(plain):
                    lines[i] = out[j]
                if found.tracks:
                    hits.extend((plain[j], rule) for rule, j in zip(found, found.where, strict=True))
                else:
                    hits.extend((0, rule) for rule in found)
            else:  # a replacement took a line break with it: fall back to one line at a time
                for i in plain:
                    here = []
                    lines[i] = scrubber.string(lines[i], here, prose=True)
                    hits.extend((i, rule) for rule in here)
        if report.tracks_locations:
            for i, rule in sorted(hits, key=lambda h: h[0]):
                report.add(rule, f"line {first + i + 1}")
        else:  # counts only: no location strings to build (a dense log has a hit or two on every line)
            report.by_rule.update(rule for _, rule in hits)
        out = "\n".join(lines)
        return Gate(self._pseudo, report, name, self._detectors).text(out, first=first)


class _Source:
    """The input's bytes, which redact_file lets go of once they are parsed. An unchanged input is
    written back as it was: read again, and only if it is still what was redacted."""

    def __init__(self, data: bytes, path: str | None = None) -> None:
        self.data: bytes | None = data
        self.path = path
        self._digest = b""

    def release(self) -> None:
        if self.path is not None and self.data is not None:
            self._digest = hashlib.sha256(self.data).digest()
            self.data = None

    def original(self) -> bytes:
        if self.data is not None:
            return self.data
        from diagkit.errors import RedactionError, read_input_bytes

        assert self.path is not None
        data = read_input_bytes(self.path, "input")
        if hashlib.sha256(data).digest() != self._digest:
            raise RedactionError(f"input '{self.path}' changed while it was being redacted; nothing was written")
        return data


def _header_line(scrubber: Scrubber, line: str, found: list[str]) -> str | None:
    """`Name: value` lines of an HTTP header block, redacted by header meaning."""
    from diagkit.redact import secrets as S

    head, sep, value = line.partition(":")
    name = head.strip().lstrip("<>").strip()
    if not sep or not name or " " in name or len(name) > 64 or not name.replace("-", "").isalnum():
        return None
    if S.header_kind(name) not in ("auth", "cookie", "set-cookie", "secret"):
        return None
    lead = value[: len(value) - len(value.lstrip())]
    return f"{head}{sep}{lead}{scrubber.header(name, value.strip(), found)}"


def _decode(data: bytes, name: str) -> str:
    """Text from UTF-8 (BOM or not), UTF-16/32 (BOM or not, told apart by where the NULs are, as the HAR
    reader does), else Latin-1 so a legacy log is still read."""
    encoding = json.detect_encoding(data)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        if encoding.startswith("utf-8"):
            return data.decode("latin-1")
        raise InputFormatError(f"'{name}' is not valid {encoding.upper()} text") from None


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
