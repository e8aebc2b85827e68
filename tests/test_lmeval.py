"""`halluc eval run`: lm-eval as a library, checked against lm-eval's own CLI on the same cell."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
TASKS = REPO / "examples" / "tasks"


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)  # the example task YAMLs name their data files from the repository root


def only(folder, pattern):
    found = sorted(Path(folder).glob(pattern))
    assert len(found) == 1, found
    return found[0]


def read_samples(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_halluc_eval_run_equals_the_lm_eval_cli(cli, tiny_llama, tmp_path):
    root = tmp_path / "evals"
    res = cli("eval", "run", "-m", tiny_llama, "--tasks", "halluc_arc_easy_local", "--seeds", 1, "--limit", 8,
              "--include-path", TASKS, "--root", root, "--device", "cpu")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    # lm-eval's advice goes to the debug log (its tqdm bars too: tests/test_cli.py, in a fresh process)
    assert "pretrained" not in res.stderr and "warning: --limit 8: these are drafts" in res.stderr
    cell = root / "drafts" / "baseline" / "halluc_arc_easy_local_seed1_limit8"
    direct = tmp_path / "direct"
    done = subprocess.run(
        [sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args", f"pretrained={tiny_llama}",
         "--tasks", "halluc_arc_easy_local", "--include_path", str(TASKS), "--limit", "8", "--seed", "1",
         "--log_samples", "--output_path", str(direct / "results.json"), "--device", "cpu", "--batch_size", "1"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    ours = json.loads(only(cell, "results_*.json").read_text())["results"]["halluc_arc_easy_local"]
    theirs = json.loads(only(direct, "results_*.json").read_text())["results"]["halluc_arc_easy_local"]
    for key in ("acc,none", "acc_norm,none", "acc_stderr,none", "sample_len"):
        assert ours[key] == theirs[key], key
    a = read_samples(only(cell, "samples_*.jsonl"))
    b = read_samples(only(direct, "samples_*.jsonl"))
    assert [s["doc_hash"] for s in a] == [s["doc_hash"] for s in b] and len(a) == 8
    for x, y in zip(a, b, strict=True):
        lls_x = [float(r[0][0]) for r in x["resps"]]
        lls_y = [float(r[0][0]) for r in y["resps"]]
        assert lls_x == pytest.approx(lls_y, abs=1e-5)


def test_mc2_is_lm_evals_definition(cli, tiny_qwen2, tmp_path):
    from lm_eval.tasks.truthfulqa.utils import process_results_mc2

    root = tmp_path / "evals"
    res = cli("eval", "run", "-m", tiny_qwen2, "--tasks", "halluc_truthfulqa_mc2_local", "--seeds", 0,
              "--include-path", TASKS, "--root", root, "--device", "cpu")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert "pretrained" not in res.stderr  # lm-eval's advice goes to the debug log
    cell = root / "baseline" / "halluc_truthfulqa_mc2_local_seed0_full"
    samples = read_samples(only(cell, "samples_*.jsonl"))
    assert len(samples) == 12
    for s in samples:
        results = [(float(r[0][0]), r[0][1] in (True, "True")) for r in s["resps"]]
        assert s["acc"] == pytest.approx(process_results_mc2(s["doc"], results)["acc"], abs=1e-9)
    mean = json.loads(only(cell, "results_*.json").read_text())["results"]["halluc_truthfulqa_mc2_local"][
        "acc,none"
    ]
    assert mean == pytest.approx(np.mean([s["acc"] for s in samples]), abs=1e-12)


def test_layout_manifest_and_resume(cli, tiny_llama, tmp_path):
    root = tmp_path / "evals"
    args = ["eval", "run", "-m", tiny_llama, "--tasks", "halluc_arc_easy_local", "--seeds", "0,1", "--limit", 4,
            "--include-path", TASKS, "--root", root, "--device", "cpu"]  # fmt: skip
    assert cli(*args).exit_code == 0
    cells = sorted(p.name for p in (root / "drafts" / "baseline").iterdir())
    assert cells == ["halluc_arc_easy_local_seed0_limit4", "halluc_arc_easy_local_seed1_limit4"]
    assert not (root / "baseline").exists()  # drafts never mix with final numbers
    manifest = json.loads((root / "drafts" / "baseline" / cells[0] / "manifest.json").read_text())
    assert manifest["provenance"]["schema"] == "halluc.eval.cell" and manifest["draft"] is True
    assert (manifest["task"], manifest["seed"], manifest["limit"]) == ("halluc_arc_easy_local", 0, 4)
    again = cli(*args)
    assert again.exit_code == 2 and "already has results; pass --resume" in again.stderr
    (root / "drafts" / "baseline" / cells[1] / "manifest.json").unlink()  # as if interrupted mid-cell
    resumed = cli(*args, "--resume", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    status = {Path(r["cell"]).name: r["status"] for r in json.loads(resumed.stdout)["cells"]}
    assert status == {cells[0]: "skipped (done)", cells[1]: "done"}
    assert len(list((root / "drafts" / "baseline" / cells[1]).glob("results_*.json"))) == 1


def test_unknown_task_suggests_close_names(cli, tiny_llama, tmp_path):
    res = cli("eval", "run", "-m", tiny_llama, "--tasks", "halluc_arc_easy_locl", "--include-path", TASKS,
              "--root", tmp_path / "e")  # fmt: skip
    assert res.exit_code == 2 and "did you mean halluc_arc_easy_local" in res.stderr
    assert not (tmp_path / "e").exists()


@pytest.fixture(scope="module")
def tree(tiny_llama, adapter, tmp_path_factory):
    """baseline and postqlora/lora_a, both tasks, seeds 0 and 1, full (no limit)."""
    from typer.testing import CliRunner

    from ucli.app import app

    root = tmp_path_factory.mktemp("tree") / "evals"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        res = CliRunner().invoke(app, ["eval", "run", "-m", str(tiny_llama), "--adapter", str(adapter), "--tasks",
                                       "halluc_arc_easy_local,halluc_truthfulqa_mc2_local", "--seeds", "0,1",
                                       "--include-path", str(TASKS), "--root", str(root), "--device", "cpu"])  # fmt: skip
    assert res.exit_code == 0, res.output
    return root


def cell_results(root, phase, task, seed):
    cell = root / phase / f"{task}_seed{seed}_full"
    return json.loads(only(cell, "results_*.json").read_text())["results"][task], read_samples(
        only(cell, "samples_*.jsonl")
    )


def test_summarize_writes_a_tidy_csv_and_mean_sd(cli, tree):
    import csv
    import statistics

    res = cli("eval", "summarize", "--root", tree, "--json")
    assert res.exit_code == 0, res.stderr
    rows = list(csv.DictReader((tree / "summary.csv").open()))
    assert {(r["phase"], r["adapter"]) for r in rows} == {("baseline", ""), ("postqlora/lora_a", "lora_a")}
    assert len(rows) == 2 * 2 * 3  # phases x seeds x (arc acc, arc acc_norm, mc2 acc)
    doc = json.loads(res.stdout)
    for s in doc["summary"]:
        values = [cell_results(tree, s["phase"], s["task"], seed)[0][s["metric"]] for seed in (0, 1)]
        assert s["mean"] == pytest.approx(statistics.fmean(values)) and s["sd"] == pytest.approx(
            statistics.stdev(values)
        )
    assert doc["missing"] == []


def test_compare_gives_deltas_and_paired_tests_per_seed(cli, tree):
    from halluc_stats import paired_bootstrap

    res = cli("eval", "compare", "--pre", "baseline", "--post", "postqlora/lora_a", "--root", tree, "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    rows = {(r["task"], r["metric"], r["seed"]): r for r in doc["per_seed"]}
    for seed in (0, 1):
        pre, pre_samples = cell_results(tree, "baseline", "halluc_arc_easy_local", seed)
        post, post_samples = cell_results(tree, "postqlora/lora_a", "halluc_arc_easy_local", seed)
        r = rows[("halluc_arc_easy_local", "acc,none", seed)]
        assert r["delta"] == pytest.approx(post["acc,none"] - pre["acc,none"]) and r["test"] == "mcnemar"
        pairs = list(zip([s["acc"] for s in pre_samples], [s["acc"] for s in post_samples], strict=True))
        assert (r["b"], r["c"]) == (
            sum(a == 1 and b == 0 for a, b in pairs),
            sum(a == 0 and b == 1 for a, b in pairs),
        )
        _, pre_mc2 = cell_results(tree, "baseline", "halluc_truthfulqa_mc2_local", seed)
        _, post_mc2 = cell_results(tree, "postqlora/lora_a", "halluc_truthfulqa_mc2_local", seed)
        m = rows[("halluc_truthfulqa_mc2_local", "acc,none", seed)]
        want = paired_bootstrap([s["acc"] for s in pre_mc2], [s["acc"] for s in post_mc2], seed=0)
        assert m["test"] == "paired_bootstrap" and m["p_value"] == want.p_value and m["n_pairs"] == 12
        assert m["delta"] == pytest.approx(want.estimate)  # the mean of per-sample differences is the delta
    assert (tree / "compare_postqlora_lora_a.csv").is_file()


def test_a_missing_seed_is_named(cli, tree, tmp_path):
    import shutil

    copy = tmp_path / "evals"
    shutil.copytree(tree, copy)
    (copy / "postqlora" / "lora_a" / "halluc_arc_easy_local_seed1_full" / "manifest.json").unlink()
    res = cli("eval", "summarize", "--root", copy, "--force")  # the tree's summary.csv may be there
    assert res.exit_code == 0 and "postqlora/lora_a/halluc_arc_easy_local: missing seed(s) 1" in res.stderr


def test_an_adapter_run_equals_the_lm_eval_cli_with_peft(tree, tiny_llama, adapter, tmp_path):
    direct = tmp_path / "direct"
    done = subprocess.run(
        [sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args",
         f"pretrained={tiny_llama},peft={adapter}", "--tasks", "halluc_arc_easy_local", "--include_path", str(TASKS),
         "--seed", "1", "--log_samples", "--output_path", str(direct / "results.json"), "--device", "cpu",
         "--batch_size", "1"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    ours, our_samples = cell_results(tree, "postqlora/lora_a", "halluc_arc_easy_local", 1)
    theirs = json.loads(only(direct, "results_*.json").read_text())["results"]["halluc_arc_easy_local"]
    assert (ours["acc,none"], ours["acc_norm,none"]) == (theirs["acc,none"], theirs["acc_norm,none"])
    _, base_samples = cell_results(tree, "baseline", "halluc_arc_easy_local", 1)
    assert [s["resps"] for s in base_samples] != [s["resps"] for s in our_samples]  # the adapter was applied
    their_samples = read_samples(only(direct, "samples_*.jsonl"))
    for x, y in zip(our_samples, their_samples, strict=True):
        assert [float(r[0][0]) for r in x["resps"]] == pytest.approx(
            [float(r[0][0]) for r in y["resps"]], abs=1e-5
        )


def test_export_plot_and_qualitative(cli, tree, tmp_path):
    import csv

    out = tmp_path / "export"
    exported = cli("eval", "export", "--root", tree, "-o", out, "--json")
    assert exported.exit_code == 0, exported.stderr
    assert json.loads(exported.stdout)["files"] == [
        str(out / n) for n in ("matrix.md", "recipes.md", "recipes.csv", "deltas.csv")
    ]
    matrix = (out / "matrix.md").read_text()
    assert "| baseline | 0, 1 | 0, 1 |" in matrix and "| postqlora/lora_a | 0, 1 | 0, 1 |" in matrix
    recipe = list(csv.DictReader((out / "recipes.csv").open()))
    assert (
        recipe[0]["adapter"] == "lora_a"
        and recipe[0]["r"] == "4"
        and recipe[0]["target_modules"] == "q_proj,v_proj"
    )
    deltas = {(r["task"], r["metric"]): r for r in csv.DictReader((out / "deltas.csv").open())}
    compared = json.loads(cli("eval", "compare", "--pre", "baseline", "--post", "postqlora/lora_a", "--root", tree,
                              "--json", "--force").stdout)["mean"]  # fmt: skip
    for m in compared:
        assert float(deltas[(m["task"], m["metric"])]["mean_delta"]) == pytest.approx(m["mean_delta"])
    fig = tmp_path / "trade"
    res = cli("eval", "plot", "tradeoff", "--root", tree, "--x-task", "halluc_truthfulqa_mc2_local",
              "--y-task", "halluc_arc_easy_local", "-o", fig, "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == {"files": [str(fig.with_suffix(".png")), str(fig.with_suffix(".svg"))]}
    assert (
        fig.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
        and b"<svg" in fig.with_suffix(".svg").read_bytes()
    )
    wrong = cli("eval", "plot", "tradeoff", "--root", tree)  # the hub task names are not in this tree
    assert wrong.exit_code == 2 and "no deltas for task 'truthfulqa_mc2'" in wrong.stderr
    md = tmp_path / "q.md"
    res = cli("eval", "qualitative", "--pre", "baseline", "--post", "postqlora/lora_a", "--root", tree,
              "--limit", 3, "-o", md, "--json")  # fmt: skip
    assert res.exit_code == 0 and json.loads(res.stdout)["output"] == str(md), res.stderr
    text = md.read_text()
    _, pre = cell_results(tree, "baseline", "halluc_arc_easy_local", 0)
    _, post = cell_results(tree, "postqlora/lora_a", "halluc_arc_easy_local", 0)

    def pick(s):
        lls = [float(r[0][0]) for r in s["resps"]]
        return lls.index(max(lls))

    differ = [p["doc"]["question"] for p, q in zip(pre, post, strict=True) if pick(p) != pick(q)]
    assert differ and all(q in text for q in differ[:3]) and "← target" in text


def test_an_adapter_of_another_base_model_is_refused(cli, tiny_qwen2, adapter, tmp_path):
    res = cli("eval", "run", "-m", tiny_qwen2, "--adapter", adapter, "--skip-baseline", "--tasks",
              "halluc_arc_easy_local", "--limit", 2, "--include-path", TASKS, "--root", tmp_path / "e",
              "--device", "cpu")  # fmt: skip
    assert res.exit_code == 2 and "adapter does not fit model" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_drafts_mixed_with_finals_are_flagged(cli, tree, tiny_llama, tmp_path):
    import shutil

    copy = tmp_path / "evals"
    shutil.copytree(tree, copy)
    res = cli("eval", "run", "-m", tiny_llama, "--tasks", "halluc_arc_easy_local", "--seeds", 2, "--limit", 3,
              "--include-path", TASKS, "--root", copy, "--device", "cpu")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    plain = json.loads(cli("eval", "summarize", "--root", copy, "--json", "--force").stdout)
    assert all(s["seeds"] == [0, 1] for s in plain["summary"])  # drafts stay out unless asked
    kept = cli("eval", "summarize", "--root", copy, "--include-drafts")  # the summary just written is kept
    assert kept.exit_code == 2 and "summary.csv: exists; pass --force to replace it" in kept.stderr
    mixed = cli("eval", "summarize", "--root", copy, "--include-drafts", "--force")
    assert (
        mixed.exit_code == 0
        and "baseline/halluc_arc_easy_local: drafts and full runs mixed in one mean" in mixed.stderr
    )


def test_the_documented_tradeoff_example_names_the_shipped_tasks():
    """docs/eval.md's example runs on the tree the shipped tasks make (issue 17, item 14)."""
    import re

    docs = (TASKS.parents[1] / "docs" / "eval.md").read_text()
    x_task, y_task = re.search(r"plot tradeoff --x-task (\S+) --y-task (\S+)", docs).groups()
    shipped = set(re.findall(r"^task: (\S+)", "".join(p.read_text() for p in TASKS.glob("*.yaml")), re.M))
    assert {x_task, y_task} <= shipped


def test_compare_pairs_documents_with_the_stats_reader(cli, tree, tmp_path):
    """`eval compare` pairs by doc_id and checks doc_hash through `halluc stats`' reader (issue 18)."""
    import shutil

    copy = tmp_path / "evals"
    shutil.copytree(tree, copy)
    post = next((copy / "postqlora" / "lora_a").glob("halluc_arc_easy_local_seed0*/samples_*.jsonl"))
    rows = [json.loads(x) for x in post.read_text().splitlines()]
    rows[3]["doc_hash"] = "something else"
    post.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = cli("eval", "compare", "--pre", "baseline", "--post", "postqlora/lora_a", "--root", copy, "--force")
    assert (
        res.exit_code == 2
        and "doc_hash differs" in res.stderr
        and "the files do not hold the same items" in res.stderr
    )


def _cells(root):
    """Every finished cell under `root`: its lm-eval results and per-document log-likelihoods."""
    cells = {}
    for manifest in sorted(root.rglob("manifest.json")):
        cell = manifest.parent
        assert len(list(cell.glob("results_*.json"))) == 1  # each cell evaluated once
        lls = [float(r[0][0]) for s in read_samples(only(cell, "samples_*.jsonl")) for r in s["resps"]]
        cells[str(cell.relative_to(root))] = (json.loads(manifest.read_text())["results"], lls)
    return cells


def test_a_slurm_array_of_two_units_equals_one_process_and_resumes_after_a_kill(
    cli, tiny_llama, adapter, tmp_path, monkeypatch
):
    """`--executor slurm` through submitit; without SLURM here, submitit's local executor runs the
    same array (one process per unit: the base and the adapter). The driver killed once the first
    unit finished cancels the other; `--resume` then runs only unfinished cells, and every cell
    equals a single-process run's."""
    from ucli.testing import require

    require("submitit", "pip install 'halluc[slurm]'")
    from submitit import helpers

    args = ["eval", "run", "-m", tiny_llama, "--adapter", adapter, "--tasks", "halluc_arc_easy_local", "--seeds",
            "0,1", "--limit", 4, "--include-path", TASKS, "--device", "cpu"]  # fmt: skip
    assert cli(*args, "--root", tmp_path / "local").exit_code == 0
    real = helpers.as_completed

    def killed_after_one(jobs, **kw):
        for job in real(jobs, **kw):
            yield job
            raise KeyboardInterrupt

    monkeypatch.setattr(helpers, "as_completed", killed_after_one)
    root = tmp_path / "array"
    slurm = [*args, "--root", root, "--executor", "slurm", "--workers", 2, "--slurm-time", 20]
    res = cli(*slurm)
    assert res.exit_code != 0 and "no SLURM here: submitit runs the array as local processes" in res.stderr
    assert "submitted 2 eval unit(s)" in res.stderr
    finished = set(_cells(root))
    assert len(finished) >= 2  # the first unit's two cells
    monkeypatch.setattr(helpers, "as_completed", real)
    res = cli(*slurm, "--resume", "--json")
    assert res.exit_code == 0, res.stderr
    status = {str(Path(r["cell"]).relative_to(root)): r["status"] for r in json.loads(res.stdout)["cells"]}
    assert {c for c, s in status.items() if s == "skipped (done)"} == finished and len(status) == 4
    ours, theirs = _cells(root), _cells(tmp_path / "local")
    assert ours.keys() == theirs.keys() and len(ours) == 4
    for cell, (results, lls) in ours.items():
        assert results["acc,none"] == theirs[cell][0]["acc,none"], cell
        assert lls == pytest.approx(theirs[cell][1], abs=1e-5)  # other processes, other thread counts
    res = cli(*slurm, "--resume", "--json")  # a finished sweep submits nothing
    assert res.exit_code == 0 and "submitted" not in res.stderr
    assert {r["status"] for r in json.loads(res.stdout)["cells"]} == {"skipped (done)"}


def test_the_task_index_is_built_once_per_folder_as_it_stands(tmp_path, monkeypatch):
    """lm-eval takes 10-15 s to index its tasks: one index per process for each include folder, and a
    new one when a file in the folder changes."""
    import lm_eval.tasks

    from halluc_lmeval.units import _indexed, task_manager

    built = []
    monkeypatch.setattr(
        lm_eval.tasks, "TaskManager", lambda include_path: built.append(include_path) or object()
    )
    _indexed.cache_clear()
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "a.yaml").write_text("task: a\n")
    first = task_manager(folder)
    assert task_manager(folder) is first and built == [str(folder)]
    (folder / "b.yaml").write_text("task: b\n")
    assert task_manager(folder) is not first and len(built) == 2
    _indexed.cache_clear()
