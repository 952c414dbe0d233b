"""Readiness: which answers and evidence an escalation still lacks before it is "ready" (the checklist says
which are required)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diagkit.casework.checklists import Checklist
    from diagkit.casework.plan import SkippedRun


def readiness(checklist: Checklist | None, answers: Mapping[str, Any], files: list[tuple[str, bool]],
              skipped: list[SkippedRun] | None = None) -> dict[str, Any]:
    """Which required answers and evidence are missing; ready only when none are.

    `files` is (file name, came from --har) for every evidence file given.
    """
    if checklist is None:
        return {"ready": True, "score": 100, "missing_answers": [], "missing_evidence": [],
                "skipped_probes": [], "note": "no checklist: nothing was required"}
    missing_answers = [{"name": q.name, "prompt": q.prompt} for q in checklist.questions
                       if q.required and answers.get(q.name) in (None, "")]
    missing_evidence = [{"name": e.name, "title": e.title} for e in checklist.evidence
                        if e.required and not any(e.accepts(name, har) for name, har in files)]
    required = sum(q.required for q in checklist.questions) + sum(e.required for e in checklist.evidence)
    have = required - len(missing_answers) - len(missing_evidence)
    return {
        "ready": not missing_answers and not missing_evidence,
        "score": round(100 * have / required) if required else 100,
        "missing_answers": missing_answers,
        "missing_evidence": missing_evidence,
        "skipped_probes": [s.to_dict() for s in skipped or []],
    }
