"""The root `halluc` command: global options, core commands, and every plugin's command group."""

from __future__ import annotations

from typing import Any

import click
import typer
from typer.core import TyperGroup

from ucli import __version__, console, plugins


class HallucGroup(TyperGroup):
    """Maps every exception raised below the root to a one-line message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            console.err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            raise typer.Exit(console.report_error(exc)) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"halluc {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """halluc: calibrate, control, pilot, evaluate, fine-tune, trace, probe and test LLM hallucinations."""
    console.state.debug = debug


def _mount(app: typer.Typer, info: plugins.PluginInfo) -> None:
    obj = info.obj
    if isinstance(obj, typer.Typer):
        app.add_typer(obj, name=info.name)
    elif callable(obj):
        app.command(name=info.name)(obj)
    else:
        info.status, info.error = "failed", f"{info.value} is neither a Typer app nor a function"


def build_app() -> typer.Typer:
    from ucli.core_commands import doctor_command, plugins_command

    app = typer.Typer(
        cls=HallucGroup,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    app.command(name="plugins")(plugins_command)
    app.command(name="doctor")(doctor_command)
    for info in plugins.discover("commands"):
        if info.status == "ok":
            _mount(app, info)
        if info.status == "failed":
            console.warn(f"plugin '{info.name}' ({info.dist} {info.version}) failed to load: {info.error}")
    return app


app = build_app()


def main() -> None:
    app(prog_name="halluc")
