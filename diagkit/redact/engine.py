"""Redactor: the library entry point used by `diagkit redact`, `collect` and `packet build`.

One Redactor per run: the same value gets the same pseudonym in every file, place and encoding of
that run. Each input goes structure first (structured.py), then text (text.py), then the leak gate
(gate.py); a RedactionResult is only returned when the gate is satisfied.
"""

from __future__ import annotations

import copy
import io
import json
import os
from collections.abc import Callable
from typing import IO, Any

from diagkit.errors import InputFormatError
from diagkit.redact.gate import Detector, Gate
from diagkit.redact.pseudonym import Pseudonymizer
from diagkit.redact.report import RedactionReport
from diagkit.redact.structured import LineFound, Scrubber
from diagkit.redact.text import TextScanner, ner_available

FORMATS = ("auto", "har", "json", "yaml", "xml", "text")
_EXTENSIONS = {".har": "har", ".json": "json", ".jsonl": "text", ".xml": "xml", ".saml": "xml", ".yaml": "yaml",
               ".yml": "yaml", ".txt": "text", ".log": "text", ".md": "text", ".csv": "text", ".pem": "text"}
# With workers=N > 1, HARs above this size are redacted by a process pool (bench/redact_bench.py --workers).
PARALLEL_MIN_BYTES = 32 * 1024 * 1024


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
                 detectors: list[Detector] | None = None, workers: int | None = None) -> None:
        self._pseudo = Pseudonymizer(key)
        self.ner = ner_available() if ner is None else bool(ner and ner_available())
        self._scanner = TextScanner(self.ner)
        self._report = RedactionReport()
        self._detectors = detectors  # None = gate.DETECTORS; tests inject extra ones
        self._workers = workers

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
        report = RedactionReport()
        out = self._text(text, report, "<text>")
        self._report.merge(report)
        return out

    def redact_obj(self, obj: Any) -> Any:
        report = RedactionReport()
        scrubber = self._scrubber(report)
        # the walk shares unchanged subtrees and the gate fixes in place: never touch the caller's object
        out = scrubber.walk(copy.deepcopy(obj), None)
        out = Gate(self._pseudo, report, "<object>", self._detectors).tree(out)
        self._report.merge(report)
        return out

    def redact_bytes(self, data: bytes, *, name: str = "<input>", fmt: str = "auto") -> RedactionResult:
        if fmt not in FORMATS:
            raise InputFormatError(f"'{name}': unknown format '{fmt}' (use one of {', '.join(FORMATS)})")
        if fmt == "auto":
            fmt = detect_format(data, name)
        report = RedactionReport()
        if fmt in ("har", "json"):
            out, writer = self._json(data, name, fmt, report)
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

    def _json(self, data: bytes, name: str, fmt: str,
              report: RedactionReport) -> tuple[bytes | None, Callable[[IO[bytes]], None] | None]:
        """(unchanged input, None) or (None, a writer that streams the redacted document, always UTF-8)."""
        encoding = json.detect_encoding(data)
        if fmt == "har":
            from diagkit.collectors.har_file import parse_har_bytes

            # The HAR reader `diagkit probe har` uses: the same encodings (UTF-8 with or without a BOM,
            # UTF-16/32 with or without one) and the same messages for what is not a HAR.
            obj = parse_har_bytes(data, name)
            # Only the layout is needed from the text: its head and whether it ends with a newline.
            layout = (data[:8192].decode(encoding, "ignore")[:2000],
                      data[-8:].decode(encoding, "ignore").endswith("\n"))
        else:
            text = _decode(data, name)
            layout = (text[:2000], text.endswith("\n"))
            try:
                obj = json.loads(text)
            except ValueError as exc:
                raise InputFormatError(f"'{name}' is not valid JSON: {exc.msg} at line {exc.lineno} column "
                                       f"{exc.colno}") from None
            del text
        scrubber = self._scrubber(report, name)
        gate = Gate(self._pseudo, report, name, self._detectors)
        if fmt == "har" and len(data) >= PARALLEL_MIN_BYTES and self._pool_size() > 1:
            from diagkit.redact.parallel import redact_entries

            entries = redact_entries(self, obj["log"]["entries"], report, self._pool_size(), name)
            out = gate.tree(scrubber.walk({**obj, "log": {**obj["log"], "entries": []}}, None))
            out["log"]["entries"] = entries
        else:
            out = gate.tree(scrubber.walk(obj, None))
        if not report.total and encoding == "utf-8":
            return data, None
        return None, lambda handle: _dump_json_like(out, layout, handle)

    def _pool_size(self) -> int:
        # Opt-in only (workers=N): measured with bench/redact_bench.py on 2 cores, a pool of 2 is no faster
        # at 10 MB (pickling entries both ways costs what the second core saves) and doubles peak memory.
        return self._workers or 1

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
        lines = text.split("\n")
        hits: list[tuple[int, str]] = []
        plain: list[int] = []  # lines of prose/log text: redacted together in one pass, much faster
        for i, line in enumerate(lines):
            here: list[str] = []
            new = _header_line(scrubber, line, here)
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
            found = LineFound()
            out = scrubber.text("\n".join(lines[i] for i in plain), found, prose=True).split("\n")
            if len(out) == len(plain):
                for j, i in enumerate(plain):
                    lines[i] = out[j]
                hits.extend((plain[j], rule) for rule, j in zip(found, found.where, strict=True))
            else:  # a replacement took a line break with it: fall back to one line at a time
                for i in plain:
                    here = []
                    lines[i] = scrubber.string(lines[i], here, prose=True)
                    hits.extend((i, rule) for rule in here)
        for i, rule in sorted(hits, key=lambda h: h[0]):
            report.add(rule, f"line {i + 1}")
        out = "\n".join(lines)
        return Gate(self._pseudo, report, name, self._detectors).text(out)


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


def _dump_json_like(obj: Any, layout: tuple[str, bool], handle: IO[bytes]) -> None:
    """Serialise in the original's layout (indented with the same width, or compact), streamed to `handle`."""
    head, trailing_newline = layout
    stripped = head.lstrip("\ufeff")
    first_nl = stripped.find("\n")
    out = io.TextIOWrapper(handle, encoding="utf-8", newline="\n", write_through=False)
    try:
        if 0 <= first_nl < 200:
            after = stripped[first_nl + 1:]
            indent_str = after[: len(after) - len(after.lstrip(" \t"))]
            indent: int | str = "\t" if indent_str.startswith("\t") else (len(indent_str) or 2)
            json.dump(obj, out, ensure_ascii=False, indent=indent)
        else:
            # compact: the C encoder (one string) is several times faster than json.dump's Python one
            out.write(json.dumps(obj, ensure_ascii=False,
                                 separators=(",", ":") if ", " not in stripped[:2000] else None))
        if trailing_newline:
            out.write("\n")
        out.flush()
    finally:
        out.detach()
