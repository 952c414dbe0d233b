"""The `diagkit` command group: global options, error handling and lazily loaded subcommands.

Subcommand modules are imported only when used, so `diagkit --help` stays instant.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from diagkit import __version__

_SUBCOMMANDS = {
    "probe": ("diagkit.cli.probe", "probe", "Run one diagnostic probe (dns, tls, http, saml, oidc, har...)."),
    "collect": ("diagkit.cli.collect", "collect", "Run a checklist's probes, redact, and write a signed packet."),
    "redact": ("diagkit.cli.redact", "redact", "Write a redacted copy of a HAR, JSON, XML or text file."),
    "packet": ("diagkit.cli.packet", "packet", "Build, verify, show, extract, replay and diff escalation packets."),
    "keys": ("diagkit.cli.keys", "keys", "Generate signing and encryption keys."),
    "checklist": ("diagkit.cli.checklist", "checklist", "List, show and validate checklists."),
    "findings": ("diagkit.cli.findings", "findings", "Show the finding catalogue."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        available = [name for name, (mod, _, _) in _SUBCOMMANDS.items() if importlib.util.find_spec(mod)]
        return sorted(set(super().list_commands(ctx)) | set(available), key=list(_SUBCOMMANDS).index)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _SUBCOMMANDS:
            module_name, attr, _ = _SUBCOMMANDS[cmd_name]
            if importlib.util.find_spec(module_name) is None:
                return None
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above: listing commands must not import them.
        rows = [(name, _SUBCOMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        from diagkit.cli.common import handle_errors

        with handle_errors(debug=_debug_requested(ctx)):
            return super().invoke(ctx)


def _debug_requested(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("DIAGKIT_DEBUG") == "1" or "--debug" in sys.argv


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Examples:\n\n\b\n  diagkit collect --checklist slow-page-load --har session.har -o packet.zip\n"
                    "  diagkit packet show packet.zip\n  diagkit probe tls api.example.com:443")
@click.version_option(__version__, "--version", prog_name="diagkit", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """diagkit: support diagnostics that end in one signed escalation packet.

    Customers run one command at an agent's request; L2 runs the same probes to compare;
    engineers open a signed packet with findings first and evidence second.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if os.environ.get("NO_COLOR"):  # no-color.org: present and not empty means no colour, even on a terminal
        ctx.color = False


def main() -> None:
    cli(prog_name="diagkit")
