"""Casework: checklists, answers, the run plan, the runs, evidence files, redaction and `collect`,
the only place that wires probes, the redactor and the packet builder together."""
