"""`python -m ucli` runs the halluc CLI."""

from ucli.app import main

main()
