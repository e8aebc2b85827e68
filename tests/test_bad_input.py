"""The bad-input corpus: what a careless user typed, and what halluc must answer (issue 28).

Each case is a reproduction from the issue: the wrong input, the one line it must get (exit 2, or
exit 1 for a run that could not finish), and what must be left on disk: nothing half-written, no
file of the user's replaced, no secret anywhere. A fixed rerun must then work without touching a
file by hand.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from ucli.errors import BadInput

SECRET = "sk-ant-XYZ"  # the key: short, and it must still never be shown


def one_line(res, code: int = 2) -> str:
    """The command failed with `code` and said so in one line (the last one on stderr)."""
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == code, res.stderr
    assert lines and lines[-1].startswith("error: "), res.stderr
    return lines[-1]


def leftovers(folder: Path, *keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def write_lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def score_answers(cli, model: Path, given: Path, output: Path, *more):
    """`halluc uq score --generations` on the tiny model, on the CPU."""
    return cli("uq", "score", "--generations", given, "-m", model, "--device", "cpu", "-o", output, *more)


def answers(path: Path, n: int = 4, verdicts: bool = False) -> Path:
    """The first `n` of ANSWERS as a generations file (prompt, completion; with `verdicts`, every
    other one right)."""
    rows = [{"id": i, "prompt": p, "completion": a} for i, p, a in ANSWERS[:n]]
    return write_lines(path, [{**r, "correct": k % 2} for k, r in enumerate(rows)] if verdicts else rows)


ANSWERS = [("a", "Capital of France?", "Paris"), ("b", "2+2?", "5"), ("c", "Capital of Italy?", "Rome"),
           ("d", "Who wrote 1984?", "Austen")]  # fmt: skip


# --- 1. one reading of a verdict -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "verdict"),
    [(1, True), (0, False), (True, True), (False, False), (1.0, True), ("1", True), ("0", False),
     ("true", True), ("False", False), ("YES", True), ("no", False), (" No ", False), ("0.0", False)],
)  # fmt: skip
def test_one_parser_reads_every_spelling_of_a_verdict(value, verdict):
    from ucli.data import parse_verdict

    assert parse_verdict(value, "f.csv:2") is verdict


@pytest.mark.parametrize("value", ["maybe", "2", 2, -1, 0.5, None, [1], "", "t"])
def test_anything_else_is_not_a_verdict(value):
    from ucli.data import parse_verdict

    with pytest.raises(BadInput, match=r"^f\.csv:2: field 'correct': expected a verdict"):
        parse_verdict(value, "f.csv:2")


def test_stats_reads_verdict_words_as_the_one_parser_does(tmp_path):
    from halluc_stats.inputs import parse_value
    from ucli.data import VERDICT_WORDS, parse_verdict

    for word in [*VERDICT_WORDS, "TRUE", "No"]:
        assert parse_value(word, "x", "correct") == float(parse_verdict(word, "x"))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_uq_score_reads_a_zero_verdict_as_wrong(cli, tiny_llama, tmp_path, suffix):
    """The issue's reproduction: a CSV `0` (or JSON "false" / "no") counted as right, silently."""
    verdicts = ["1", "0", "yes", "false"] if suffix == ".csv" else [1, "false", "YES", "no"]
    rows = [dict(zip(("id", "prompt", "completion"), a, strict=True), correct=v) for a, v in zip(ANSWERS, verdicts, strict=True)]  # fmt: skip
    given = tmp_path / f"g{suffix}"
    if suffix == ".csv":
        given.write_text("id,prompt,completion,correct\n" + "".join(f"{r['id']},{r['prompt']},{r['completion']},{r['correct']}\n" for r in rows))  # fmt: skip
    else:
        write_lines(given, rows)
    res = score_answers(cli, tiny_llama, given, tmp_path / "o.jsonl", "--estimators", "msp", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["accuracy"] == 0.5
    scored = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["correct"] for r in scored] == [1, 0, 1, 0]


def test_uq_score_refuses_an_unreadable_verdict_and_leaves_nothing(cli, tiny_llama, tmp_path):
    given = tmp_path / "g.csv"
    given.write_text("id,prompt,completion,correct\na,Capital of France?,Paris,1\nb,2+2?,5,maybe\n")
    res = score_answers(cli, tiny_llama, given, tmp_path / "o.jsonl")
    assert one_line(res) == f"error: {given}:3: field 'correct': expected a verdict (1/0, true/false or yes/no), found 'maybe'"  # fmt: skip
    assert leftovers(tmp_path) == ["g.csv"]


# --- 2. no secret in any message ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[models]]\nname = "claude"\nmodel = "claude-3"\napi_key = "${ANTHROPIC_API_KEY}"\n',
         "models[0].type: Field required"),
        ('[[model]]\nname = "claude"\ntype = "anthropic"\napi_key = "${ANTHROPIC_API_KEY}"\n',
         "unknown key 'model'; did you mean 'models'?"),
        ('[[models]]\nname = "claude"\ntype = "anthropic"\ntemprature = 0.3\napi_key = "${MY_KEY}"\n',
         "unknown key 'models[0].temprature'; did you mean 'temperature'?"),
        ('[[models]]\nname = "claude"\ntype = "anthropic"\ntop_p = "${MY_KEY}"\napi_key = "${MY_KEY}"\n',
         "models[0].top_p: Input should be a valid number"),
    ],
)  # fmt: skip
def test_a_config_error_never_shows_a_key(cli, tmp_path, monkeypatch, toml, message):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("MY_KEY", "k3y!")  # a short key expanded into api_key: a secret by its field
    config = tmp_path / "k.toml"
    config.write_text(toml)
    for command in ("validate", "run"):
        res = cli("pilot", command, "-c", config)
        line = one_line(res)
        assert (
            message in line
            and SECRET not in res.stderr + res.stdout
            and "k3y!" not in res.stderr + res.stdout
        )
    assert leftovers(tmp_path) == ["k.toml"]


def test_an_expanded_secret_is_scrubbed_from_everything_printed_and_the_debug_log(
    tmp_path, monkeypatch, capsys
):
    import logging

    from halluc_pilot.config import load_config
    from ucli import console, secrets

    monkeypatch.setattr(secrets, "REMEMBERED", {})
    monkeypatch.setenv("TEAM_CREDENTIAL", "s3cr")  # short: only remembering it hides it
    monkeypatch.setenv("HALLUC_CACHE", str(tmp_path))
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"prompts_file": "p.jsonl", "models": [
        {"name": "m", "type": "openai", "api_key": "${TEAM_CREDENTIAL}", "base_url": "http://x/${TEAM_CREDENTIAL}"}]}))  # fmt: skip
    load_config(config)
    assert secrets.REMEMBERED == {"s3cr": "TEAM_CREDENTIAL"}
    secrets.remember("x", "DUMMY_KEY")  # a local server's dummy key is too short to hide: texts stay whole
    assert secrets.scrub("x marks the spot") == "x marks the spot"
    monkeypatch.setattr(console.state, "debug", True)
    try:
        raise RuntimeError("the server said: bad key " + "s3" + "cr")
    except RuntimeError as exc:
        assert console.report_error(exc) == 1
    console.warn("retrying with s3cr")
    console.out.print(console.table("stopped", ["model", "why"], [["m", "401: key s3cr refused"]]))
    console.print_json({"stopped": "401: key s3cr refused"})
    out, err = capsys.readouterr()
    assert "s3cr" not in out and out.count("key ${TEAM_CREDENTIAL} refused") == 2
    assert "s3cr" not in err and "bad key ${TEAM_CREDENTIAL}" in err and "Traceback" in err
    assert "run with --debug" not in err  # the hint is for runs without it
    monkeypatch.setattr(console, "_DEBUG_LOG", None)  # a handler of its own, writing under tmp_path
    console._debug_log_handler().emit(logging.LogRecord("httpx", logging.WARNING, "", 0, "GET http://x/%s", ("s3cr",), None))  # fmt: skip
    log = (tmp_path / "debug.log").read_text()
    assert "http://x/${TEAM_CREDENTIAL}" in log and "s3cr" not in log


# --- 3. a failed start leaves nothing, and the fixed rerun just works ---------------------------


def test_a_judge_without_its_model_is_refused_before_the_decode(cli, tiny_llama, tmp_path):
    data = write_lines(tmp_path / "q.jsonl", [{"id": i, "prompt": p, "reference": a} for i, p, a in ANSWERS])
    out = tmp_path / "o.jsonl"
    base = ("uq", "score", "--data", data, "-m", tiny_llama, "--device", "cpu", "-o", out,
            "--estimators", "msp,num_semantic_sets", "--samples", "2", "--max-new-tokens", "4")  # fmt: skip
    line = one_line(cli(*base, "--equivalence", "nli"))
    assert line == "error: --equivalence nli needs --nli-model (e.g. microsoft/deberta-large-mnli)"
    assert leftovers(tmp_path) == ["q.jsonl"]
    fixed = cli(*base, "--equivalence", "exact")  # no --resume, nothing to delete
    assert fixed.exit_code == 0, fixed.stderr
    assert leftovers(tmp_path) == ["o.jsonl", "o.jsonl.meta.json", "q.jsonl"]


@pytest.mark.parametrize(
    ("token_ids", "message"),
    [("12 13", "field 'token_ids': expected a list of token ids (integers >= 0), found '12 13'"),
     ([12, -1], "field 'token_ids': expected a list of token ids"),
     ([12, 10**6], "answer 'b': field 'token_ids': id 1000000 is outside the model's vocabulary")],
)  # fmt: skip
def test_bad_token_ids_are_refused_before_the_first_record(cli, tiny_llama, tmp_path, token_ids, message):
    rows = [json.loads(line) for line in answers(tmp_path / "g.jsonl", 2).read_text().splitlines()]
    rows[1]["token_ids"] = token_ids
    given = write_lines(tmp_path / "g.jsonl", rows)
    assert message in one_line(score_answers(cli, tiny_llama, given, tmp_path / "o.jsonl"))
    assert leftovers(tmp_path) == ["g.jsonl"]
    rows[1]["token_ids"] = [12, 13]
    write_lines(given, rows)
    assert (
        score_answers(cli, tiny_llama, given, tmp_path / "o.jsonl").exit_code == 0
    )  # fixed file, same command


def test_a_missing_backend_sdk_is_refused_before_probe_generate_writes(cli, tiny_llama, tmp_path):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    data = write_lines(tmp_path / "q.jsonl", [{"id": i, "prompt": p, "reference": a} for i, p, a in ANSWERS])
    args = ("probe", "generate", "--data", data, "-m", tiny_llama, "--samples", "2", "--max-new-tokens", "4",
            "-o", tmp_path / "runs.jsonl")  # fmt: skip
    assert one_line(cli(*args, "--backend", "vllm")) == "error: --backend vllm: `vllm` is not installed: pip install 'halluc[vllm]'"  # fmt: skip
    assert leftovers(tmp_path) == ["q.jsonl"]
    assert cli(*args, "--backend", "hf", "--device", "cpu").exit_code == 0


@pytest.mark.parametrize("address", ["not a url", "garbage::::", "http://host:6379"])
def test_a_bad_ray_address_is_refused_before_anything_loads(cli, tmp_path, address):
    config = tmp_path / "p.json"
    config.write_text(json.dumps({"prompts_file": "p.jsonl", "models": [{"name": "m", "type": "hf"}]}))
    (tmp_path / "p.jsonl").write_text('{"id": "a", "prompt": "hi"}\n')
    res = cli(
        "pilot", "run", "-c", config, "-o", tmp_path / "run", "--executor", "ray", "--ray-address", address
    )
    assert (
        one_line(res) == f"error: --ray-address: expected auto, HOST:PORT or ray://HOST:PORT, got {address!r}"
    )
    assert leftovers(tmp_path) == ["p.json", "p.jsonl"]


def test_rays_connection_error_names_our_option(monkeypatch):
    ray = pytest.importorskip("ray")
    from ucli.executor import Executor

    def refuse(**kwargs):
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect "
                              "to by setting `--address` flag or `RAY_ADDRESS` environment variable.")  # fmt: skip

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(BadInput) as caught:
        Executor(kind="ray", ray_address="auto").ray()
    assert str(caught.value).startswith("--ray-address auto: no Ray cluster answers there (Could not find any running Ray instance)")  # fmt: skip
    assert "`--address`" not in str(caught.value)


def test_a_run_folder_is_removed_when_the_run_fails_before_its_first_record(tmp_path):
    from ucli.journal import Journal, removed_unless_started

    run = tmp_path / "run"
    with pytest.raises(RuntimeError), removed_unless_started(run):
        (run / "arrays").mkdir(parents=True)  # what a run makes before its first record
        Journal(run / "journal.jsonl", config={"a": 1})
        raise RuntimeError("the first batch failed")
    assert not run.exists()
    with pytest.raises(RuntimeError), removed_unless_started(run):
        run.mkdir()
        with Journal(run / "journal.jsonl", config={"a": 1}) as journal:
            journal.append({"id": "q1"})
        raise RuntimeError("the second batch failed")
    assert (run / "journal.jsonl").exists()  # work was journaled: kept for --resume
    kept = tmp_path / "mine"
    kept.mkdir()
    with pytest.raises(RuntimeError), removed_unless_started(kept):
        raise RuntimeError("a folder that was there before is never removed")
    assert kept.exists()


def test_a_journal_is_written_only_with_its_first_record(tmp_path):
    from ucli.journal import Journal

    path = tmp_path / "x.journal"
    with Journal(path, config={"a": 1}):
        pass
    assert not path.exists()
    with Journal(path, config={"a": 1}) as journal:
        journal.append({"id": "q1"})
    assert path.read_text().splitlines()[0] == '{"_halluc_journal": {"version": 1, "config": {"a": 1}}}'


def test_every_refusal_of_a_rerun_says_what_to_do(tmp_path):
    from ucli.journal import Journal

    path = tmp_path / "my scores.jsonl.journal"
    with Journal(path, config={"batch_size": 8}) as journal:
        journal.append({"id": "q1"})
    with pytest.raises(BadInput) as again:
        Journal(path, config={"batch_size": 8})
    assert str(again.value).endswith("pass --resume to continue it, or remove it to start over "
                                     f"(rm '{path}')")  # fmt: skip
    with pytest.raises(BadInput) as changed:
        Journal(path, config={"batch_size": 4}, resume=True)
    assert "(changed: batch_size); resume with the first one, run this one in another --output, add --force" in str(changed.value)  # fmt: skip
    with Journal(path, config={"batch_size": 4}, resume=True, force=True) as journal:
        assert journal.done == {"q1"}


def test_a_pilot_that_fails_before_sending_leaves_no_folder(cli, tmp_path, monkeypatch):
    from halluc_pilot import runner

    config = tmp_path / "p.json"
    config.write_text(json.dumps({"prompts_file": "p.jsonl", "models": [
        {"name": "m", "type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "x"}]}))  # fmt: skip
    (tmp_path / "p.jsonl").write_text('{"id": "a", "prompt": "hi"}\n')

    def broken(*args, **kwargs):
        raise RuntimeError("the event loop could not start")

    monkeypatch.setattr(runner, "_run_all", broken)
    assert cli("pilot", "run", "-c", config, "-o", tmp_path / "run").exit_code == 1
    assert leftovers(tmp_path) == ["p.json", "p.jsonl"]


# --- 4. an existing file is kept unless --force -----------------------------------------------


@pytest.fixture
def scores(cli, tiny_llama, tmp_path_factory):
    """A small `uq score` output (and its normalization) to run the report commands on."""
    folder = tmp_path_factory.mktemp("scores")
    out = folder / "s.jsonl"
    given = answers(folder / "g.jsonl", verdicts=True)
    assert score_answers(cli, tiny_llama, given, out, "--estimators", "msp,rauq,perplexity").exit_code == 0
    assert cli("uq", "normalize", out, "--method", "minmax", "-o", folder / "n.json").exit_code == 0
    return out


def _outputs(scores: Path, tiny_llama: Path):
    folder = scores.parent
    calibration = write_lines(
        folder / "cal.jsonl", [{"id": i, "prompt": p, "reference": a} for i, p, a in ANSWERS]
    )
    return {
        "uq report": ("uq", "report", scores, "--n-resamples", "100", "-o"),
        "uq report --plot": ("uq", "report", scores, "--n-resamples", "100", "--plot"),
        "uq normalize": ("uq", "normalize", scores, "-o"),
        "uq apply": ("uq", "apply", scores, "--normalization", folder / "n.json", "-o"),
        "calibrate heads": ("calibrate", "heads", "--calibration", calibration, "-m", tiny_llama, "-o"),
        "stats bootstrap": ("stats", "bootstrap", scores, "--field", "correct", "--n-resamples", "10", "-o"),
    }


@pytest.mark.parametrize("command", ["uq report", "uq report --plot", "uq normalize", "uq apply", "calibrate heads",
                                     "stats bootstrap"])  # fmt: skip
def test_an_existing_output_is_kept_unless_force(cli, scores, tiny_llama, tmp_path, command):
    args = _outputs(scores, tiny_llama)[command]
    target = tmp_path / "mine.json"
    target.write_text("a file of the user's\n")
    line = one_line(cli(*args, target))
    option = "--plot" if "--plot" in command else "--output"
    assert line == f"error: {target}: exists; pass --force to replace it, or choose another {option}"
    assert target.read_text() == "a file of the user's\n"
    assert cli(*args, target, "--force").exit_code == 0
    assert target.read_bytes() != b"a file of the user's\n"


def test_uq_apply_never_replaces_its_own_input_by_accident(cli, scores):
    before = scores.read_bytes()
    args = ("uq", "apply", scores, "--normalization", scores.parent / "n.json", "-o", scores)
    assert "exists; pass --force" in one_line(cli(*args))
    assert scores.read_bytes() == before


def test_every_command_that_writes_a_file_takes_force():
    """The one rule holds everywhere: a command with a file output (--output, --plot) takes --force.
    Folder outputs are never replaced; their commands resume instead."""
    from test_vocabulary import uses

    folders = {"demo", "control eval", "trace extract", "pilot run", "pilot validate", "probe trace",
               "probe build", "probe train", "finetune qlora", "finetune mcq", "eval run"}  # fmt: skip
    lacking = []
    for path, params in uses().items():
        names = {o for p in params for o in p.opts}
        if names & {"--output", "--plot"} and "--force" not in names and path not in folders:
            lacking.append(path)
    assert lacking == []


# --- 5. bad input is exit 2 and one line, before the work -------------------------------------


def test_report_and_apply_name_the_record_that_is_not_a_score(cli, scores, tmp_path):
    normalization = scores.parent / "n.json"
    cases = [({"id": "a", "correct": 1}, "field 'uq' is missing: score the answers with `halluc uq score` first"),
             ({"id": "a", "uq": None, "correct": 1}, "field 'uq': expected every estimator's value"),
             ({"id": "a", "uq": {"msp": "high"}, "correct": 1}, "field 'uq.msp': expected a finite number or null"),
             ({"id": "a", "uq": {"msp": 0.2}, "correct": "maybe"}, "field 'correct': expected a verdict")]  # fmt: skip
    for record, message in cases:
        bad = write_lines(tmp_path / "bad.jsonl", [{"id": "z", "uq": {"msp": 0.1}, "correct": 0}, record])
        for args in (("uq", "report", bad), ("uq", "apply", bad, "--normalization", normalization, "-o", tmp_path / "x.jsonl")):  # fmt: skip
            assert one_line(cli(*args)).startswith(f"error: {bad}:2: {message}")
    assert leftovers(tmp_path) == ["bad.jsonl"]


def test_an_output_that_names_a_folder_is_refused_before_the_work(cli, scores, tmp_path):
    assert one_line(cli("uq", "report", scores, "-o", tmp_path)) == f"error: {tmp_path}: is a folder, expected a file to write (--output)"  # fmt: skip
    assert one_line(cli("uq", "report", scores, "--plot", tmp_path)) == f"error: {tmp_path}: is a folder, expected a file to write (--plot)"  # fmt: skip
    under_a_file = scores.parent / "g.jsonl" / "r.json"
    assert "is a file, not a folder (--output)" in one_line(cli("uq", "report", scores, "-o", under_a_file))


def test_uq_report_errors_name_their_file(cli, tmp_path):
    same = write_lines(tmp_path / "all_right.jsonl", [{"id": str(i), "uq": {"msp": i / 10}, "correct": 1} for i in range(4)])  # fmt: skip
    assert one_line(cli("uq", "report", same, "--reference", "msp")) == f"error: {same}: every one of the 4 answers is right: nothing to detect"  # fmt: skip
    assert one_line(cli("uq", "report", same)) == f"error: --reference: 'rauq' is not among the estimators of {same} (msp)"  # fmt: skip


# --- 6. every table reads back, in every format it is written in -------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_a_table_reads_back_as_it_was_written(tmp_path, suffix):
    from ucli.artifacts import write_table
    from ucli.data import read_records

    rows = [{"id": "a", "n": 3, "x": 0.25, "ok": True, "uq": {"msp": 0.5, "rauq": None}, "ids": [1, 2],
             "text": "a, \"quoted\" [text]", "none": None, "samples": [{"answer": "x", "v": ["entail"]}]},
            {"id": "b", "n": 4, "x": 1.0, "ok": False, "uq": {"msp": 0.1, "rauq": 2.5}, "ids": [],
             "text": "{not json", "none": None, "samples": [{"answer": "y", "v": [0.5]}]}]  # fmt: skip
    path = write_table(tmp_path / f"t{suffix}", rows, "halluc.test")
    assert [r.data for r in read_records(path, "halluc.test")] == rows


def test_a_csv_table_without_its_sidecar_still_gives_its_nested_values(tmp_path):
    from ucli.artifacts import sidecar_path, write_table
    from ucli.data import read_records

    path = write_table(tmp_path / "s.csv", [{"id": "a", "uq": {"msp": 0.5}, "note": "[draft"}], "halluc.test")
    sidecar_path(path).unlink()
    assert read_records(path)[0].data == {"id": "a", "uq": {"msp": 0.5}, "note": "[draft"}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_uq_score_tables_read_back_in_every_command_that_takes_them(cli, tiny_llama, tmp_path, suffix):
    given = answers(tmp_path / "g.jsonl", verdicts=True)
    reports = {}
    for fmt in (".jsonl", suffix):
        out = tmp_path / f"s{fmt}"
        assert (
            score_answers(cli, tiny_llama, given, out, "--estimators", "msp,rauq,perplexity").exit_code == 0
        )
        assert cli("uq", "normalize", out, "-o", tmp_path / f"n{fmt}.json").exit_code == 0
        applied = tmp_path / f"a{fmt}"
        assert (
            cli("uq", "apply", out, "--normalization", tmp_path / f"n{fmt}.json", "-o", applied).exit_code
            == 0
        )
        res = cli("uq", "report", applied, "--n-resamples", "100", "--json")
        assert res.exit_code == 0, res.stderr
        stats = cli("stats", "auroc", out, "--score", "uq.msp", "--label", "correct", "--n-resamples", "10",
                    "--n-permutations", "10", "--json")  # fmt: skip
        assert stats.exit_code == 0, stats.stderr
        reports[fmt] = (json.loads(res.stdout)["estimators"], json.loads(stats.stdout)["groups"][0]["auroc"])
    assert reports[suffix] == reports[".jsonl"]


def test_benchmark_exports_read_back_as_calibration_data_in_every_format(cli, tmp_path):
    from ucli.data import read_prompt_pairs

    pairs = {}
    for suffix in (".jsonl", ".csv", ".parquet"):
        out = tmp_path / f"facts{suffix}"
        assert (
            cli("benchmarks", "export", "facts", "--split", "train", "--limit", "5", "-o", out).exit_code == 0
        )
        pairs[suffix] = read_prompt_pairs(out)
    assert pairs[".csv"] == pairs[".jsonl"] == pairs[".parquet"]
    assert (
        pairs[".csv"][0].metadata["benchmark"] == "facts"
        and pairs[".csv"][0].aliases == pairs[".jsonl"][0].aliases
    )


def test_probe_runs_read_back_in_every_format_probe_entropy_takes(cli, tiny_llama, tmp_path):
    data = write_lines(tmp_path / "q.jsonl", [{"id": i, "prompt": p, "reference": a} for i, p, a in ANSWERS])
    entropies = {}
    for suffix in (".jsonl", ".csv", ".parquet"):
        runs = tmp_path / f"runs{suffix}"
        made = cli("probe", "generate", "--data", data, "-m", tiny_llama, "--device", "cpu", "--samples", "3",
                   "--max-new-tokens", "4", "-o", runs)  # fmt: skip
        assert made.exit_code == 0, made.stderr
        se = tmp_path / f"se{suffix}"
        res = cli("probe", "entropy", "--runs", runs, "--equivalence", "exact", "-o", se, "--json")
        assert res.exit_code == 0, res.stderr
        entropies[suffix] = json.loads(res.stdout)["mean_semantic_entropy"]
    assert entropies[".csv"] == entropies[".parquet"] == entropies[".jsonl"]


# --- 7. a pilot whose requests all failed is not complete ---------------------------------------


def test_an_unreachable_server_leaves_prompts_undone_and_resume_sends_them(cli, tmp_path):
    from halluc_backends.loopback import LoopbackServer

    with socket.socket() as s:  # a port where nothing listens, yet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "p.jsonl").write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": f"q {i}"}) + "\n" for i in range(3))
    )
    config = tmp_path / "p.json"
    config.write_text(json.dumps({"prompts_file": "p.jsonl", "max_retries": 0, "timeout": 2.0, "requests_per_minute": 6000, "models": [
        {"name": "echo", "type": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "api_key": "any-key-123"}]}))  # fmt: skip
    run = tmp_path / "run"
    first = cli("pilot", "run", "-c", config, "-o", run, "--json")
    line = one_line(first, code=1)
    assert line.startswith("error: run incomplete: echo/temp0.0: 3 undone (no connection: APIConnectionError")
    assert json.loads(first.stdout)["complete"] is False
    assert json.loads((run / "summary.json").read_text())["variants"][0]["undone"] == 3
    with LoopbackServer(port=port) as server:
        again = cli("pilot", "run", "-c", config, "-o", run, "--resume", "--json")
        assert again.exit_code == 0, again.stderr
        assert json.loads(again.stdout)["complete"] is True
        assert sorted(server.calls.values()) == [1, 1, 1]  # each prompt answered once


# --- 8. a documented old spelling still works ---------------------------------------------------


def test_eval_run_limit_as_a_share_is_renamed_not_refused(cli, tmp_path):
    import halluc_lmeval.cli  # noqa: F401  (registers its renames)
    from ucli import options

    assert options.rewrite_renamed(["eval", "run", "--limit", "0.1"])[-2:] == ["--limit-fraction", "0.1"]
    assert options.rewrite_renamed(["eval", "run", "--limit=.25"])[-2:] == ["--limit-fraction", ".25"]
    assert options.rewrite_renamed(["eval", "run", "--limit", "20"])[-2:] == ["--limit", "20"]
    res = cli(
        "eval", "run", "-m", "x", "--tasks", "no_such_task_xyz", "--limit", "0.1", "--root", tmp_path / "e"
    )
    assert "`eval run --limit 0.1` is now `--limit-fraction 0.1`" in res.stderr
    assert "integer" not in res.stderr and "unknown lm-eval task 'no_such_task_xyz'" in one_line(res)


# --- 9. messages that say what is wrong --------------------------------------------------------


def test_a_folder_given_as_a_data_file(cli, tiny_llama, tmp_path):
    line = one_line(cli("uq", "score", "--data", tmp_path, "-m", tiny_llama, "-o", tmp_path / "o.jsonl"))
    assert line.startswith(f"error: {tmp_path}: is a folder, expected a data file (.jsonl")


@pytest.mark.parametrize("resume", [False, True])
def test_a_file_given_as_a_run_folder(cli, tmp_path, resume):
    target = tmp_path / "run.txt"
    target.write_text("mine\n")
    args = ["control", "eval", "-b", "facts", "-o", target, "--theta", "1"] + (["--resume"] if resume else [])
    assert one_line(cli(*args)) == f"error: {target}: is a file, expected a run folder (--output)"
    assert target.read_text() == "mine\n"


def test_a_missing_include_path_is_not_an_unknown_task(cli, tmp_path):
    res = cli("eval", "run", "-m", "x", "--tasks", "arc_easy", "--include-path", tmp_path / "nope", "--root", tmp_path)  # fmt: skip
    assert one_line(res) == f"error: --include-path {tmp_path / 'nope'}: no such folder (expected a folder of task YAMLs)"  # fmt: skip


def test_a_benchmark_without_options_says_so(cli, tmp_path):
    res = cli("uq", "score", "-b", "facts", "--steps", "3", "-o", tmp_path / "o.jsonl")
    assert one_line(res) == "error: benchmark 'facts' does not take -B steps (it takes: no options)"


def test_a_byte_order_mark_is_read_past_in_configs(cli, tmp_path):
    (tmp_path / "p.jsonl").write_text('{"id": "a", "prompt": "hi"}\n')
    config = tmp_path / "p.toml"
    config.write_bytes(
        b"\xef\xbb\xbf" + b'prompts_file = "p.jsonl"\n[[models]]\nname = "m"\ntype = "hf"\nmodel = "nope"\n'
    )
    assert "Invalid statement" not in cli("pilot", "validate", "-c", config).stderr
    from halluc_pilot.config import load_config

    assert load_config(config)[0].models[0].name == "m"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--repairs", "foo", "--repairs: unknown repair 'foo' (expected one of abstain, cot"), ("--rollback-modes", "foo", "--rollback-modes: Input"),
     ("--signals", "foo", "--signals: unknown signal 'foo'"), ("--cot-policies", "x", "--cot-policies: Input"),
     ("--rollbacks", "-1", "--rollbacks: Input should be greater than or equal to 0"),
     ("--rollbacks", "x", "--rollbacks: 'x' is not an integer")],
)  # fmt: skip
def test_ablate_errors_name_its_own_plural_options(cli, tmp_path, option, value, message):
    res = cli("control", "ablate", "-b", "facts", "-o", tmp_path / "a.json", "--thetas", "1", "--threshold-types",
              "fixed", option, value)  # fmt: skip
    assert one_line(res).startswith(f"error: {message}")
    assert leftovers(tmp_path) == []


def test_debug_drops_the_hint_to_run_with_debug(cli, tmp_path):
    from ucli import console

    res = cli("--debug", "uq", "report", tmp_path / "none.jsonl")
    console.state.debug = False
    assert res.exit_code == 2 and "Traceback" in res.stderr and "--debug" not in res.stderr.splitlines()[-1]


def test_next_steps_are_shell_quoted(cli, tiny_llama, tmp_path):
    out = tmp_path / "my scores.jsonl"
    res = score_answers(cli, tiny_llama, answers(tmp_path / "g.jsonl", 2), out, "--estimators", "msp")
    assert res.exit_code == 0 and f"next: halluc uq report '{out}'" in res.stdout


def test_samples_is_checked_only_when_an_estimator_samples(cli, tiny_llama, tmp_path):
    given = answers(tmp_path / "g.jsonl", 2)
    sampled = score_answers(cli, tiny_llama, given, tmp_path / "a.jsonl", "--samples", "1", "--estimators", "msp,semantic_entropy")  # fmt: skip
    assert one_line(sampled) == "error: --samples: at least 2 sampled answers are needed to compare, got 1"
    assert score_answers(cli, tiny_llama, given, tmp_path / "b.jsonl", "--samples", "1", "--estimators", "msp").exit_code == 0  # fmt: skip
