import json
import subprocess
import sys
from importlib import metadata

HEAVY = ("torch", "transformers", "zarr", "pandas", "lm_eval", "sklearn")

PROBE = """
import json, sys
from typer.testing import CliRunner
from ucli import plugins
from ucli.app import app
runner = CliRunner()
groups = [[]] + [[p.name] for p in plugins.discover("commands") if p.status == "ok"] + [["plugins"], ["doctor"]]
codes = {" ".join(g) or "halluc": runner.invoke(app, [*g, "--help"]).exit_code for g in groups}
print(json.dumps({"codes": codes, "heavy": [m for m in %r if m in sys.modules]}))
"""


def test_help_everywhere_imports_no_heavy_library():
    res = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,)], capture_output=True, text=True, timeout=120
    )
    out = json.loads(res.stdout)
    assert out["heavy"] == []
    assert set(out["codes"].values()) == {0} and {"halluc", "demo", "plugins", "doctor"} <= set(out["codes"])


def test_version(cli):
    res = cli("--version")
    assert res.exit_code == 0 and res.stdout == f"halluc {metadata.version('halluc')}\n"


def test_help_lists_core_commands_and_plugin_groups(cli):
    res = cli("--help")
    assert res.exit_code == 0
    for name in ("plugins", "doctor", "demo", "--debug", "--version"):
        assert name in res.stdout


def test_usage_errors_exit_2(cli):
    assert cli("no-such-command").exit_code == 2
    assert cli("demo", "--limit", "0").exit_code == 2


def test_bad_input_is_one_line_and_debug_adds_the_traceback(cli, tmp_path):
    missing = tmp_path / "nope.jsonl"
    res = cli("demo", "--questions", missing)
    assert res.exit_code == 2 and res.stderr.strip() == f"error: {missing}: no such file"
    dbg = cli("--debug", "demo", "--questions", missing)
    assert dbg.exit_code == 2 and "Traceback" in dbg.stderr and f"{missing}: no such file" in dbg.stderr


def test_plugins_table_and_json(cli):
    res = cli("plugins")
    assert res.exit_code == 0 and "demo" in res.stdout and "halluc" in res.stdout
    data = json.loads(cli("plugins", "--json").stdout)
    demo = next(p for p in data["plugins"] if p["name"] == "demo")
    assert demo == {
        "kind": "commands",
        "name": "demo",
        "target": "halluc_demo.cli:demo",
        "distribution": "halluc",
        "version": metadata.version("halluc"),
        "first_party": True,
        "status": "ok",
        "error": None,
    }


def test_messages_with_brackets_print_as_written(cli, tmp_path, capsys):
    """Install hints name extras in brackets; rich markup must not eat them (issue 17, item 3)."""
    from ucli import console
    from ucli.errors import BadInput

    missing = tmp_path / "questions[eval].jsonl"
    res = cli("demo", "--questions", missing)
    assert res.exit_code == 2 and res.stderr.strip() == f"error: {missing}: no such file"
    assert console.report_error(BadInput("this backend needs `openai`: pip install 'halluc[api]'")) == 2
    console.warn("pip install 'halluc[eval]' for [bold]lm-eval[/bold]")
    console.out.print(console.table("t[quant]", ["[hub]"], [["halluc[hub]"]]))
    out, err = capsys.readouterr()
    assert "pip install 'halluc[api]'" in err and "'halluc[eval]' for [bold]lm-eval[/bold]" in err
    assert "t[quant]" in out and "[hub]" in out and "halluc[hub]" in out
