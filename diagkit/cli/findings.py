"""`diagkit findings list`: the finding catalogue as a table or JSON."""

from __future__ import annotations

import click

from diagkit.cli.common import dumps


@click.group()
def findings() -> None:
    """The finding catalogue: every id diagkit can report."""


@findings.command("list", epilog="Example:\n\n  diagkit findings list --json")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
@click.option("--area", help="Only ids starting with this prefix, e.g. tls or saml.")
def list_findings(as_json: bool, area: str | None) -> None:
    """List every finding id with its severity, meaning and remediation."""
    from diagkit import catalogue, plugins

    plugins.load_all()
    entries = [e for e in catalogue.load().values() if not area or e.id.startswith(area)]
    if as_json:
        click.echo(dumps({"findings": [e.to_dict() for e in entries]}))
        return
    from diagkit.render import severity_label

    for e in entries:
        click.echo(f"{severity_label(e.severity)} {e.id:<40} {e.title}")
