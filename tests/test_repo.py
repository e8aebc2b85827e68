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


# The house's floors, lowest first (../shared/ARCHITECTURE.md). An import, lazy or not, goes to a
# lower floor; side by side on one floor, command plugins meet only through artifacts, so the one
# name one may take from another is an artifact's schema (`*_SCHEMA`).
COMMAND_PLUGINS = {"halluc_rauq", "halluc_uq", "halluc_probe", "halluc_pilot", "halluc_lmeval", "halluc_finetune",
                   "halluc_trace"}  # fmt: skip
LAYERS = [
    ("core", {"ucli"}),
    ("libraries", {"halluc_backends", "halluc_benchmarks", "halluc_stats"}),
    ("judges", {"halluc_judges"}),
    ("claims", {"halluc_claims"}),
    ("signals", {"halluc_signals"}),
    ("command plugins", COMMAND_PLUGINS),
    ("composites", {"halluc_demo"}),
]


def _module_imports() -> dict[str, list[tuple[str, str]]]:
    """Each first-party module -> the (module, name) pairs it imports anywhere in its body; a name
    taken from a package's lazy exports resolves to the module that defines it."""
    import ast
    import importlib

    files = [*(REPO / "plugins").rglob("*.py"), *(REPO / "ucli").rglob("*.py")]

    def name_of(path: Path) -> str:
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        parts = parts[1:] if parts[0] == "plugins" else parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name_of(p): p for p in files}
    graph: dict[str, list[tuple[str, str]]] = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, [])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges += [(a.name, "") for a in node.names if a.name in modules]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in modules:
                exports = getattr(importlib.import_module(node.module), "_EXPORTS", {})
                for alias in node.names:
                    if f"{node.module}.{alias.name}" in modules:
                        edges.append((f"{node.module}.{alias.name}", ""))
                    elif alias.name in exports:
                        edges.append((f"{node.module}.{exports[alias.name]}", alias.name))
                    else:
                        edges.append((node.module, alias.name))
    return graph


def test_every_package_stands_on_a_declared_floor():
    packages = {p.name for p in (REPO / "plugins").iterdir() if (p / "__init__.py").is_file()} | {"ucli"}
    placed = [name for _, names in LAYERS for name in names]
    assert sorted(placed) == sorted(packages) and len(placed) == len(set(placed))


def test_imports_only_go_down():
    floor = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}
    wrong = []
    for module, edges in _module_imports().items():
        own = module.split(".")[0]
        for target, name in edges:
            other = target.split(".")[0]
            if other == own or floor[other] < floor[own]:
                continue
            if floor[other] == floor[own] and name.endswith("_SCHEMA"):
                continue  # an artifact's schema: how side-by-side plugins meet
            wrong.append(f"{module} -> {target} {name}".rstrip())
    assert wrong == []


def test_no_module_imports_itself_through_a_circle():
    from graphlib import CycleError, TopologicalSorter

    graph = {
        module: {target for target, _ in edges} - {module} for module, edges in _module_imports().items()
    }
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as err:
        raise AssertionError(f"import circle: {' -> '.join(reversed(err.args[1]))}") from None


def test_no_function_body_is_over_40_lines():
    """A body longer than a screen hides its steps: split it into named ones (issue 29)."""
    import ast

    long = []
    for path in [*(REPO / "ucli").rglob("*.py"), *(REPO / "plugins").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                if (
                    isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and len(body) > 1
                ):
                    body = body[1:]  # the docstring is not the body
                lines = body[-1].end_lineno - body[0].lineno + 1
                if lines > 40:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []
