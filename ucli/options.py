"""Typer options shared by many commands, so every command spells them the same way."""

import typer

JSON = typer.Option(False, "--json", help="Print machine-readable JSON on stdout and nothing else there.")
