"""`diagkit checklist list|show|validate`: browse the shipped checklists and check your own."""

from __future__ import annotations

import sys

import click

from diagkit.cli.common import debug_option, dumps


@click.group(epilog="Examples:\n\n  diagkit checklist list\n\n  diagkit checklist show sso-saml-login-failure\n\n"
                    "  diagkit checklist validate my-checklist.yaml")
def checklist() -> None:
    """List, show and validate checklists (the questions, probes and evidence of one kind of case)."""


@checklist.command("list", epilog="Example:\n\n  diagkit checklist list --json")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@debug_option
def list_checklists(as_json: bool) -> None:
    """List the shipped checklists."""
    from diagkit.casework import checklists

    items = checklists.load_all()
    if as_json:
        click.echo(dumps({"checklists": [{"id": c.id, "title": c.title, "source": c.source,
                                          "questions": len(c.questions), "probes": len(c.probes),
                                          "evidence": len(c.evidence)} for c in items]}))
        return
    width = max((len(c.id) for c in items), default=10)
    for c in items:
        click.echo(f"{c.id:<{width}}  {c.title}")
    click.echo("\nRun: diagkit checklist show NAME   then   diagkit collect --checklist NAME -o packet.zip", err=True)


@checklist.command("show", epilog="Examples:\n\n  diagkit checklist show slow-page-load\n\n"
                                  "  diagkit checklist show ./my-checklist.yaml --json")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the checklist as JSON.")
@debug_option
def show(name: str, as_json: bool) -> None:
    """Show a checklist's questions, probes and evidence. NAME is a shipped id or a file path."""
    from diagkit.casework import checklists

    item = checklists.load(name)
    if as_json:
        click.echo(dumps(item.to_dict()))
        return
    click.echo(render(item))


def render(item: object) -> str:
    from diagkit.casework.checklists import Checklist

    assert isinstance(item, Checklist)
    bold = lambda text: click.style(text, bold=True)  # noqa: E731
    lines = [bold(f"{item.id}: {item.title}"), ""]
    lines.extend("  " + line for line in item.description.splitlines())
    lines += ["", bold("Questions") + "  (* = required for the escalation to be ready)"]
    for q in item.questions:
        flags = "*" if q.required else " "
        kind = q.type + (f": {', '.join(q.choices)}" if q.choices else "")
        extra = "  [hidden, pseudonymised]" if q.sensitive else ""
        lines.append(f" {flags} {q.name} ({kind}){extra}")
        lines.append(f"      {q.prompt}")
        if q.example not in (None, ""):
            lines.append(f"      e.g. {q.example}")
        if q.default not in (None, ""):
            lines.append(f"      default: {q.default}")
    lines += ["", bold("Probes") + "  (run with the answers filled in; skipped when an answer is missing)"]
    for p in item.probes:
        opts = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in p.options.items())
        lines.append(f"   {p.probe} {p.target} {opts}".rstrip() + (f"   # {p.title}" if p.title else ""))
    if not item.probes:
        lines.append("   (none)")
    lines += ["", bold("Evidence") + "  (* = required for ready; --har FILE or --attach FILE)"]
    for e in item.evidence:
        lines.append(f" {'*' if e.required else ' '} {e.name} ({e.kind}): {e.title}")
        lines.extend("      " + line for line in e.instructions.splitlines())
        if e.options:
            opts = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in e.options.items())
            lines.append(f"      analysed with: har FILE {opts}   (an unanswered option is left out)")
    if item.recipient_key:
        lines += ["", bold("Packets are encrypted to: ") + item.recipient_key]
    lines += ["", f"Run: diagkit collect --checklist {item.id} -o packet.zip"]
    return "\n".join(lines)


@checklist.command("validate", epilog="Example:\n\n  diagkit checklist validate checklists/my-case.yaml")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@debug_option
def validate(files: tuple[str, ...], as_json: bool) -> None:
    """Check checklist files against the format; every problem is printed as FILE:LINE: message.

    Exit status 0 when all are valid, 1 otherwise.
    """
    from diagkit.casework import checklists

    report = []
    for path in files:
        problems, data = checklists.validate_text(checklists.read_text(path))
        report.append({"file": path, "valid": not problems,
                       "id": data.get("id") if isinstance(data, dict) else None,
                       "problems": [{"line": p.line, "message": p.message} for p in problems]})
        if as_json:
            continue
        if problems:
            for problem in problems:
                click.echo(problem.format(path), err=True)
        else:
            counts = ", ".join(_plural(len(data.get(key) or []), word)
                               for key, word in (("questions", "question"), ("probes", "probe"),
                                                 ("evidence", "evidence item")))
            click.echo(f"{path}: valid checklist '{data['id']}' ({counts})")
    if as_json:
        click.echo(dumps({"results": report}))
    sys.exit(0 if all(r["valid"] for r in report) else 1)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
