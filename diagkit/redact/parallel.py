"""Large HARs on several cores: entries are redacted and gated in worker processes, in order.

Workers share the run's HMAC key, so pseudonyms are identical to a single-process run; their
reports and pseudonym maps are merged back into the parent's. Used above PARALLEL_MIN_BYTES only:
pickling entries to and from workers costs about as much as a JSON round trip.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from diagkit.redact.report import RedactionReport

_ENTRIES_LOC = ((None, "log"), "entries")


def _work(key: bytes, ner: bool, detectors: Any, name: str, start: int,
          entries: list[Any]) -> tuple[list[Any], dict[tuple[str, str], int], dict[str, str]]:
    from diagkit.redact.engine import Redactor
    from diagkit.redact.gate import Gate

    redactor = Redactor(key, ner=ner, detectors=detectors)
    report = RedactionReport()
    scrubber = redactor._scrubber(report)
    gate = Gate(redactor._pseudo, report, name, detectors)
    out = [gate.tree(scrubber.walk(entry, (_ENTRIES_LOC, start + i)), (_ENTRIES_LOC, start + i))
           for i, entry in enumerate(entries)]
    return out, report.by_location, redactor.mapping


def redact_entries(redactor: Any, entries: list[Any], report: RedactionReport, workers: int, name: str) -> list[Any]:
    chunk = max(1, len(entries) // (workers * 4))
    ctx = multiprocessing.get_context("fork")
    result: list[Any] = []
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = [pool.submit(_work, redactor.key, redactor.ner, redactor._detectors, name, i, entries[i:i + chunk])
                   for i in range(0, len(entries), chunk)]
        for future in futures:
            out, by_location, mapping = future.result()
            result.extend(out)
            for (location, rule), count in by_location.items():
                report.add(rule, location, count)
            redactor._pseudo.merge(mapping)
    return result
