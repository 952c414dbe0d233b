"""A collect's answers from every source: the --answers file, --set, the prompts and the questions' defaults.

With a checklist every answer is checked against its question, --set wins over the file, and a name the
checklist does not ask is reported with the closest question it does ask. Without a checklist, answers
are free-form case fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from diagkit.casework.checklists import check_answer
from diagkit.errors import InputError

if TYPE_CHECKING:
    from diagkit.casework.checklists import Checklist


def merge(checklist: Checklist | None, from_file: Mapping[str, Any], from_set: Mapping[str, Any],
          file_source: str) -> tuple[dict[str, Any], list[str]]:
    """Answers from the --answers file and --set (which wins), and the names given that the checklist does not ask."""
    if checklist is None:
        return {k: str(v) for k, v in {**from_file, **from_set}.items() if v not in (None, "")}, []
    answers, unknown = normalise_answers(checklist, from_file, file_source)
    set_answers, unknown_set = normalise_answers(checklist, from_set, "--set")
    answers.update(set_answers)
    return answers, unknown + unknown_set


def unknown_message(checklist: Checklist, names: list[str]) -> str:
    """Names the questions the checklist does have, and the closest one to each name given."""
    import difflib

    questions = [q.name for q in checklist.questions]
    parts = []
    for name in names:
        close = difflib.get_close_matches(name, questions, n=1, cutoff=0.5)
        parts.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    return (f"checklist '{checklist.id}' has no question {', '.join(parts)}; "
            f"its questions are: {', '.join(questions)}")


def add_defaults(checklist: Checklist, answers: dict[str, Any]) -> None:
    """Each unanswered question that has a default gets it, checked like a given answer."""
    for q in checklist.questions:
        if q.name not in answers and q.default not in (None, ""):
            answers[q.name] = check_answer(q, q.default)


def normalise_answers(checklist: Checklist, answers: Mapping[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """Checked answers for known questions, and the names given that the checklist does not ask."""
    checked: dict[str, Any] = {}
    unknown: list[str] = []
    for name, value in answers.items():
        question = checklist.question(name)
        if question is None:
            unknown.append(name)
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            checked[name] = check_answer(question, value)
        except ValueError as exc:
            raise InputError(f"{source}: answer '{name}' {exc}") from None
    return checked, unknown


def read_answers_file(path: str) -> dict[str, Any]:
    import yaml

    from diagkit.errors import InputFormatError, read_input_bytes

    raw = read_input_bytes(path, "answers file", limit=1_000_000)
    try:
        data = yaml.safe_load(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputFormatError(f"answers file '{path}' is not UTF-8 text") from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise InputFormatError(f"answers file '{path}' line {line}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError:
        raise InputFormatError(f"answers file '{path}' is not valid YAML") from None
    if data is None:
        return {}
    if isinstance(data, dict) and isinstance(data.get("answers"), dict):
        data = data["answers"]  # also accept {answers: {...}} so one file can hold more later
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise InputFormatError(f"answers file '{path}' must be a YAML mapping of question name: answer")
    return dict(data)
