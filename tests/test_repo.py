"""Repository hygiene: CI runs the README's test command, the CLI reference is fresh, ruff is clean."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = [x for x in (REPO / ".ci/run").read_text().splitlines() if x.strip()]
    command = ci_lines[-1]
    readme = (REPO / "README.md").read_text()
    assert "python -m pytest" in command
    assert f"\n{command}\n" in readme
    assert "&& halluc demo\n" in readme


def test_cli_reference_is_up_to_date():
    from ucli.docgen import main

    assert main(["--check", str(REPO / "docs/cli.md")]) == 0, "regenerate with: python -m ucli.docgen"


def test_ruff_is_clean():
    for args in (["check", "."], ["format", "--check", "."]):
        res = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr


def test_changelog_has_an_unreleased_section():
    assert "## [Unreleased]" in (REPO / "CHANGELOG.md").read_text()


def test_the_core_imports_no_plugin():
    import re

    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "ucli").rglob("*.py")
        if re.search(r"^\s*(from|import)\s+halluc_", p.read_text(), re.M)
    ]
    assert offenders == []


def test_a_plugin_uses_another_only_through_its_public_names():
    """`from halluc_x import name` with `name` in halluc_x.__all__; never halluc_x.module (issue 18)."""
    import ast
    import importlib

    offenders = []
    for path in (REPO / "plugins").rglob("*.py"):
        own = path.relative_to(REPO / "plugins").parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                modules, names = [node.module or ""], [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                modules, names = [a.name for a in node.names], []
            else:
                continue
            for module in modules:
                package = module.split(".")[0]
                if not package.startswith("halluc_") or package == own:
                    continue
                public = getattr(importlib.import_module(package), "__all__", [])
                if module != package or any(n not in public for n in names):
                    offenders.append(f"{path.relative_to(REPO)}: {module} {names}")
    assert offenders == []
