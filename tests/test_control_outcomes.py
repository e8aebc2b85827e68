"""What the controller's answers are worth: abstention accounting, the paired comparison with greedy,
the risk-coverage curve (checked against the abstaining controller itself), detection tables."""

import math

import numpy as np
import pytest

from halluc_rauq.outcomes import detection, paired_comparison, risk_coverage, summarize
from halluc_rauq.threshold import coverage_theta
from ucli.artifacts import strict_json


def rec(correct, abstained=False, peak=0.0, repaired=False, well_formed=True, **more):
    return {"correct": int(correct), "abstained": abstained, "repaired": repaired, "well_formed": well_formed,
            "generated_tokens": 10, "completion_tokens": 8, "extra_tokens": 2, "triggers": int(repaired or abstained),
            "latency_s": 1.0, "uncertainty": {"peak_signal": peak, **more}}  # fmt: skip


def test_an_abstention_is_neither_right_nor_wrong():
    records = [
        rec(1),
        rec(0),
        rec(0, abstained=True),
        rec(1, repaired=True),
        rec(0, repaired=True, well_formed=False),
    ]
    s = summarize(records)
    assert (s["n"], s["correct"], s["wrong"], s["abstained"]) == (5, 2, 2, 1)
    assert s["accuracy"] == 2 / 5 and s["coverage"] == 4 / 5
    assert s["selective_accuracy"] == 2 / 4 and s["hallucination_rate"] == 2 / 4
    assert (s["repaired"], s["repair_well_formed"], s["repaired_correct"]) == (2, 0.5, 1)
    assert math.isnan(summarize([rec(1)])["repair_well_formed"])  # nothing repaired: no figure
    assert strict_json(summarize([rec(1)]))["repair_well_formed"] is None


def test_paired_comparison_counts_every_move_and_tests_both_outcomes():
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    # greedy:     R R R W W W W W W W
    # controller: R A W R A A A W W A
    base = [rec(c) for c in [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]]
    ctl = [
        rec(1),
        rec(0, True),
        rec(0),
        rec(1),
        rec(0, True),
        rec(0, True),
        rec(0, True),
        rec(0),
        rec(0),
        rec(0, True),
    ]
    c = paired_comparison(base, ctl)
    assert (c["fixed"], c["broken"], c["hallucinations_avoided"], c["correct_lost"]) == (1, 1, 4, 1)
    m = c["mcnemar"]["not_wrong"]
    assert (m["b"], m["c"]) == (1, 5)  # one new wrong answer (right -> wrong); five wrong ones gone
    assert m["p_value"] == pytest.approx(sm_mcnemar([[3, 1], [5, 1]], exact=True).pvalue)
    assert (c["mcnemar"]["correct"]["b"], c["mcnemar"]["correct"]["c"]) == (2, 1)


@pytest.mark.parametrize("direction", ["above", "below"])
def test_risk_coverage_is_the_direct_computation_at_every_theta(direction):
    rng = np.random.default_rng(3)
    peaks = rng.integers(0, 12, 60).astype(float)  # ties on purpose
    right = (rng.random(60) < 0.6).astype(int)
    curve = risk_coverage([rec(c, peak=p) for c, p in zip(right, peaks, strict=True)], direction)
    assert curve["coverage"][0] == 1.0 and curve["coverage"][-1] == 0.0
    for theta, cov, acc, wrong in zip(*(curve[k] for k in ("theta", "coverage", "selective_accuracy", "wrong")),
                                      strict=True):  # fmt: skip
        answered = peaks < theta if direction == "above" else peaks > theta  # fires at >= / <= theta
        assert cov == answered.mean() and wrong == (1 - right[answered]).sum()
        assert (math.isnan(acc) and not answered.any()) or acc == pytest.approx(right[answered].mean())
    assert len(curve["theta"]) == len(np.unique(peaks)) + 1


def test_detection_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    right = (rng.random(80) < 0.5).astype(int)
    msp = rng.random(80) + 0.4 * (1 - right)  # wrong answers less probable
    records = [rec(c, msp=m, rauq=float("nan")) for c, m in zip(right, msp, strict=True)]
    rows = {r["score"]: r for r in detection(records, n_resamples=200)}
    assert "rauq" not in rows  # a score some answers lack is left out, not half-computed
    assert rows["msp"]["auroc"] == pytest.approx(roc_auc_score(1 - right, msp))
    lo, hi = rows["msp"]["auroc_ci"]
    assert lo < rows["msp"]["auroc"] < hi and rows["msp"]["prr"] > 0


@pytest.mark.parametrize("direction", ["above", "below"])
@pytest.mark.parametrize("coverage", [0.5, 0.8, 0.85, 1.0])
def test_coverage_theta_leaves_that_share_unfired(direction, coverage):
    x = np.array([0.3, 1.0, 1.0, 2.0, 2.5, 2.5, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0])
    theta = coverage_theta(x, direction, coverage)
    quiet = (x < theta) if direction == "above" else (x > theta)
    assert quiet.mean() >= coverage
    # firing one more group of tied values would fall under the coverage
    fired = x[~quiet]
    if fired.size:
        edge = fired.min() if direction == "above" else fired.max()
        assert (quiet | (x == edge)).mean() > coverage or fired.size == x.size


def test_the_curve_is_what_the_abstaining_controller_does(tiny_qwen2):
    """Exactness: abstaining at theta answers precisely the greedy answers whose peak stays under it."""
    from halluc_rauq.controller import ControllerConfig, RAUQController, RAUQScorer, Threshold
    from ucli.models import load_model

    lm = load_model(str(tiny_qwen2), device="cpu")
    layers = list(range(lm.fingerprint.num_layers))
    scorer = RAUQScorer(layers, {layer: 0 for layer in layers}, 0.5)
    prompts = [
        lm.chat_prompt(q) for q in ("Hi", "What is water?", "Name a planet.", "Who wrote 1984?", "Rome?")
    ]
    plain = RAUQController(lm, ControllerConfig(max_new_tokens=8, max_triggers=0), scorer,
                           Threshold.fixed(math.inf, "rauq")).generate_batch(prompts)  # fmt: skip
    peaks = sorted({o.uncertainty["peak_signal"] for o in plain})
    for theta in (peaks[1], peaks[len(peaks) // 2], peaks[-1] + 1):
        config = ControllerConfig(max_new_tokens=8, repair="abstain")
        outs = RAUQController(lm, config, scorer, Threshold.fixed(theta, "rauq")).generate_batch(prompts)
        assert [not o.abstained for o in outs] == [o.uncertainty["peak_signal"] < theta for o in plain]
        assert [o.answer for o in outs if not o.abstained] == [p.answer for p, o in zip(plain, outs, strict=True)
                                                              if not o.abstained]  # fmt: skip


@pytest.mark.slow
def test_repairs_on_the_real_model_read_as_answers(smollm2, tmp_path):
    """The repair-quality figure on SmolLM2: 24 fixed facts/test questions and a theta low enough
    that most answers trigger; with cot+abstain at least 95% of the repaired answers read as answers
    (a repair that does not is abstained), recomputed here from the answers themselves."""
    from halluc_benchmarks import get_benchmark
    from halluc_rauq.calibration import calibrate_heads
    from halluc_rauq.control_eval import Arm, run_arms
    from halluc_rauq.controller import ControllerConfig, RAUQScorer, Threshold
    from ucli.data import PromptPair
    from ucli.journal import Journal

    facts = get_benchmark("facts")
    train = facts.load("train", limit=24, seed=1)
    pairs = [PromptPair(id=s.id, prompt=facts.chat_message(s), reference=s.reference) for s in train]
    cal = calibrate_heads(smollm2, pairs, "teacher-forced", None, 32, 8)
    scorer = RAUQScorer(cal.layers, {layer: cal.heads[layer] for layer in cal.layers}, 0.5)
    test = facts.load("test", limit=24, seed=1)
    by_id = {s.id: s for s in test}
    arm = Arm(
        "",
        "controller",
        ControllerConfig(max_new_tokens=40, repair="cot+abstain"),
        Threshold.fixed(1.8, "rauq"),
    )
    with Journal(tmp_path / "journal.jsonl") as journal:
        run_arms(smollm2, facts, test, journal, [arm], scorer, lambda n: None)
        records = journal.records()
    repaired = [r for r in records if r["repaired"] and not r["abstained"]]
    figure = summarize(records)["repair_well_formed"]
    assert len(repaired) >= 4, [(r["answer"], r["outcome"]) for r in records]
    assert figure == sum(facts.well_formed(by_id[r["sample_id"]], r["answer"]) for r in repaired) / len(
        repaired
    )
    assert figure >= 0.95, [r["answer"] for r in repaired]
