"""Casework: checklists, answers, the run plan and `collect`, the only place that wires probes, the redactor and the packet builder together."""
