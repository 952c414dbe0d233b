"""Replay: run a packet's network probes again from this machine, with the same targets and options.

For an L2 specialist to reproduce what the customer saw (CONTRACT.md `packet replay`). Inputs come
from a verified packet but are still untrusted text: a target or option the packet's redaction
replaced, or a secret the packet never held, is not guessed at. Such a run becomes an `error`
finding saying what it needs, never a run with the wrong input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from diagkit.casework.plan import Run
from diagkit.findings import ProbeResult, Severity
from diagkit.packet.format import REPLACED, UNREACHED
from diagkit.probe import SECRET, Option, Probe
from diagkit.visible import visible


@dataclass
class Plan:
    """What a replay does: one entry per replayable result, in packet order, plus notes for people."""

    items: list[Run | ProbeResult] = field(default_factory=list)  # a Run to do, or an error result instead
    notes: list[str] = field(default_factory=list)

    @property
    def runs(self) -> list[Run]:
        return [item for item in self.items if isinstance(item, Run)]


def _not_run(result: ProbeResult, title: str, detail: str) -> ProbeResult:
    from diagkit import catalogue
    from diagkit.findings import utc_now

    return ProbeResult(probe=result.probe, target=result.target, started_at=utc_now(), duration_ms=0,
                       findings=[catalogue.make("probe.input.missing", title, detail=detail, remediation=(
                           "Give what is missing (see the detail) and replay again, or ask the customer."))],
                       options=dict(result.options or {}))


def _flag(option: Option) -> str:
    return option.cli_flags()[-1]


def _secret_values(option: Option, recorded: list[Any], given: list[str]) -> tuple[list[Any], str | None]:
    """The recorded values with every SECRET filled from `given`, and the first recorded value that
    nothing given fills (None when all are filled).

    A value given for a partly recorded option (e.g. a header) fills the recorded value it would be
    recorded as (`Authorization: <redacted-secret>` takes `Authorization: Bearer ...`)."""
    out, pool = [], list(given)
    for value in recorded:
        text = str(value)
        if SECRET not in text:
            out.append(value)
            continue
        if option.secret is True:
            match = pool[0] if pool else None
        else:
            masker = option.secret if callable(option.secret) else None
            match = next((g for g in pool if masker and masker(g) == text), None)
        if match is None:
            return out, text
        pool.remove(match)
        out.append(match)
    return out, None


def _options(result: ProbeResult, probe: Probe, secrets: Mapping[str, Sequence[str]],
             ca_file: str | None) -> tuple[dict[str, Any] | None, str, str]:
    """Options to replay `result` with, or (None, title, detail) saying why it cannot be replayed."""
    declared = {o.name: o for o in probe.options}
    options: dict[str, Any] = {}
    for name, value in (result.options or {}).items():
        option = declared.get(name)
        if option is None or name == "ca_file":
            # ca_file named a file on the customer's machine; this machine's is --ca-file. An option
            # this version does not declare is passed on for coerce_options to refuse by name.
            if option is None:
                options[name] = value
            continue
        values = list(value) if isinstance(value, list) else [value]
        if any(SECRET in str(v) for v in values):
            filled, missing = _secret_values(option, values, list(secrets.get(name, ())))
            if missing is not None:
                hint = f"--secret '{name.replace('_', '-')}={missing.replace(SECRET, 'VALUE')}'"
                return None, f"Re-run needs the secret {_flag(option)} the customer gave", (
                    f"The customer's run sent {_flag(option)} (a secret, never recorded in the packet); "
                    f"give it to replay this run: {hint}.")
            values = filled
        elif any(isinstance(v, str) and REPLACED.search(v) for v in values):
            return None, f"Re-run needs {_flag(option)}, which the packet's redaction replaced", (
                f"The packet records {_flag(option)} only as a redacted placeholder; ask the customer for the "
                f"value and run `diagkit probe {probe.name}` by hand.")
        options[name] = values if option.multiple else values[0]
    if ca_file and "ca_file" in declared:
        options["ca_file"] = ca_file
    return options, "", ""


def plan(results: Sequence[ProbeResult], *, secrets: Mapping[str, Sequence[str]] | None = None,
         ca_file: str | None = None) -> Plan:
    """Which of a packet's results to run again, and with what; nothing runs here."""
    from diagkit import plugins
    from diagkit.errors import PluginError

    secrets = {k.replace("-", "_"): v for k, v in (secrets or {}).items()}
    out = Plan()
    wanted: set[str] = set()  # options some run recorded as secret: the --secret names that can matter
    for result in results:
        if result.probe == "environment":
            continue  # not a probe: replay measures this machine's clock itself (see replay())
        try:
            probe = plugins.get(result.probe)
        except PluginError:
            out.items.append(Run(result.probe, result.target, dict(result.options or {}), source="packet"))
            continue  # run_one turns "not installed" into an error result naming the probe
        if not probe.network:
            out.notes.append(f"{result.probe} {result.target}: a file probe, not re-run")
            continue
        if REPLACED.search(result.target):
            out.items.append(_not_run(result, "Re-run needs the target, which the packet's redaction replaced",
                                      "The packet records this target only in part (a redacted value or query "
                                      f"string); ask the customer for it and run `diagkit probe {probe.name}` by hand."))
            continue
        if result.options is None:
            out.notes.append(f"{result.probe} {result.target}: the packet does not record this run's options "
                             "(made by an older diagkit); re-run with the probe's defaults")
        elif "ca_file" in result.options and not ca_file:
            out.notes.append(f"{result.probe} {result.target}: the customer trusted an extra CA file; "
                             "pass --ca-file to trust one here")
        wanted.update(k for k, v in (result.options or {}).items() if SECRET in json.dumps(v))
        options, title, detail = _options(result, probe, secrets, ca_file)
        if options is None:
            out.items.append(_not_run(result, title, detail))
        else:
            out.items.append(Run(result.probe, result.target, options, source="packet"))
    out.notes += [f"--secret {name.replace('_', '-')}: no run in the packet used that secret; ignored"
                  for name in secrets if name not in wanted]
    return out


def _unreached_is_error(result: ProbeResult) -> ProbeResult:
    """A target this machine cannot reach is a check that could not run here (`error`), not a verdict
    on the service; the severity the probe gave is kept in the evidence so diff compares like with like."""
    for finding in result.findings:
        if UNREACHED.search(finding.id) and finding.severity is not Severity.ERROR:
            finding.evidence = {**finding.evidence, "replay": {"severity_was": finding.severity.value}}
            finding.severity = Severity.ERROR
    return result


def replay(packet_results: Sequence[ProbeResult], *, timeout: float | None = None, ca_file: str | None = None,
           secrets: Mapping[str, Sequence[str]] | None = None,
           progress: Callable[[str], None] = lambda _line: None) -> tuple[list[ProbeResult], list[str]]:
    """Run the packet's network probes again; returns (results in packet order, notes).

    Never raises for a probe's own failure (casework.runs.run_all turns those into `error` results). When a
    probe was run, this machine's clock is measured like `collect` does, as an `environment` result."""
    from diagkit.casework.runs import environment_facts, run_all

    todo = plan(packet_results, secrets=secrets, ca_file=ca_file)
    done = iter(run_all(todo.runs, timeout, progress))
    results = []
    for item in todo.items:
        if isinstance(item, Run):
            result = _unreached_is_error(next(done))
            result.target = item.target  # as the packet named it, so diff pairs the two runs
            results.append(result)
        else:
            results.append(item)
    if todo.runs:
        _, clock = environment_facts(todo.runs, timeout)
        if clock is not None:
            results.append(clock)
    from diagkit.diagnosis import apply

    apply(results)
    return results, todo.notes


def replay_packet(packet_path: str, *, trusted_keys: Sequence[str] = (), identity: str | None = None,
                  timeout: float | None = None, ca_file: str | None = None,
                  secrets: Mapping[str, Sequence[str]] | None = None,
                  progress: Callable[[str], None] = lambda _line: None,
                  ) -> tuple[dict[str, Any], list[ProbeResult], list[str]]:
    """Verify the packet, replay it; returns the results document, the results and notes fit to print
    (every string from the packet with invisible characters escaped)."""
    from diagkit.errors import read_input_bytes
    from diagkit.packet.verify import verify_packet
    from diagkit.visible import visible_all

    if ca_file:
        read_input_bytes(ca_file, "CA file", limit=16 << 20)  # a bad --ca-file is bad input (exit 1), not 5
    packet = verify_packet(packet_path, trusted_keys=trusted_keys, identity=identity)
    results, notes = replay(packet.results(), timeout=timeout, ca_file=ca_file, secrets=secrets,
                            progress=lambda line: progress(visible(line)))
    document = {"results": [r.to_dict() for r in results]}
    shown = [ProbeResult.from_dict(visible_all(r.to_dict())) for r in results]
    for original, safe in zip(results, shown, strict=True):
        for finding, safe_finding in zip(original.findings, safe.findings, strict=True):
            safe_finding.id = finding.id
    return document, shown, [visible(n) for n in notes]
