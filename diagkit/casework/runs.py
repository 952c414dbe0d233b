"""Running probe runs: each one bounded and never raising, several at once; and this computer's environment.

A probe's own failure becomes an `error` finding, so the packet is still written.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from diagkit.errors import DiagkitError, InputError, PluginError

if TYPE_CHECKING:
    from diagkit.casework.plan import Run
    from diagkit.findings import ProbeResult

MAX_WORKERS = 8

Progress = Callable[[str], None]


def _error_result(run: Run, finding_id: str, detail: str) -> ProbeResult:
    from diagkit import catalogue
    from diagkit.findings import ProbeResult, utc_now
    from diagkit.runner import shown_target

    return ProbeResult(probe=run.probe, target=shown_target(run.target), started_at=utc_now(), duration_ms=0,
                       findings=[catalogue.make(finding_id, detail=detail)])


def run_one(run: Run, timeout: float | None, debug: bool = False, ca_file: str | None = None) -> ProbeResult:
    """Never raises for the probe's own problems: those become `error` findings, so the packet is still written.

    `ca_file` (collect --ca-file) goes to every probe that takes --ca-file, unless the run names its own."""
    from diagkit import plugins
    from diagkit.context import Context
    from diagkit.probe import coerce_options
    from diagkit.runner import run_probe
    from diagkit.scrub import scrub

    try:
        probe = plugins.get(run.probe)
    except PluginError as exc:
        return _error_result(run, "probe.run.crashed", exc.message)
    given = dict(run.options)
    if ca_file and "ca_file" not in given and any(o.name == "ca_file" for o in probe.options):
        given["ca_file"] = ca_file
    try:
        options = coerce_options(probe, given, f"{run.source} {run.probe}")
    except InputError as exc:
        return _error_result(run, "probe.input.missing", exc.message)
    ctx = Context(timeout=timeout or probe.default_timeout, ca_file=options.get("ca_file"), debug=debug,
                  extra={"record_input_errors": True})
    try:
        return run_probe(probe, run.target, options, ctx)
    except DiagkitError as exc:  # e.g. a bad --ca-file raised while building the context
        return _error_result(run, "probe.input.missing", exc.message)
    except Exception as exc:  # noqa: BLE001 - a crash is a finding, never a lost packet
        return _error_result(run, "probe.run.crashed", scrub(f"{type(exc).__name__}: {exc}"))


def run_all(runs: Sequence[Run], timeout: float | None, progress: Progress, debug: bool = False,
            ca_file: str | None = None) -> list[ProbeResult]:
    """Runs concurrently in a thread pool; each run is bounded by the runner's deadline. Results keep the
    order of `runs` so the packet's findings are in a stable order."""
    if not runs:
        return []
    results: list[ProbeResult | None] = [None] * len(runs)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(runs)),
                                                 thread_name_prefix="collect")
    try:
        futures = {pool.submit(run_one, run, timeout, debug, ca_file): i for i, run in enumerate(runs)}
        done = 0
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            result = future.result()
            results[index] = result
            done += 1
            # result.target already went through runner.shown_target (secrets masked, paths kept)
            progress(f"[{done}/{len(runs)}] {result.probe} {result.target}: "
                     f"{result.worst.value} ({result.duration_ms} ms)")
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [r for r in results if r is not None]


def environment_facts(runs: Sequence[Run], timeout: float | None) -> tuple[dict[str, Any], ProbeResult | None]:
    """Environment facts, plus an `environment` result when the clock offset could be measured."""
    from diagkit import catalogue
    from diagkit.casework import environment
    from diagkit.findings import ProbeResult, utc_now

    facts = environment.gather([r.probe for r in runs])
    clock = None
    urls = [u for u in dict.fromkeys(environment.clock_probe_url(r.probe, r.target) for r in runs) if u]
    for url in urls[:2]:  # two tries at most: an unreachable target must not add many timeouts
        clock = environment.clock_offset(url, min(timeout or 5.0, 5.0))
        if clock:
            break
    if clock is None:
        facts["clock"] = {"measured": False}
        return facts, None
    facts["clock"] = {"measured": True, **clock}
    offset = clock["offset_s"]
    side = "ahead of" if offset > 0 else "behind"
    evidence = {"local_minus_server_s": offset, "source": clock["source"], "resolution_s": 1}
    if abs(offset) > environment.CLOCK_SKEW_LIMIT_S:
        finding = catalogue.make("env.clock.skewed", f"This computer's clock is {abs(offset)} s {side} the server's",
                                 evidence=evidence)
    else:
        finding = catalogue.make("env.clock.ok", f"This computer's clock is within {max(abs(offset), 1)} s "
                                 f"of the server's", evidence=evidence)
    result = ProbeResult(probe="environment", target="this computer", started_at=utc_now(), duration_ms=0,
                         findings=[finding], facts={"clock": facts["clock"], "timezone": facts["timezone"]})
    return facts, result
