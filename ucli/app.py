"""The root `halluc` command: global options, core commands, and every plugin's command group."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

import typer
import typer.main
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
    """Maps every exception raised below the root to a one-line message and an exit code, and
    builds plugin groups on first use: `halluc --help` lists them by their help line, so startup
    does not pay for building every group's options (tests/bench/startup.py). Each app gets its
    own subclass holding its groups (see build_app)."""

    lazy: ClassVar[dict[str, typer.Typer]] = {}
    converted: ClassVar[dict[str, Any]] = {}

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if ctx.parent is None:
            from ucli.options import rewrite_renamed

            args = rewrite_renamed(list(args))  # old option spellings still work, with a notice
            type(self).argv = list(args)  # the command line, for usage hints
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in self.lazy if n not in self.commands)]

    def get_command(self, ctx: Any, name: str) -> Any:
        if name in self.lazy:
            if name not in self.converted:
                group = typer.main.get_group(self.lazy[name])
                group.name = name
                self.converted[name] = group
            return self.converted[name]
        return super().get_command(ctx, name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        try:
            from typer._click.utils import make_default_short_help
        except ImportError:  # older typer: plain click
            from click.utils import make_default_short_help

        limit = formatter.width - 6 - max(len(n) for n in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy and name not in self.converted:
                rows.append((name, make_default_short_help(self.lazy[name].info.help or "", limit)))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: Any) -> Any:
        journals = sys.modules.get("ucli.journal")  # not imported here: startup stays light
        since = len(journals.OPENED) if journals else 0
        try:
            return super().invoke(ctx)
        except _UsageError as exc:
            _hint_comma_lists(exc, getattr(self, "argv", []))
            raise
        except _TYPER_HANDLED:
            raise
        except KeyboardInterrupt:
            from ucli.journal import interrupted_message

            console.err.print(interrupted_message(since))
            raise typer.Exit(130) from None
        except Exception as exc:
            raise typer.Exit(console.report_error(exc)) from None


def _hint_comma_lists(exc: Any, argv: list[str]) -> None:
    """`--capture hidden resid` leaves `resid` as an extra argument: say that several values of one
    option are written with commas, with the corrected spelling."""
    message = getattr(exc, "message", "")
    if "unexpected extra argument" not in message:
        return
    extra = message.rsplit("(", 1)[-1].rstrip(")").split()
    if not extra or extra[0] not in argv:
        return
    i = argv.index(extra[0])
    start = i
    while start > 0 and not argv[start - 1].startswith("-"):
        start -= 1
    if start == 0 or start == i:  # no option before, or the option takes no value
        return
    option, values = argv[start - 1], argv[start : i + len(extra)]
    exc.message = (
        f"{message}: several values of {option} are written with commas: {option} {','.join(values)}"
    )


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
    console.route_warnings(debug)


def _mount(app: typer.Typer, lazy: dict[str, typer.Typer], info: plugins.PluginInfo) -> None:
    obj = info.obj
    if isinstance(obj, typer.Typer):
        obj.rich_markup_mode = None  # one plain help style everywhere (see build_app)
        lazy[info.name] = obj
    elif callable(obj):
        app.command(name=info.name)(obj)
    else:
        info.status, info.error = "failed", f"{info.value} is neither a Typer app nor a function"


def build_app() -> typer.Typer:
    from ucli.core_commands import doctor_command, plugins_command

    lazy: dict[str, typer.Typer] = {}
    app = typer.Typer(
        cls=type("HallucGroup", (HallucGroup,), {"lazy": lazy, "converted": {}}),
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
            _mount(app, lazy, info)
        if info.status == "failed":
            console.warn(f"plugin '{info.name}' ({info.dist} {info.version}) failed to load: {info.error}")
    return app


app = build_app()


def main() -> None:
    app(prog_name="halluc")
