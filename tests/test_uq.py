"""halluc uq: estimators as plugins, one-decode scoring, and the paired report (issue 19)."""

import json
import math
import string

import numpy as np
import pytest

from halluc_signals import BUILT_IN, Estimator, TokenStep, choose, registry, token_signal, token_signals
from halluc_uq import build_report, calibration_errors
from ucli.errors import BadInput

RECORD = {
    "token_ids": [5, 6, 7],
    "token_logprobs": [-0.1, -2.0, -0.5],
    "token_entropy": [0.3, 1.7, 0.9],
    "token_margin": [0.8, 0.1, 0.5],
    "token_rauq": [0.1, 0.9, 0.4],
    "rauq": 1.25,
    "rauq_entropy": 1.5,
    "attention_score": 3.0,
    "token_relevance": [0.2, 0.6, 0.2],
    "p_true": -0.4,
    "p_false": -1.2,
    # each token against one contradicting alternative of log p -3
    "token_alternatives": [
        [[t, lp, "entail", "entail"], [9, -3.0, "contra", "contra"]]
        for t, lp in zip([5, 6, 7], [-0.1, -2.0, -0.5], strict=True)
    ],
}


def test_single_pass_estimators_match_hand_computed_values():
    by_name = {e.name: e for e in BUILT_IN}
    expected = {
        "msp": 2.6,
        "perplexity": 2.6 / 3,
        "mean_token_entropy": (0.3 + 1.7 + 0.9) / 3,
        "max_token_entropy": 1.7,
        "min_token_probability": 1 - math.exp(-2.0),
        "top2_margin": 1 - 0.1,
        "rauq": 1.25,
        "rauq_entropy": 1.5,
        "attention_score": 3.0,
        "token_sar": 0.2 * 0.1 + 0.6 * 2.0 + 0.2 * 0.5,  # relevance sums to 1 already
        "p_true": -(-0.4 - math.log(math.exp(-0.4) + math.exp(-1.2))),  # True against False
        "ccp": 1 - math.prod(math.exp(lp) / (math.exp(lp) + math.exp(-3.0)) for lp in (-0.1, -2.0, -0.5)),
    }
    assert {n: pytest.approx(v) for n, v in expected.items()} == {n: by_name[n](RECORD) for n in expected}
    # no relevant token (every deletion leaves the meaning): uniform weights, the perplexity
    assert by_name["token_sar"]({**RECORD, "token_relevance": [0, 0, 0]}) == pytest.approx(2.6 / 3)
    empty = {**RECORD, "token_ids": [], "token_logprobs": []}
    assert {e.name: e(empty) for e in BUILT_IN} == dict.fromkeys(expected)  # no tokens: no value


def test_the_built_ins_register_through_entry_points_and_a_bad_name_is_one_line():
    assert {e.name for e in BUILT_IN} <= set(registry())
    assert [e.name for e in choose("perplexity,rauq")] == ["perplexity", "rauq"]
    with pytest.raises(BadInput, match=r"--estimators: unknown estimator 'pplx' \(available: .*perplexity"):
        choose("msp,pplx")
    from halluc_signals.stages import resolve

    with pytest.raises(BadInput, match="estimator 'x' needs telepathy, which no installed stage provides"):
        resolve([Estimator("x", lambda r: 0.0, frozenset({"telepathy"}))])


def test_a_third_party_estimator_is_one_module_and_one_entry_point(install_plugin):
    """The worked example of docs/uq.md: an answer-length estimator in its own package."""
    install_plugin(
        "my_uq",
        "from halluc_signals import Estimator\n"
        "LENGTH = Estimator('length', lambda r: float(len(r['token_ids'])), frozenset({'logprobs'}),\n"
        "                   reference='longer answers are riskier')\n",
        {"length": "LENGTH"},
    )
    assert registry()["length"](RECORD) == 3.0
    assert [e.name for e in choose("length,msp")] == ["length", "msp"]
    assert "length" not in token_signals()  # no step: not a trigger signal


SURPRISE_GAP = """
import numpy as np
from halluc_signals import Estimator, Stage


def _gap(run):
    for r in run.records:  # how much more surprising each token was than its step's entropy
        r["surprise_gap"] = [-lp - h for lp, h in zip(r["token_logprobs"], r["token_entropy"])]


GAP = Stage("surprise_gap", frozenset({"surprise_gap"}), _gap, requires=frozenset({"logprobs", "distributions"}))
SURPRISE = Estimator("surprise", lambda r: max(r["surprise_gap"]), frozenset({"surprise_gap"}),
                     step=lambda s: -np.asarray(s.logprob) - np.asarray(s.entropy))
"""


def test_a_third_party_stage_and_its_estimator_are_one_module(cli, tiny_llama, tmp_path, install_plugin):
    """A new statistic (a stage), an estimator reading it, both run by `uq score` and as a `--signal`."""
    install_plugin("gap_uq", SURPRISE_GAP, {"surprise_gap": "GAP"}, kind="stages")
    install_plugin("gap_uq", SURPRISE_GAP, {"surprise": "SURPRISE"})
    data = tmp_path / "q.jsonl"
    data.write_text(
        "".join(
            json.dumps({"prompt": f"What is {i} + {i}?", "reference": str(2 * i)}) + "\n" for i in range(3)
        )
    )
    out = tmp_path / "s.jsonl"
    res = cli("uq", "score", "--data", data, "-m", tiny_llama, "--device", "cpu", "--estimators", "surprise,msp",
              "--max-new-tokens", 5, "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    for r in map(json.loads, out.read_text().splitlines()):
        gaps = [-lp - h for lp, h in zip(r["token_logprobs"], r["token_entropy"], strict=True)]
        assert r["surprise_gap"] == pytest.approx(gaps) and r["uq"]["surprise"] == pytest.approx(max(gaps))
    res = cli("control", "run", "-m", tiny_llama, "--device", "cpu", "-p", "What is water?", "--signal", "surprise",
              "--theta", -100, "--repair", "none", "--max-new-tokens", 4, "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    events = json.loads(res.stdout)["trigger_events"]
    assert events and all(
        e["action"] == "none" and e["signal"] <= 0 for e in events
    )  # greedy: -log p_max <= H


def test_token_signals_are_the_estimators_with_a_step():
    signals = token_signals()
    assert {"rauq", "entropy", "margin", "min_token_probability"} <= set(signals)
    assert signals["entropy"].name == "max_token_entropy" and signals["margin"].fires == "below"
    step = TokenStep(logprob=np.array([-0.1, -2.0]), entropy=np.array([0.3, 1.7]), margin=np.array([0.8, 0.1]),
                     rauq=np.array([0.2, 0.9]))  # fmt: skip
    np.testing.assert_allclose(signals["min_token_probability"].step(step), 1 - np.exp([-0.1, -2.0]))
    # a signal's answer-level peak is its sequence estimator's value
    for name in ("entropy", "margin", "min_token_probability"):
        values = np.asarray(signals[name].step(TokenStep(*(np.array(RECORD[k]) for k in (
            "token_logprobs", "token_entropy", "token_margin", "token_rauq")))))  # fmt: skip
        peak = values.max() if signals[name].fires == "above" else 1 - values.min()
        assert signals[name](RECORD) == pytest.approx(peak)
    with pytest.raises(BadInput, match=r"--signal: unknown signal 'logit' \(expected one of .*rauq"):
        token_signal("logit")


def test_generate_records_each_steps_entropy_and_margin_from_the_models_logits(tiny_llama):
    """Against the distributions of a teacher-forced pass over prompt + answer, computed here."""
    import torch

    from ucli.generation import generate
    from ucli.models import load_model

    lm = load_model(str(tiny_llama), device="cpu")
    prompt = lm.chat_prompt("Name a colour.")
    gen = generate(lm, [prompt], 6)[0]
    ids = lm.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    full = torch.cat([ids, torch.tensor([gen["token_ids"]])], dim=1)
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(full).logits[0, ids.shape[1] - 1 : -1].double(), dim=-1)
    probs = logp.exp()
    top = probs.topk(2, dim=-1).values
    assert gen["entropies"] == pytest.approx((-(probs * logp).sum(-1)).tolist(), abs=1e-4)
    assert gen["margins"] == pytest.approx((top[:, 0] - top[:, 1]).tolist(), abs=1e-4)


def _records(n=400, seed=1):
    rng = np.random.default_rng(seed)
    wrong = rng.random(n) < 0.4
    good = wrong + rng.normal(0, 0.8, n)  # informative
    noise = rng.normal(0, 1, n)  # uninformative
    return [
        {"correct": int(not w), "uq": {"rauq": float(g), "noise": float(x), "copy": float(g * 2 + 1)}}
        for w, g, x in zip(wrong, good, noise, strict=True)
    ]


def test_report_numbers_agree_with_scikit_learn_scipy_and_statsmodels():
    from scipy.stats import spearmanr
    from sklearn.metrics import average_precision_score, roc_auc_score
    from statsmodels.stats.multitest import multipletests

    from halluc_stats import prr

    records = _records()
    result = build_report(records, reference="rauq", n_resamples=300, seed=3)
    wrong = np.array([1 - r["correct"] for r in records])
    rows = {r["estimator"]: r for r in result["estimators"]}
    for name in ("rauq", "noise", "copy"):
        u = np.array([r["uq"][name] for r in records])
        assert rows[name]["auroc"] == pytest.approx(roc_auc_score(wrong, u))
        assert rows[name]["auprc"] == pytest.approx(average_precision_score(wrong, u))
        lo, hi = rows[name]["auroc_ci"]
        assert lo <= rows[name]["auroc"] <= hi
        for share in (0.5, 1.0):  # PRR and its CI: what `halluc_stats.prr` gives on the same resamples
            ref = prr(u, 1 - wrong, max_rejection=share, n_resamples=300, seed=3)
            key = f"prr_{int(share * 100)}"
            assert rows[name][key] == pytest.approx(ref.prr)
            assert rows[name][f"{key}_ci"] == pytest.approx([ref.ci_low, ref.ci_high], abs=1e-12)
    assert (
        rows["copy"]["delta_auroc"] == 0 and rows["copy"]["auroc"] == rows["rauq"]["auroc"]
    )  # a monotone copy
    assert rows["noise"]["delta_auroc"] < -0.2 and rows["noise"]["p_holm"] < 0.01
    tested = [rows[n]["p_value"] for n in ("noise", "copy")]
    holm = multipletests(tested, method="holm")[1]
    assert [rows["noise"]["p_holm"], rows["copy"]["p_holm"]] == pytest.approx(list(holm))
    matrix = np.array(result["spearman"]["matrix"])
    values = np.array([[r["uq"][n] for n in result["spearman"]["names"]] for r in records])
    assert matrix == pytest.approx(spearmanr(values).statistic, abs=1e-6)


def test_calibration_errors_are_cross_fitted_isotonic_ece_and_brier():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(0)
    u = rng.random(200)
    wrong = (rng.random(200) < u).astype(float)  # P(wrong) = u: well calibrated already
    ece, brier = calibration_errors(u, wrong, seed=7)
    order = np.random.default_rng(7).permutation(200)
    a, b = order[:100], order[100:]
    p = np.empty(200)
    for fit, apply in ((a, b), (b, a)):
        iso = IsotonicRegression(y_min=0, y_max=1, increasing=True, out_of_bounds="clip")
        p[apply] = iso.fit(u[fit], wrong[fit]).predict(u[apply])
    assert brier == pytest.approx(np.mean((p - wrong) ** 2))
    assert 0 <= ece < 0.15 and brier < 0.25


def test_uq_score_and_report_end_to_end(cli, tiny_llama, tmp_path):
    data = tmp_path / "q.jsonl"
    rows = [{"id": f"q{i}", "prompt": f"What is {i} + {i}?", "reference": str(2 * i)} for i in range(6)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "scores.jsonl"
    res = cli("uq", "score", "--data", data, "-m", tiny_llama, "--device", "cpu", "--estimators", "msp,rauq,top2_margin",
              "--max-new-tokens", 4, "-o", out, "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in records] == [f"q{i}" for i in range(6)]
    for r in records:
        assert set(r["uq"]) == {"msp", "rauq", "top2_margin"}
        assert r["uq"]["msp"] == pytest.approx(-sum(r["token_logprobs"])) and r["uq"]["rauq"] == r["rauq"]
    side = json.loads((tmp_path / "scores.jsonl.meta.json").read_text())
    assert side["provenance"]["schema"] == "halluc.uq.scores" and side["rows"] == 6
    again = cli("uq", "score", "--data", data, "-m", tiny_llama, "-o", out)
    assert again.exit_code == 2 and "--resume" in again.stderr
    bad = cli(
        "uq", "score", "--data", data, "-m", tiny_llama, "-o", tmp_path / "x.jsonl", "--estimators", "nope"
    )
    assert bad.exit_code == 2 and "unknown estimator 'nope'" in bad.stderr
    for r in records:  # a random model answers everything wrong: give the report both classes
        r["correct"] = int(r["id"] in ("q0", "q1", "q2"))
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps(r) + "\n" for r in records))
    rep = cli("uq", "report", mixed, "--reference", "msp", "--n-resamples", 200, "--json")
    assert rep.exit_code == 0, rep.stderr
    doc = json.loads(rep.stdout)
    assert doc["n"] == 6 and doc["reference"] == "msp" and len(doc["estimators"]) == 3


def test_saved_normalization_maps_new_scores_as_scikit_learn_would(cli, tmp_path):
    from sklearn.isotonic import IsotonicRegression

    from halluc_uq import apply_normalization, fit_normalization, normalize_scores

    fit_on, new = _records(300, seed=2), _records(100, seed=3)
    doc = fit_normalization(fit_on, "isotonic")
    u = np.array([r["uq"]["rauq"] for r in fit_on])
    wrong = np.array([1 - r["correct"] for r in fit_on])
    iso = IsotonicRegression(y_min=0, y_max=1, increasing=True, out_of_bounds="clip").fit(u, wrong)
    fresh = np.array([r["uq"]["rauq"] for r in new])
    assert normalize_scores(doc, "rauq", fresh) == pytest.approx(iso.predict(fresh))
    mm = fit_normalization(fit_on, "minmax")
    lo, hi = mm["maps"]["noise"]["min"], mm["maps"]["noise"]["max"]
    assert normalize_scores(mm, "noise", [lo, (lo + hi) / 2, hi, hi + 5]).tolist() == pytest.approx(
        [0, 0.5, 1, 1]
    )
    out = apply_normalization(doc, [*new, {"correct": 1, "uq": {"rauq": None, "noise": 0.0, "copy": 1.0}}])
    assert out[-1]["uq_normalized"]["rauq"] is None and set(out[0]["uq_normalized"]) == {
        "rauq",
        "noise",
        "copy",
    }
    # the command pair: fit, save, apply to new scores
    scores, later = tmp_path / "fit.jsonl", tmp_path / "new.jsonl"
    scores.write_text("".join(json.dumps(r) + "\n" for r in fit_on))
    later.write_text("".join(json.dumps(r) + "\n" for r in new))
    res = cli("uq", "normalize", scores, "--method", "isotonic", "-o", tmp_path / "norm.json")
    assert res.exit_code == 0, res.stderr
    res = cli("uq", "apply", later, "--normalization", tmp_path / "norm.json", "-o", tmp_path / "out.jsonl")
    assert res.exit_code == 0, res.stderr
    applied = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["uq_normalized"]["rauq"] for r in applied] == pytest.approx(iso.predict(fresh).tolist())
    bad = cli("uq", "normalize", scores, "--method", "zscore", "-o", tmp_path / "n2.json")
    assert bad.exit_code == 2 and "--method: unknown 'zscore'" in bad.stderr


def test_existing_answers_score_as_the_decode_scored_them(cli, tiny_llama, tmp_path):
    """--generations: the decode's own answers, given back with their token ids, get the same
    statistics and estimators from one teacher-forced pass (eager attention vs the decode's kernel:
    equal to float tolerance)."""
    data = tmp_path / "q.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "prompt": f"Say {i}.", "reference": str(i)}) + "\n" for i in range(5)
        )
    )
    decoded = tmp_path / "decoded.jsonl"
    res = cli(
        "uq",
        "score",
        "--data",
        data,
        "-m",
        tiny_llama,
        "--device",
        "cpu",
        "--max-new-tokens",
        5,
        "-o",
        decoded,
    )
    assert res.exit_code == 0, res.stderr
    first = [json.loads(x) for x in decoded.read_text().splitlines()]
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"id": r["id"], "prompt": r["prompt"], "completion": r["completion"],
                                           "token_ids": r["token_ids"], "reference": r["reference"],
                                           **({"correct": 1} if r["id"] == "q0" else {})}) + "\n" for r in first))  # fmt: skip
    given = tmp_path / "given.jsonl"
    res = cli("uq", "score", "--generations", answers, "-m", tiny_llama, "--device", "cpu", "-o", given)
    assert res.exit_code == 0, res.stderr
    second = [json.loads(x) for x in given.read_text().splitlines()]
    for a, b in zip(first, second, strict=True):
        assert b["finish_reason"] == "given" and a["token_ids"] == b["token_ids"]
        for key in ("token_logprobs", "token_entropy", "token_margin"):
            assert b[key] == pytest.approx(a[key], abs=1e-4)
        assert {k: v for k, v in b["uq"].items()} == pytest.approx(a["uq"], abs=1e-4)
    assert second[0]["correct"] == 1  # the file's own verdict wins
    assert [b["correct"] for b in second[1:]] == [a["correct"] for a in first[1:]]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "x"}) + "\n")
    res = cli("uq", "score", "--generations", bad, "-m", tiny_llama, "-o", tmp_path / "b.jsonl")
    assert res.exit_code == 2 and "bad.jsonl:1: field 'completion' is missing" in res.stderr


SAMPLED_RECORD = {
    **RECORD,
    "samples": [
        {"answer": "Paris", "logprobs": [-0.1, -0.3]},
        {"answer": "paris", "logprobs": [-0.2]},
        {"answer": "Lyon city", "logprobs": [-1.0, -2.0]},
        {"answer": "Lyon", "logprobs": [-1.5]},
        {"answer": "lyon", "logprobs": [-0.5, -0.5]},
    ],
    "sample_clusters": [0, 0, 1, 1, 1],
    # two groups that fully agree inside and never across: two connected components
    "sample_similarity": [
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 1, 1],
        [0, 0, 1, 1, 1],
        [0, 0, 1, 1, 1],
    ],
}


def test_sampled_estimators_match_hand_computed_values():
    from halluc_signals.sampled import SAMPLED

    by_name = {e.name: e for e in SAMPLED}
    mean_logp = np.array([-0.2, -0.2, -1.5, -1.5, -0.5])  # each sample's mean log p
    p = np.exp(mean_logp) / np.exp(mean_logp).sum()
    clusters = np.array([p[:2].sum(), p[2:].sum()])
    expected = {
        "semantic_entropy": -(clusters * np.log(clusters)).sum(),
        "discrete_semantic_entropy": -(0.4 * math.log(0.4) + 0.6 * math.log(0.6)),
        "num_semantic_sets": 2.0,
        # normalised Laplacian of two complete blocks: eigenvalues 0, 0 (one per component) and 1, 1, 1
        "eigval_laplacian": 2.0,
        "degree_matrix": 1 - (4 + 9) / 25,
        # the two zero-eigenvalue vectors (1,1,0,0,0)/sqrt2 and (0,0,1,1,1)/sqrt3, centred: 0.6 + 0.4
        "eccentricity": 1.0,
        # ROUGE-L F1 of the pairs: Paris-paris 1, Lyon city-Lyon 2/3, Lyon city-lyon 2/3, Lyon-lyon 1, others 0
        "lexical_similarity": 1 - (1 + 2 / 3 + 2 / 3 + 1) / 10,
    }
    assert {n: by_name[n](SAMPLED_RECORD) for n in expected} == {
        n: pytest.approx(v) for n, v in expected.items()
    }
    one = {**SAMPLED_RECORD, "samples": SAMPLED_RECORD["samples"][:1], "sample_clusters": [0],
           "sample_similarity": [[1.0]]}  # fmt: skip
    assert all(e(one) is None for e in SAMPLED)  # one sample: nothing to compare


def test_uq_score_samples_and_judges_only_when_an_estimator_needs_it(cli, tiny_llama, tmp_path, monkeypatch):
    import torch

    from halluc_uq import sampling
    from ucli.generation import generate
    from ucli.models import chat_prompt, load_model

    data = tmp_path / "q.jsonl"
    rows = [{"id": f"q{i}", "prompt": f"Name a colour number {i}.", "reference": "red"} for i in range(5)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ("uq", "score", "--data", data, "-m", tiny_llama, "--device", "cpu", "--max-new-tokens", 3,
            "--batch-size", 2, "--samples", 3, "--seed", 4, "--temperature", 0.7, "--equivalence", "exact")  # fmt: skip
    plain = cli(*args, "--estimators", "single-pass", "-o", tmp_path / "plain.jsonl")
    assert plain.exit_code == 0, plain.stderr
    assert "samples" not in json.loads((tmp_path / "plain.jsonl").read_text().splitlines()[0])
    out = tmp_path / "all.jsonl"
    res = cli(*args, "--estimators", "all", "-o", out)
    assert res.exit_code == 0, res.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    lm = load_model(str(tiny_llama), device="cpu")
    for start in (0, 2, 4):  # batches of 2 questions x 3 samples, seeded by the batch's start
        batch = rows[start : start + 2]
        torch.manual_seed(4 + start)
        gens = generate(
            lm, [chat_prompt(lm.tokenizer, r["prompt"]) for r in batch for _ in range(3)], 3, 0.7, 0.9
        )
        for j, r in enumerate(records[start : start + 2]):
            assert [s["token_ids"] for s in r["samples"]] == [g["token_ids"] for g in gens[3 * j : 3 * j + 3]]
    from halluc_judges.equivalence import normalize

    for r in records:
        keys = [normalize(s["answer"]) for s in r["samples"]]
        same = [[float(a == b) for b in keys] for a in keys]
        assert r["sample_similarity"] == same
        assert [[float(a == b) for b in r["sample_clusters"]] for a in r["sample_clusters"]] == same
        assert set(r["uq"]) >= {"semantic_entropy", "eccentricity", "lexical_similarity", "msp"}
    # killed while judging the third question, then resumed: the same records, nothing twice
    real, calls = sampling.judged_samples, []

    def dies(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(sampling, "judged_samples", dies)
    broken = tmp_path / "resumed.jsonl"
    assert cli(*args, "--estimators", "all", "-o", broken).exit_code != 0 and not broken.exists()
    monkeypatch.setattr(sampling, "judged_samples", real)
    res = cli(*args, "--estimators", "all", "-o", broken, "--resume")
    assert res.exit_code == 0, res.stderr
    assert [json.loads(x) for x in broken.read_text().splitlines()] == records
    assert not list(tmp_path.glob("*.journal*"))


def test_uq_score_spells_the_sampling_configs_measured_defaults():
    """The CLI keeps `--help` light by spelling its defaults out; they must not drift."""
    from dataclasses import fields

    import typer.main

    from halluc_uq.cli import app
    from halluc_uq.sampling import SamplingConfig

    command = typer.main.get_command(app).commands["score"]
    defaults = {p.name: p.default for p in command.params}
    for f in fields(SamplingConfig):
        assert defaults[f.name] == f.default, f.name


def test_sar_and_eigenscore_match_hand_computed_values():
    from halluc_signals.sampled import SAMPLED, SAR_TEMPERATURE

    by_name = {e.name: e for e in SAMPLED}
    samples = [
        {"answer": "Paris", "logprobs": [-0.1, -0.3], "relevance": [1.0, 3.0]},
        {"answer": "Paris!", "logprobs": [-0.2, -1.0], "relevance": [0.0, 0.0]},  # no relevant token: uniform
        {"answer": "", "logprobs": [], "relevance": []},  # empty: no probability, left out
    ]
    w = [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]]
    record = {**RECORD, "samples": samples, "sample_similarity": w}
    t = SAR_TEMPERATURE
    p1, p2 = math.exp(-0.4), math.exp(-1.2)  # sequence probabilities of the two answers
    sentence = -(math.log(p1 + 0.5 * p2 / t) + math.log(p2 + 0.5 * p1 / t)) / 2
    q1, q2 = math.exp(-(0.25 * 0.1 + 0.75 * 0.3)), math.exp(-(0.2 + 1.0) / 2)  # TokenSAR-corrected
    sar = -(math.log(q1 + 0.5 * q2 / t) + math.log(q2 + 0.5 * q1 / t)) / 2
    assert by_name["sentence_sar"](record) == pytest.approx(sentence)
    assert by_name["sar"](record) == pytest.approx(sar)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 7))
    zc = z - z.mean(axis=1, keepdims=True)
    gram = zc @ zc.T
    # the log-determinant route: mean log eigenvalue = log det / K
    assert by_name["eigenscore"]({**RECORD, "sample_gram": gram.tolist()}) == pytest.approx(
        np.linalg.slogdet(gram + 1e-3 * np.eye(4))[1] / 4
    )


def test_attention_score_is_the_eager_attention_diagonal_of_the_answer(tiny_llama, tmp_path):
    """The own-key weights the decode captured give LM-Polygraph's gen_only attention score: checked
    against `output_attentions` of an eager pass over prompt + answer, at the layer nearest L // 2."""
    import torch

    from halluc_signals import ScoreConfig, score
    from ucli.data import PromptPair
    from ucli.models import load_model

    lm = load_model(str(tiny_llama), device="cpu")
    pairs = [
        PromptPair(id="a", prompt="Name a colour.", reference=None),
        PromptPair(id="b", prompt="Count to three, slowly.", reference=None),
    ]
    records = score(lm, pairs, journal_path=tmp_path / "j", config=ScoreConfig(max_new_tokens=6)).records
    for pair, record in zip(pairs, records, strict=True):
        prompt = lm.prompt_ids(lm.chat_prompt(pair.prompt))
        ids = torch.tensor([prompt + record["token_ids"]])
        lm.model.set_attn_implementation("eager")
        with torch.no_grad():
            attn = (
                lm.model(ids, output_attentions=True).attentions[record["attention_score_layer"]][0].double()
            )
        n, s = len(record["token_ids"]), len(prompt)
        diag = attn.diagonal(dim1=-2, dim2=-1)[:, s : s + n - 1]  # the answer's tokens but the last
        assert record["attention_score"] == pytest.approx(
            -torch.log(diag + 1e-12).sum(-1).mean().item(), abs=1e-4
        )
    assert records[0]["attention_score_layer"] == lm.fingerprint.num_layers // 2


def test_p_true_and_the_sample_states_are_what_unpadded_passes_give(tiny_llama):
    """The batched p(True) and hidden-state passes (right-padded) against one unpadded pass each."""
    import torch

    from halluc_uq.extras import P_TRUE_PROMPT, true_logprobs
    from halluc_uq.sampling import _hidden_grams, last_token_states
    from ucli.generation import generate
    from ucli.models import load_model

    lm = load_model(str(tiny_llama), device="cpu")
    items = [("Capital of France?", "Paris"), ("Two plus two, in words, please?", "four, I think")]
    words = [lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("True", "False")]
    batched = true_logprobs(lm, items)
    for (q, a), got in zip(items, batched, strict=True):
        ids = torch.tensor([lm.prompt_ids(lm.chat_prompt(P_TRUE_PROMPT.format(question=q, answer=a)))])
        with torch.no_grad():
            logits = lm.model(ids).logits[0, -1].double()
        assert got == pytest.approx(torch.log_softmax(logits, -1)[words].tolist(), abs=1e-5)
    # the samples' states, read while sampling (a hook, no extra pass), against an unpadded forward
    prompts = [lm.chat_prompt("Name a colour."), lm.chat_prompt("Say something long, please.")]
    prompts = [p for p in prompts for _ in range(2)]
    torch.manual_seed(23)  # a seed where one sample ends early (eos) and the others are cut
    with last_token_states(lm) as states:
        gens = generate(lm, prompts, 4, 1.0, 1.0)
    assert {g["finish_reason"] for g in gens} == {"eos", "length"}  # both cases are read here
    grams = _hidden_grams(states, gens, k=2)
    rows = []
    for p, g in zip(prompts, gens, strict=True):
        ids = lm.prompt_ids(p) + g["token_ids"]
        # the sample's last token, or the one before when cut at the budget (never read back)
        at = len(ids) - 1 - (g["finish_reason"] == "length")
        with torch.no_grad():
            out = lm.model(torch.tensor([ids]), output_hidden_states=True)
        rows.append(out.hidden_states[lm.fingerprint.num_layers // 2][0, at].double().numpy())
    z = np.stack(rows)
    centre = np.eye(z.shape[1]) - 1 / z.shape[1]  # J_d
    for q, gram in enumerate(grams):
        zq = z[2 * q : 2 * q + 2]
        np.testing.assert_allclose(gram, zq @ centre @ zq.T, rtol=1e-4, atol=1e-6)


def test_token_relevance_is_what_deleting_each_token_does_to_the_answer(tiny_llama):
    from halluc_judges import make_judge
    from halluc_uq.sampling import token_relevance
    from ucli.models import load_model

    tokenizer = load_model(str(tiny_llama), device="cpu").tokenizer
    ids = tokenizer("Paris , France", add_special_tokens=False)["input_ids"]
    pieces = [tokenizer.decode([i]).strip() for i in ids]
    relevance = token_relevance(make_judge("exact"), tokenizer, "Capital?", ids)
    # the exact judge ignores punctuation and spacing: deleting the comma or a space leaves the answer,
    # deleting any piece of a word changes it
    assert relevance == [0.0 if piece in (",", "") else 1.0 for piece in pieces]
    assert token_relevance(make_judge("exact"), tokenizer, "Capital?", ids[:1]) == [1.0]


def test_ccp_matches_a_hand_computed_value_and_lm_polygraphs_rule_for_two_verdicts():
    from halluc_signals.estimators import CCP, _combined

    pairs = [("entail", "entail"), ("entail", "neutral"), ("contra", "neutral"), ("entail", "contra"),
             ("neutral", "neutral")]  # fmt: skip
    assert [_combined(f, b) for f, b in pairs] == ["entail", "entail", "contra", "neutral", "neutral"]
    steps = [
        [[1, -0.2, "entail", "entail"], [2, -2.0, "entail", "entail"], [3, -3.0, "contra", "neutral"],
         [4, -1.0, "neutral", "neutral"], [5, -4.0, "entail", "contra"]],
        [[6, -0.5, "entail", "entail"], [7, -1.5, "contra", "contra"]],
    ]  # fmt: skip
    first = (math.exp(-0.2) + math.exp(-2.0)) / (math.exp(-0.2) + math.exp(-2.0) + math.exp(-3.0))
    second = math.exp(-0.5) / (math.exp(-0.5) + math.exp(-1.5))  # neutral words count on neither side
    assert CCP({**RECORD, "token_alternatives": steps}) == pytest.approx(1 - first * second)


def test_the_alternatives_are_the_chosen_token_then_the_most_likely_others(tiny_llama):
    import torch

    from halluc_judges import make_judge
    from halluc_uq.extras import ALTERNATIVES, judged_alternatives, top_alternatives
    from ucli.models import load_model

    lm = load_model(str(tiny_llama), device="cpu")
    items = [("Name a colour.", [5, 9, 11]), ("Two plus two, in words?", [7]), ("Empty.", [])]
    found = top_alternatives(lm, items)
    assert [len(steps) for steps in found] == [3, 1, 0]
    for (q, answer), steps in zip(items[:2], found[:2], strict=True):
        prompt = lm.prompt_ids(lm.chat_prompt(q))
        with torch.no_grad():
            logits = lm.model(torch.tensor([prompt + answer])).logits[0, len(prompt) - 1 : -1].double()
        logp = torch.log_softmax(logits, -1)
        for t, alts in enumerate(steps):
            assert alts[0][0] == answer[t] and len(alts) == ALTERNATIVES
            top = [i for i in logp[t].topk(ALTERNATIVES + 1).indices.tolist() if i != answer[t]][
                : ALTERNATIVES - 1
            ]
            assert [i for i, _ in alts[1:]] == top
            assert [lp for _, lp in alts] == pytest.approx(logp[t, [i for i, _ in alts]].tolist(), abs=1e-5)
    from halluc_judges.equivalence import normalize

    judged = judged_alternatives(make_judge("exact"), lm.tokenizer, found[0])
    word = lambda i: normalize(lm.tokenizer.decode([i]).strip(string.punctuation + " \n"))  # noqa: E731
    for alts, steps in zip(judged, found[0], strict=True):
        for (i, _, forward, backward), (j, _) in zip(alts, steps, strict=True):
            assert i == j and forward == backward == ("entail" if word(i) == word(alts[0][0]) else "contra")
