"""Casework: checklists, answers, templates, the run plan, the runs, evidence files, redaction, readiness,
`collect` and `packet replay`: the only place that wires probes, the redactor and the packet code together."""
