"""One vocabulary: an option name means one thing with one type across the whole app (issue 18)."""

from __future__ import annotations

import collections
import re
import typing
from typing import Any

import pytest
import typer
import typer.main

from ucli import options
from ucli.app import app

SHARED = ("--json", "--resume", "--device", "--dtype", "--load-in-4bit", "--load-in-8bit", "--adapter")


def commands(cmd=None, path=()):
    cmd = cmd or typer.main.get_command(app)
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(None):
            sub = cmd.get_command(None, name)
            if sub is not None:
                yield from commands(sub, (*path, name))
    else:
        yield " ".join(path), cmd


def kind(param) -> str:
    """The value type, with Optional and repetition (list[T]) taken off: they do not change the meaning."""
    t = param.type_descriptor.annotation
    args = [a for a in typing.get_args(t) if a is not type(None)]
    while typing.get_origin(t) in (list, typing.Union) or type(t).__name__ == "UnionType":
        t = args[0]
        args = [a for a in typing.get_args(t) if a is not type(None)]
    return getattr(t, "__name__", str(t))


def uses():
    table = collections.defaultdict(list)
    for path, cmd in commands():
        for p in cmd.params:
            if type(p).__name__ == "TyperOption":
                table[path].append(p)
    return table


def test_one_long_option_name_has_one_type_and_a_flag_one_meaning():
    by_name = collections.defaultdict(list)
    for path, params in uses().items():
        for p in params:
            for name in (*p.opts, *p.secondary_opts):
                if name.startswith("--"):
                    by_name[name].append((path, kind(p), p.help if p.is_flag else None))
    problems = []
    for name, rows in sorted(by_name.items()):
        if len({k for _, k, _ in rows}) > 1:
            problems.append(f"{name} has types {sorted({(p, k) for p, k, _ in rows})}")
        if len({h for _, _, h in rows}) > 1:
            problems.append(f"flag {name} has meanings {sorted({(p, h) for p, _, h in rows})}")
    assert problems == []


def test_one_short_flag_stands_for_one_long_name():
    longs = collections.defaultdict(set)
    for params in uses().values():
        for p in params:
            for short in (o for o in p.opts if re.fullmatch(r"-\w", o)):
                longs[short].add(next(o for o in p.opts if o.startswith("--")))
    assert {s: sorted(n) for s, n in longs.items() if len(n) > 1} == {}


def test_shared_options_are_defined_once_in_ucli():
    helps = collections.defaultdict(set)
    for params in uses().values():
        for p in params:
            name = next(o for o in p.opts if o.startswith("--"))
            if name in SHARED:
                helps[name].add(p.help)
    assert {n: sorted(h) for n, h in helps.items() if len(h) > 1} == {}
    from ucli.models import DEFAULT_MODEL

    assert options.DEFAULT_MODEL == DEFAULT_MODEL


@pytest.mark.parametrize(
    ("args", "notice", "new"),
    [
        (
            ["trace", "extract", "--out-dir", "x"],
            "`trace extract --out-dir` is now `--output`",
            ["--output", "x"],
        ),
        (
            ["calibrate", "heads", "-n", "3", "-c", "f"],
            "`calibrate heads -n` is now `--limit`",
            ["--limit", "3", "--calibration", "f"],
        ),
        (["--debug", "control", "ablate", "--rollback=2,3"], "is now `--rollbacks`", ["--rollbacks=2,3"]),
        (
            ["eval", "run", "--batch-size", "auto"],
            "`eval run --batch-size auto` is now `--auto-batch-size`",
            ["--auto-batch-size"],
        ),
        (["eval", "run", "--batch-size", "4"], None, ["--batch-size", "4"]),
    ],
)
def test_old_spellings_still_work_with_a_notice(capsys, args, notice, new):
    import halluc_lmeval.cli  # noqa: F401  (each plugin registers its renames on import)
    import halluc_rauq.cli  # noqa: F401
    import halluc_trace.cli  # noqa: F401

    rewritten = options.rewrite_renamed(args)
    assert rewritten[-len(new) :] == new
    err = capsys.readouterr().err
    assert (notice in err) if notice else err == ""


def test_a_renamed_option_works_end_to_end(cli, tmp_path):
    res = cli("eval", "qualitative", "--pre", "a", "--post", "b", "--root", tmp_path, "--n", 3)
    assert "`eval qualitative --n` is now `--limit`" in res.stderr and "No such option" not in res.stderr


def test_every_command_can_answer_in_json():
    lacking = [path for path, cmd in commands() if not any("--json" in p.opts for p in cmd.params)]
    assert lacking == []


LOAD_KNOBS = {"--device", "--dtype", "--load-in-4bit", "--load-in-8bit", "--adapter"}
# finetune mcq trains a full-precision encoder head from its --model: a quantized or adapted base
# has no meaning there (finetune qlora takes its base and quantization from the recipe)
TRAINS_ITS_MODEL = {"finetune mcq"}


def test_every_model_loading_command_takes_every_load_knob():
    lacking = {}
    for path, params in uses().items():
        names = {o for p in params for o in p.opts}
        if "--model" in names and path not in TRAINS_ITS_MODEL:
            missing = LOAD_KNOBS - names
            if missing:
                lacking[path] = sorted(missing)
    assert lacking == {}


@pytest.mark.parametrize(
    "args",
    [
        ["calibrate", "score", "--data", "x.jsonl", "-o", "s.jsonl"],
        ["control", "eval", "-b", "facts", "-o", "run"],
        ["probe", "trace", "--runs", "r.jsonl", "-o", "h.zarr"],
        ["trace", "extract", "--data", "t.txt"],
        ["demo"],
    ],
)
def test_a_bad_load_knob_is_one_line_naming_its_option(cli, tmp_path, monkeypatch, args):
    """Each command hands its knobs to `LoadOptions`, which refuses a bad one before any work."""
    monkeypatch.chdir(tmp_path)
    res = cli(*args, "--dtype", "float8")
    assert res.exit_code == 2 and "--dtype: unknown dtype 'float8'" in res.stderr, res.stderr


# a command that takes an option of a bundle otherwise, and why
OWN_SPELLING = {("eval run", "adapter")}  # eval run compares several adapters: a repeated --adapter


def test_option_blocks_are_declared_once_as_bundles():
    """The load, executor, benchmark and controller knobs are one `options.Bundle` each: no command
    declares two options of a block itself (one alone, such as `probe entropy --device` for its
    judge, is a shared option), and every bundled command still shows each of its options."""
    import inspect

    from halluc_rauq import control_cli

    blocks = (options.LOAD, options.SCALE_OUT_SLURM, options.BENCHMARK, control_cli.KNOBS)
    problems, bundled = [], 0
    for path, cmd in commands():
        own = list(inspect.signature(inspect.unwrap(cmd.callback)).parameters.values())
        problems += [(path, sorted(b.knobs)) for b in blocks if sum(p.name in b.knobs for p in own) >= 2]
        for p in own:
            if isinstance(p.default, options.Bundle):
                bundled += 1
                assert set(p.default.knobs) <= {q.name for q in cmd.params}, (path, p.name)
    assert problems == [] and bundled >= 25


def test_a_bundle_spreads_its_options_in_place_and_builds_one_value():
    """`@options.bundled`: the bundle's options take its place in the signature, in order, and the
    command gets what the bundle builds; a name that is both the command's and a bundle's is refused."""
    import inspect

    from ucli.errors import BadInput

    pair = options.Bundle(
        lambda a, b: a * 10 + b, a=(int, typer.Option(1, "--a")), b=(int, typer.Option(2, "--b"))
    )

    @options.bundled
    def command(
        first: str = typer.Option("x", "--first"), both: Any = pair, last: bool = typer.Option(False)
    ):
        return first, both, last

    assert list(inspect.signature(command).parameters) == ["first", "a", "b", "last"]
    assert command(first="y", a=3, b=4, last=True) == ("y", 34, True)
    with pytest.raises(TypeError, match="a is its own option and a bundle's"):

        @options.bundled
        def clash(a: int = typer.Option(0, "--a"), both: Any = pair):
            return a

    got = options.BENCHMARK.build(data_file=None, benchmark_option=["steps=4", "max-size=9"])
    assert got == {"steps": "4", "max_size": "9"}
    with pytest.raises(BadInput, match="-B steps=5: steps is given twice"):
        options.BENCHMARK.build(data_file=None, benchmark_option=["steps=4", "steps=5"])
