"""diagkit: support diagnostics that end in one signed escalation packet."""

__version__ = "0.1.0"
