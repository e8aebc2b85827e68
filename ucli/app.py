"""The root `halluc` command: global options, core commands, and every plugin's command group."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

import ucli
from ucli import console, plugins

try:  # typer >= 0.2x vendors click and raises its own usage errors
    from typer.exceptions import TyperException as _UsageError
except ImportError:  # older typer: plain click
    from click import ClickException as _UsageError

# Exceptions typer itself reports (usage errors exit 2, --help and Exit carry their own code).
_TYPER_HANDLED = (typer.Exit, typer.Abort, _UsageError)


class HallucGroup(TyperGroup):
    """Maps every exception raised below the root to a one-line message and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _TYPER_HANDLED:
            raise
        except KeyboardInterrupt:
            console.err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            raise typer.Exit(console.report_error(exc)) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"halluc {ucli.__version__}")
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
        obj.rich_markup_mode = None  # one plain help style everywhere (see build_app)
        app.add_typer(obj, name=info.name)
    elif callable(obj):
        app.command(name=info.name)(obj)
    else:
        info.status, info.error = "failed", f"{info.value} is neither a Typer app nor a function"


def build_app() -> typer.Typer:
    from ucli.core_commands import doctor_command, plugins_command

    app = typer.Typer(
        cls=HallucGroup,
        # Plain click help: typer's rich help imports markdown-it and friends (~65 ms per call),
        # which alone would break the startup budget (tests/bench/startup.py).
        rich_markup_mode=None,
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
