"""Work counted, not timed: how many Python function calls a piece of code makes.

A test that must prove "this does not blow up on big input" runs the code at two sizes and checks that
the count of calls grows no faster than the input. Counts do not depend on the machine's speed or load,
so the check is exact where a stopwatch is not. (It sees Python-level work only: a pathological regex
inside one C call counts as one call; such cases are bounded by input caps that tests check directly.)
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Callable
from typing import Any


def python_calls(fn: Callable[[], Any]) -> int:
    """Python function calls (and generator resumptions) made by fn(), in every thread it starts."""
    counter = itertools.count()  # next() on it is atomic under the GIL: threads can share it

    def profile(_frame: Any, event: str, _arg: Any) -> None:
        if event == "call":
            next(counter)

    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    return next(counter)


def assert_linear(run: Callable[[int], Any], size: int, factor: float = 2.3) -> tuple[int, int]:
    """run(size) then run(2 * size): the second may make at most `factor` times the calls of the first.

    Linear work doubles (2x); quadratic work quadruples (4x). run(size) is called once first, uncounted,
    so one-off work (imports, caches) is not charged to either size.
    """
    run(size)
    small = python_calls(lambda: run(size))
    large = python_calls(lambda: run(2 * size))
    assert small > 0
    assert large <= factor * small, f"{small} calls for size {size}, {large} for {2 * size}: not linear"
    return small, large
