import json
import os
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


def test_progress_for_logs_is_plain_periodic_lines(monkeypatch, capsys):
    """stderr is not a terminal (a file, SLURM, CI): count, rate and ETA lines, never a bar (issue 17, item 7)."""
    from ucli import console

    clock = iter([100.0, 102.0, 104.0, 106.0, 108.0, 108.0, 200.0, 201.0, 202.0])
    monkeypatch.setattr(console.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(console.state, "progress_every", 3.0)
    with console.progress("scoring", 4) as advance:
        for _ in range(4):
            advance()
    assert capsys.readouterr().err.splitlines() == [
        "scoring: 2/4 (50%), 0.50/s, elapsed 0:04, ETA 0:04",
        "scoring: 4/4 (100%), 0.50/s, elapsed 0:08, ETA 0:00",
    ]
    monkeypatch.setattr(console.state, "progress_every", 30.0)
    with console.progress("quick", 3) as advance:  # a short run prints nothing
        advance(3)
    assert capsys.readouterr().err == ""


def test_tables_hold_in_80_columns_with_their_key_column_whole(monkeypatch):
    """An ablation row's knobs and an eval cell name are never cut (issue 17, item 8)."""
    import io

    from rich.console import Console

    from halluc_rauq.control_cli import _summary_table
    from ucli import console

    screen = io.StringIO()
    monkeypatch.setitem(
        console._consoles, "out", Console(file=screen, width=80, soft_wrap=True, markup=False)
    )
    s = {"accuracy": 0.5, "coverage": 0.838, "selective_accuracy": 0.552, "wrong": 98, "repair_well_formed": 1.0,
         "trigger_rate": 0.203, "avg_generated_tokens": 12.31, "avg_extra_tokens": 1.25, "avg_latency_s": 0.414}  # fmt: skip
    keys = ["trigger=rauq,threshold_type=learned,repair=cot+abstain,cot_policy=rauq,rollback=2,delimiters=wait",
            "trigger=entropy,threshold_type=learned,repair=abstain"]  # fmt: skip
    _summary_table(dict.fromkeys(keys, s), "ablation: facts/test, 266 samples")
    cell = "postqlora/facts-lora-r16-alpha32/truthfulqa_mc2/seed1234"
    console.out.print(console.table("halluc eval run", ["cell", "status", "seconds", "metrics"],
                                    [(cell, "done", "81.3", "acc 0.4123, acc_norm 0.4301, mc2 0.3811")]))  # fmt: skip
    lines = screen.getvalue().splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in screen.getvalue()
    words = " ".join(lines).split()
    for knob in (
        "trigger=rauq",
        "repair=cot+abstain",
        "cot_policy=rauq",
        "rollback=2",
        "delimiters=wait",
        cell,
    ):
        assert knob in words
    assert "(every row: threshold_type=learned)" in screen.getvalue()  # shared knobs move to the title


def test_long_figure_titles_are_wrapped_inside_the_canvas():
    from ucli.artifacts import fit_titles, new_figure

    fig, ax = new_figure(figsize=(4, 4))
    ax.set_title(
        "SmolLM2-135M-Instruct (smollm2-135m) heads: facts/train, 200 pairs, alpha 0.2, previous token"
    )
    fit_titles(fig)
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()
    box, canvas = ax.title.get_window_extent(renderer), fig.bbox
    assert "\n" in ax.title.get_text() and canvas.x0 <= box.x0 and box.x1 <= canvas.x1


NOISE = """
import logging, sys, warnings
from ucli.app import app
try:
    app(["--debug", "plugins", "--json"] if "--debug" in sys.argv else ["plugins", "--json"], prog_name="halluc")
except SystemExit:
    pass
from tqdm import tqdm
for _ in tqdm(range(3)):
    pass
logging.getLogger("lm_eval.models.huggingface").warning("`pretrained` model kwarg is not of type `str`")
warnings.warn_explicit("`is_gradient_checkpointing` is deprecated", FutureWarning, "/site-packages/transformers/m.py", 9)
"""


def test_library_noise_goes_to_the_debug_log_unless_debug(tmp_path):
    """lm-eval's advice, tqdm bars and transformers' FutureWarnings are not the user's (issue 17, item 9)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TQDM_", "TRANSFORMERS_VERBOSITY"))}
    env["HALLUC_CACHE"] = str(tmp_path)
    quiet = subprocess.run(
        [sys.executable, "-c", NOISE], capture_output=True, text=True, env=env, timeout=120
    )
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    log = (tmp_path / "debug.log").read_text()
    assert "`pretrained` model kwarg" in log and "FutureWarning: `is_gradient_checkpointing`" in log
    loud = subprocess.run([sys.executable, "-c", NOISE, "--debug"], capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip
    assert "3/3" in loud.stderr and "pretrained" in loud.stderr and "is_gradient_checkpointing" in loud.stderr


def test_space_separated_values_get_the_comma_spelling(cli, tmp_path):
    """The old tool's `--capture hidden resid` (issue 17, item 12)."""
    res = cli("trace", "extract", "--capture", "hidden", "resid", "--output", tmp_path / "t")
    assert res.exit_code == 2
    assert "several values of --capture are written with commas: --capture hidden,resid" in res.stderr
    assert "commas" not in cli("trace", "extract", "--output", tmp_path / "t", "--json", "junk").stderr


def test_sizes_never_read_as_zero():
    from ucli.console import human_bytes

    assert [human_bytes(n) for n in (96, 2048, 5 * 2**20 + 2**19, 3 * 2**30)] == [
        "96 B",
        "2.0 KiB",
        "5.5 MiB",
        "3.0 GiB",
    ]
