"""Helpers shared by CLI commands: error handling, JSON output and the exit-code rule."""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from collections.abc import Iterator
from typing import Any

import click

from diagkit.errors import DiagkitError, UsageError
from diagkit.findings import ExitStatus, ProbeResult, exit_status, results_document
from diagkit.scrub import scrub, scrub_message, scrub_traceback

debug_option = click.option("--debug", is_flag=True, expose_value=False, is_eager=True,
                            help="Show tracebacks for errors.",
                            callback=lambda ctx, p, v: ctx.find_root().ensure_object(dict).__setitem__("debug", True)
                            if v else None)


def _print_traceback() -> None:
    # --debug is for bug reports that get pasted into tickets: a token in an exception message or a
    # local variable's repr in a source line must not ride along.
    sys.stderr.write(scrub_traceback(traceback.format_exc()))


def error_line(message: str) -> None:
    click.echo(f"diagkit: {message}", err=True)


@contextlib.contextmanager
def handle_errors(debug: bool) -> Iterator[None]:
    """One line on stderr and exit 1 for every failure; the traceback only with --debug."""
    try:
        yield
    except (click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except UsageError as exc:
        if debug:
            _print_traceback()
        error_line(exc.one_line(scrub_message))
        sys.exit(ExitStatus.USAGE)
    except DiagkitError as exc:
        if debug:
            _print_traceback()
        error_line(exc.one_line(scrub_message))  # last line of defence; messages should not carry secrets
        sys.exit(ExitStatus.ERROR)
    except BrokenPipeError:
        # `diagkit ... | head`: the reader left; not an error (Python docs, "Note on SIGPIPE").
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except click.exceptions.Abort:
        # Ctrl-C or Ctrl-D at a prompt (click turns both into Abort): the same answer as Ctrl-C elsewhere,
        # on a line of its own rather than after the prompt.
        click.echo(err=True)
        interrupted()
    except KeyboardInterrupt:
        interrupted()
    except Exception as exc:  # noqa: BLE001 - the user gets one line, the traceback with --debug
        if debug:
            _print_traceback()
        error_line(f"error[DK999]: internal error: {type(exc).__name__}: {scrub(str(exc))} "
                   "(hint: run again with --debug and report the traceback)")
        sys.exit(ExitStatus.ERROR)


def terms_options(command: Any) -> Any:
    """--redact-term TEXT (repeatable) and --terms FILE, as `redact` and `collect` both take them."""
    command = click.option("--terms", "terms_file", metavar="FILE",
                           help="A file of words to hide, one a line (# starts a comment).")(command)
    return click.option("--redact-term", "terms", multiple=True, metavar="TEXT",
                        help="A word to hide everywhere, case-insensitively (a company, project or host name); "
                             "repeatable.")(command)


def read_terms(terms: tuple[str, ...], terms_file: str | None) -> list[str]:
    """The words --redact-term and --terms FILE name: blank lines and lines starting with # are skipped."""
    from diagkit.errors import read_input_bytes

    words = [t.strip() for t in terms if t.strip()]
    if terms_file:
        data = read_input_bytes(terms_file, "--terms file", limit=1024 * 1024, stdin=False)
        try:
            lines = data.decode("utf-8-sig").splitlines()
        except UnicodeDecodeError:
            from diagkit.errors import InputFormatError

            raise InputFormatError(f"--terms file '{terms_file}' is not UTF-8 text") from None
        words += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return words


def interrupted() -> None:
    error_line("error[DK002]: interrupted; nothing was written")
    sys.exit(ExitStatus.INTERRUPTED)


def key_values(items: tuple[str, ...], param_hint: str) -> dict[str, str]:
    """KEY=VALUE options (repeatable) as a dict; the last of a repeated key wins."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=param_hint)
        pairs[key.strip()] = value
    return pairs


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False)


def emit_results(results: list[ProbeResult], as_json: bool) -> None:
    """Print results and exit with the contract's code for the worst finding."""
    from diagkit.cli.render import render_results

    if as_json:
        click.echo(dumps(results_document(results)))
    else:
        click.echo(render_results(results))
    sys.exit(int(exit_status(results)))
