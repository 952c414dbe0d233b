"""Signed escalation packets: keys, build, verify, show, extract and encryption (docs/packet-format.md)."""
