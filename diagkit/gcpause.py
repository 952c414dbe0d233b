"""Pausing Python's cyclic garbage collector while a big acyclic tree is built or walked.

json.loads of a 50 MB HAR makes over a million containers, and every few thousand of them the
collector rescans what exists so far: half of the parse time goes there (and more of a redaction
walk over the result). Parsed JSON and the redactor's copies of it hold no reference cycles, so
nothing is lost by collecting once afterwards instead.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
