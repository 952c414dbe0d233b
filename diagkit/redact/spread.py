"""A big HAR's entries shared with worker processes (concurrent.futures, plain data).

The result is the one-process walk's, entry for entry. The entries are cut into one slice per worker (one
per processor, at most four); each slice goes to a worker as pickled entries and comes back redacted and
gated, with its report, the pseudonyms handed out, the names learned, the secrets found and the tokens left
in it, and this process merges the slices in order. A worker meets no value an earlier slice met, so when
one of its pseudonyms is already another value's (two values sharing a prefix, which one process settles by
lengthening the later one), or when the worker died, that slice is walked again here, where the earlier
slices' pseudonyms are known. The caller then sweeps learned names and found secrets through the whole tree
(found secrets only when one is among the tokens left: the sweep would change nothing otherwise) and gates
every string that sweep changes (engine.Redactor._tree).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import threading
import zlib
from typing import Any

from diagkit.gcpause import gc_paused
from diagkit.redact import formats, gate, ner, rules
from diagkit.redact.decide import Ctx, Redaction
from diagkit.redact.pseudonym import Pseudonymizer
from diagkit.redact.report import RedactionReport, where_str

MIN_ENTRIES = 2000     # below this, starting a worker costs more than it saves
MIN_CHARS = 8_000_000  # nor for a HAR smaller than this
MAX_WORKERS = 4        # each holds a slice and its own memo: memory bounds how many are worth it


def workers() -> int:
    """Processes that may run at once: the CPUs this process may use; 1 where this process cannot fork
    safely. A worker is a fork of this process: it starts at once and never re-imports the caller's main
    module (as a spawned one would). Only Linux forks (macOS's system libraries do not survive a fork),
    and never a process with other threads, as a lock one of them holds would stay held in the child."""
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cpus, MAX_WORKERS)


def worth_it(entries: Any, chars: int) -> bool:
    return isinstance(entries, list) and len(entries) >= MIN_ENTRIES and chars >= MIN_CHARS and workers() > 1


def walk_slice(r: Redaction, items: list, name: str, here: Ctx, start: int, doc: str) -> set[int]:
    """items[j] is entry start + j: walked in place as formats.walk walks a list's items, then gated. Returns
    the hashes of the tokens left in them (rules.echo_hashes), where a secret another slice found could be echoed."""
    for j, item in enumerate(items):
        items[j] = formats.walk(r, item, name, here.at(start + j))
    where = where_str(here.where)  # a leak is named by its place in the whole HAR: log.entries[N]...
    texts = list(gate.strings(items))
    gate.check(texts, doc, r.terms, tree={f"{where}[{start + j}]": item for j, item in enumerate(items)})
    if r.learned:  # names learned: the whole tree is swept anyway (engine.Redactor._tree), the hashes unread
        return set()
    return rules.echo_hashes(text for _, text in texts)  # a worker is a fork: its str hashes are this process's


def _worker(job: tuple) -> tuple:
    """One slice in a worker process: plain data in, plain data out."""
    key, terms, use_ner, locations, blob, name, here, start, doc = job
    pseudo = Pseudonymizer(key)
    r = Redaction(pseudo, RedactionReport(locations, use_ner), terms, use_ner,
                  walk=formats.walk, document=formats.document)
    with gc_paused():  # (unpickling builds as many objects as parsing does)
        items = pickle.loads(zlib.decompress(blob))
        left = walk_slice(r, items, name, here, start, doc)
    return items, r.report, pseudo.mapping, r.learned, r.echoes, r.changes, left


def walk_entries(r: Redaction, entries: list, name: str, here: Ctx, doc: str, locations: bool) -> tuple[list, set[int]]:
    """The entries redacted as formats.walk would, in one slice per worker process: a slice in one piece
    meets its repeated values (headers, cookies, scripts) in one memo. A slice whose worker could not
    start or died (out of memory), or whose pseudonyms clash with an earlier slice's, is walked here.
    Also returns the tokens left in them (walk_slice)."""
    from concurrent.futures import Future, ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    if r.ner is not None:
        ner.load()  # before the fork: every worker has the model without loading it again
    count = workers()
    size = -(-len(entries) // count)
    # a slice as pickled bytes, compressed: what its worker is sent, and all this process keeps of it (the
    # parsed entries are let go, as the workers hold them the while)
    slices = [(start, zlib.compress(pickle.dumps(entries[start:start + size], pickle.HIGHEST_PROTOCOL), 1))
              for start in range(0, len(entries), size)]
    entries.clear()
    pseudo = r.pseudonymizer
    out: list = []
    left: set[int] = set()
    with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork")) as pool:
        futures: list[Future | None] = [None] * len(slices)
        try:
            for k, (start, blob) in enumerate(slices):
                futures[k] = pool.submit(_worker, (pseudo.key, r.term_words, r.ner is not None, locations, blob,
                                                   name, here, start, doc))
        except (OSError, BrokenProcessPool):  # no process could be forked (a limit reached): those slices here
            pass
        for (start, blob), future in zip(slices, futures, strict=True):
            try:
                result = future.result() if future is not None else None
            except BrokenProcessPool:
                result = None
            if result is None or any(pseudo.mapping.get(p, v) != v for p, v in result[2].items()):
                items = pickle.loads(zlib.decompress(blob))
                left |= walk_slice(r, items, name, here, start, doc)  # here, knowing the earlier slices' pseudonyms
                out.extend(items)
                continue
            done, report, mapping, learned, echoes, changes, tokens_left = result
            left |= tokens_left
            pseudo.merge(mapping)
            r.report.merge(report)
            for word in learned:
                r.learned.setdefault(word, word)
            for value, kind in echoes.items():
                r.echoes.setdefault(value, kind)
            r.changes += changes
            out.extend(done)
    return out, left
