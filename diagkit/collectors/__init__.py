"""Built-in probes, a folder per family; each family's probe modules expose `probe` and are registered in
pyproject.toml's `diagkit.probes` entry points, and its finding ids live beside it in `findings.yaml`."""
