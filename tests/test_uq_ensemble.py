"""Tuned ensembles of estimators (issue 32): fit on a train split, applied to another, refused on
the split they were fit on; checked against scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _records(n, seed, prefix):
    """Answers whose two estimators each see half of what makes them wrong, a third is noise."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(n) < 0.45
    a = wrong * 1.0 + rng.normal(0, 0.8, n)
    b = wrong * 1.0 + rng.normal(0, 0.8, n) + 5  # another scale: normalisation matters
    noise = rng.normal(0, 1, n)
    return [{"id": f"{prefix}{i}", "prompt": f"{prefix} question {i}", "correct": int(not w),
             "uq": {"a": float(x), "b": float(y), "noise": float(z)}}
            for i, (w, x, y, z) in enumerate(zip(wrong, a, b, noise, strict=True))]  # fmt: skip


def _scores(path, records, source):
    from halluc_uq.scoring import UQ_SCHEMA
    from ucli.artifacts import write_table

    write_table(path, records, UQ_SCHEMA, config={"source": source})
    return path


def test_the_logistic_ensemble_is_scikit_learns_regression_on_train_normalised_scores():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import MinMaxScaler

    from halluc_uq.ensemble import apply_ensemble, fit_ensemble

    train, test = _records(300, 1, "tr"), _records(300, 2, "te")
    doc = fit_ensemble(
        train, estimators=["a", "b", "noise"], method="logistic", name=None, seed=0, source="x/train"
    )
    x = np.array([[r["uq"][e] for e in ("a", "b", "noise")] for r in train])
    scaler = MinMaxScaler().fit(x)
    model = LogisticRegression(C=1.0, max_iter=5000).fit(
        scaler.transform(x), [1 - r["correct"] for r in train]
    )
    assert doc["weights"] == pytest.approx(model.coef_[0].tolist(), rel=1e-4)
    xt = np.array([[r["uq"][e] for e in ("a", "b", "noise")] for r in test])
    want = model.predict_proba(np.clip(scaler.transform(xt), 0, 1))[:, 1]
    got = [r["uq"]["ensemble_logistic"] for r in apply_ensemble(doc, test, source="x/test", where="t")]
    assert got == pytest.approx(want.tolist(), rel=1e-4)
    y = [1 - r["correct"] for r in test]
    # the two half-signals together beat either alone on held-out answers
    assert roc_auc_score(y, got) > max(roc_auc_score(y, xt[:, 0]), roc_auc_score(y, xt[:, 1])) + 0.03


def test_auroc_weights_are_the_best_of_the_search_and_at_least_the_best_member_on_train():
    from sklearn.metrics import roc_auc_score

    from halluc_uq.ensemble import fit_ensemble

    train = _records(200, 3, "tr")
    doc = fit_ensemble(train, estimators=None, method="auroc", name="tuned", seed=7, source="x/train")
    assert doc["members"] == ["a", "b", "noise"] and doc["name"] == "tuned"
    w = np.asarray(doc["weights"])
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
    assert w[2] < min(w[0], w[1])  # the noise weighs least
    auroc = doc["train"]["auroc"]
    assert auroc["tuned"] >= max(auroc["a"], auroc["b"], auroc["noise"])  # the vertices are candidates
    x = np.array([[r["uq"][e] for e in doc["members"]] for r in train])
    z = (x - x.min(axis=0)) / (x.max(axis=0) - x.min(axis=0))
    assert auroc["tuned"] == pytest.approx(roc_auc_score([1 - r["correct"] for r in train], z @ w))
    again = fit_ensemble(train, estimators=None, method="auroc", name="tuned", seed=7, source="x/train")
    assert again["weights"] == doc["weights"]  # seeded


def test_cli_fits_on_train_applies_to_test_reports_it_and_refuses_the_train_split(cli, tmp_path):
    train = _scores(tmp_path / "train.jsonl", _records(200, 4, "tr"), "facts/train")
    test = _scores(tmp_path / "test.jsonl", _records(200, 5, "te"), "facts/test")
    res = cli(
        "uq",
        "ensemble",
        "fit",
        train,
        "--estimators",
        "a,b",
        "--method",
        "logistic",
        "-o",
        tmp_path / "e.json",
    )
    assert res.exit_code == 0, res.stderr
    out = tmp_path / "applied.jsonl"
    res = cli("uq", "ensemble", "apply", test, "--ensemble", tmp_path / "e.json", "-o", out)
    assert res.exit_code == 0, res.stderr
    res = cli("uq", "report", out, "--reference", "ensemble_logistic", "--n-resamples", 200, "--json")
    assert res.exit_code == 0, res.stderr
    rows = {r["estimator"]: r for r in json.loads(res.stdout)["estimators"]}
    assert set(rows) == {"a", "b", "noise", "ensemble_logistic"}
    assert rows["a"]["p_holm"] is not None  # paired against the ensemble like any estimator
    res = cli("uq", "report", out, "--reference", "ensemble_logistic", "--estimators", "a,ensemble_logistic",
              "--n-resamples", 200, "--json")  # fmt: skip
    assert {r["estimator"] for r in json.loads(res.stdout)["estimators"]} == {"a", "ensemble_logistic"}
    res = cli("uq", "report", out, "--estimators", "a,nope")
    assert res.exit_code == 2 and "'nope' is not among the estimators" in res.stderr
    # the split it was fit on, or its prompts under another name: refused, nothing written
    for scores, why in [(train, "which the ensemble was fit on"),
                        (_scores(tmp_path / "copy.jsonl", _records(200, 4, "tr"), "renamed"), "training prompts")]:  # fmt: skip
        res = cli(
            "uq", "ensemble", "apply", scores, "--ensemble", tmp_path / "e.json", "-o", tmp_path / "x.jsonl"
        )
        assert res.exit_code == 2 and why in res.stderr and not (tmp_path / "x.jsonl").exists()
    res = cli("uq", "ensemble", "fit", train, "--estimators", "a,nope", "-o", tmp_path / "f.json")
    assert res.exit_code == 2 and "'nope' is not in these scores" in res.stderr


def test_uq_score_ensemble_scores_new_answers_and_refuses_missing_members(cli, tmp_path, monkeypatch):
    from halluc_backends.loopback import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    # the echo answers "echo <prompt>" cut at 3 tokens: short prompts give shorter answers
    rows = [{"id": f"q{i}", "prompt": " ".join(["word"] * (1 + i % 3)) + f" {i}?", "reference": f"echo word {i}?"}
            for i in range(12)]  # fmt: skip
    fit_data, new_data = tmp_path / "fit.jsonl", tmp_path / "new.jsonl"
    fit_data.write_text("".join(json.dumps(r) + "\n" for r in rows[:10]))
    new_data.write_text("".join(json.dumps(r) + "\n" for r in rows[10:]))
    with LoopbackServer() as server:
        common = ("--backend", "openai", "-m", "m", "--base-url", server.url + "/v1", "--rpm", 6000,
                  "--max-new-tokens", 3)  # fmt: skip
        res = cli("uq", "score", "--data", fit_data, *common, "--estimators", "msp,perplexity",
                  "-o", tmp_path / "f.jsonl")  # fmt: skip
        assert res.exit_code == 0, res.stderr
        res = cli("uq", "ensemble", "fit", tmp_path / "f.jsonl", "-o", tmp_path / "e.json")
        assert res.exit_code == 0, res.stderr
        res = cli("uq", "score", "--data", new_data, *common, "--estimators", "msp", "--ensemble", tmp_path / "e.json",
                  "-o", tmp_path / "n.jsonl")  # fmt: skip
        assert res.exit_code == 2 and "member 'perplexity' is not among --estimators" in res.stderr
        sent = sum(server.calls.values())
        res = cli("uq", "score", "--data", fit_data, *common, "--estimators", "msp,perplexity",
                  "--ensemble", tmp_path / "e.json", "-o", tmp_path / "n.jsonl")  # fmt: skip
        assert (
            res.exit_code == 2 and "fit on" in res.stderr and sum(server.calls.values()) == sent
        )  # before any request
        res = cli("uq", "score", "--data", new_data, *common, "--estimators", "msp,perplexity",
                  "--ensemble", tmp_path / "e.json", "-o", tmp_path / "n.jsonl")  # fmt: skip
        assert res.exit_code == 0, res.stderr
    records = [json.loads(x) for x in (tmp_path / "n.jsonl").read_text().splitlines()]
    assert all(0 < r["uq"]["ensemble_logistic"] < 1 for r in records)
