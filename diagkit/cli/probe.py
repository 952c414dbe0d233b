"""`diagkit probe NAME TARGET...`: one click command per installed probe plugin, built from its declaration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from diagkit.cli.common import debug_option, dumps, emit_results

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem


class OptionType(click.ParamType):
    """A probe option's values, read by diagkit.probe.convert_value (the reading checklists and `collect
    --probe` get too); help and shell completion are those of the click type for the same declaration
    (INTEGER, [a|aaaa|...])."""

    def __init__(self, option: Any) -> None:
        self.option = option
        self.shown = (click.Choice(option.choices, case_sensitive=False) if option.choices
                      else click.types.convert_type(option.type))
        self.name = self.shown.name

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        return self.shown.get_metavar(param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[CompletionItem]:
        return self.shown.shell_complete(ctx, param, incomplete)

    def to_info_dict(self) -> Any:  # click's ParamTypeInfoDict, the shown type's
        return self.shown.to_info_dict()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from diagkit.probe import convert_value

        try:
            return convert_value(self.option, value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _option_decorator(option: Any) -> click.Option:
    kwargs: dict[str, Any] = {"help": option.help, "multiple": option.multiple}
    if option.is_flag:
        kwargs["is_flag"] = True
        kwargs["default"] = bool(option.default)
    else:
        kwargs["type"] = OptionType(option)
        kwargs["default"] = option.default if not option.multiple else (option.default or ())
        kwargs["show_default"] = option.default is not None and not option.multiple
        if option.metavar:
            kwargs["metavar"] = option.metavar
    return click.Option([*option.cli_flags(), option.name], **kwargs)


def _report_check_errors(results: list[Any]) -> None:
    """A check that could not run is also said on stderr, so scripts and people see it without --json parsing."""
    from diagkit.findings import Severity

    for result in results:
        for finding in result.findings:
            if finding.severity is Severity.ERROR:
                detail = " ".join(finding.detail.split())
                click.echo(f"diagkit: {result.probe} {result.target}: {finding.title}"
                           f"{': ' + detail if detail else ''} [{finding.id}]", err=True)


def build_command(name: str) -> click.Command:
    from diagkit import plugins

    probe = plugins.get(name)

    def callback(targets: tuple[str, ...], as_json: bool, timeout: float | None, **options: Any) -> None:
        from diagkit.context import Context
        from diagkit.runner import run_probe

        root_obj = click.get_current_context().find_root().obj or {}
        debug = bool(root_obj.get("debug"))
        results = []
        for target in targets:
            ctx = Context(timeout=timeout or probe.default_timeout, ca_file=options.get("ca_file"), debug=debug)
            results.append(run_probe(probe, target, options, ctx))
        from diagkit.diagnosis import apply

        apply(results)  # one problem seen through several targets of one host is one cause
        _report_check_errors(results)
        emit_results(results, as_json)

    params: list[click.Parameter] = [
        click.Argument(["targets"], nargs=-1, required=True, metavar=f"{probe.target}..."),
        click.Option(["--json", "as_json"], is_flag=True, help="Print one JSON document (CONTRACT.md shape) and nothing else."),
        click.Option(["--timeout"], type=click.FloatRange(min=0.01), default=None,
                     help=f"Seconds each network operation may take [default: {probe.default_timeout:g}]."),
    ]
    params.extend(_option_decorator(o) for o in probe.options)
    epilog = "Example:\n\n\b\n  " + (probe.example or f"diagkit probe {name} {probe.target}")
    command = click.Command(name, callback=callback, params=params, help=probe.description or probe.summary,
                            short_help=probe.summary, epilog=epilog)
    return debug_option(command)


class ProbeGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        from diagkit import plugins

        return plugins.names()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from diagkit import plugins

        if cmd_name not in plugins.registered():
            return None
        return build_command(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from diagkit import plugins
        from diagkit.errors import PluginError

        rows = []
        for name in plugins.names():
            try:
                rows.append((name, plugins.get(name).summary))
            except PluginError:
                rows.append((name, "(failed to load: run 'diagkit probe --list')"))
        if rows:
            with formatter.section("Probes"):
                formatter.write_dl(rows)


@click.group(cls=ProbeGroup, invoke_without_command=True,
             epilog="Examples:\n\n\b\n  diagkit probe --list\n  diagkit probe tls api.example.com:443 --json")
@click.option("--list", "show_list", is_flag=True, help="List the installed probes and where they come from.")
@click.option("--json", "as_json", is_flag=True, help="With --list: print JSON.")
@click.pass_context
def probe(ctx: click.Context, show_list: bool, as_json: bool) -> None:
    """Run one diagnostic probe against one or more targets."""
    if ctx.invoked_subcommand is not None:
        return
    if not show_list:
        click.echo(ctx.get_help())
        return
    from diagkit import plugins
    from diagkit.errors import PluginError

    rows = []
    for name, reg in plugins.registered().items():
        row: dict[str, Any] = {"name": name, "entry_point": reg.entry_point.value, "distribution": reg.distribution}
        try:
            p = plugins.get(name)
            row.update(summary=p.summary, target=p.target, default_timeout=p.default_timeout,
                       options=["--" + o.name.replace("_", "-") for o in p.options], loaded=True)
        except PluginError as exc:
            row.update(loaded=False, error=exc.message)
        rows.append(row)
    if as_json:
        click.echo(dumps({"probes": rows}))
        return
    for row in rows:
        if row["loaded"]:
            click.echo(f"{row['name']:<14} {row['summary']}  [{row['distribution']}]")
        else:
            click.echo(f"{row['name']:<14} FAILED TO LOAD: {row['error']}")
