"""Redaction of secrets and personal data: one pipeline, read top to bottom from engine.py's docstring.

The public entry point is diagkit.redact.engine.Redactor (imported lazily so the CLI stays fast):
`Redactor(key, ner=None, terms=(...))`, then redact_bytes / redact_file / redact_obj / redact_text;
`Redactor.names_detected` (and the report's `names_detected`) says whether names are looked for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Redactor", "RedactionReport", "RedactionResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from diagkit.redact import engine, report

        return getattr(engine if name != "RedactionReport" else report, name)
    raise AttributeError(name)
