"""Built-in probes, one per file; each module exposes `probe` (registered via entry points)."""
