"""Redaction of secrets and personal data: structure first, then text, then a leak gate.

The public entry point is diagkit.redact.engine.Redactor (imported lazily so the CLI stays fast).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Redactor", "RedactionReport", "RedactionResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from diagkit.redact import engine, report

        return getattr(engine if name != "RedactionReport" else report, name)
    raise AttributeError(name)
