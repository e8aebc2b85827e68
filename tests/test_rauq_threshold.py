"""`halluc calibrate threshold`: theta by Youden's J on a logistic fit, checked against a direct search."""

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from halluc_rauq.threshold import fit_threshold
from halluc_signals import teacher_force
from ucli.errors import BadInput
from ucli.models import load_model


def youden_direct(scores, labels, higher_is_error):
    """Best TPR - FPR over every cut of the raw scores, independent of the logistic fit."""
    best = (-1.0, None, None)
    for cut in np.unique(scores):
        fires = scores >= cut if higher_is_error else scores <= cut
        tpr, fpr = fires[labels == 1].mean(), fires[labels == 0].mean()
        if tpr - fpr > best[0] + 1e-12:
            best = (tpr - fpr, tpr, fpr)
    return best


@pytest.mark.parametrize("higher_is_error", [True, False])
def test_theta_is_the_youden_cut_on_the_signals_own_scale(higher_is_error):
    rng = np.random.default_rng(3 if higher_is_error else 4)
    for _ in range(20):
        y = (rng.random(300) < 0.4).astype(int)
        shift = 1.2 if higher_is_error else -1.2
        x = rng.normal(0, 1, 300) + shift * y
        fit = fit_threshold(x, y)
        assert fit.direction == ("above" if higher_is_error else "below")
        j, tpr, fpr = youden_direct(x, y, higher_is_error)
        assert fit.tpr - fit.fpr == pytest.approx(j, abs=1e-9)
        assert (fit.tpr, fit.fpr) == pytest.approx((tpr, fpr), abs=1e-9)
        ref = LogisticRegression().fit(x[:, None], y)
        assert (fit.coef, fit.intercept) == pytest.approx((ref.coef_[0, 0], ref.intercept_[0]), rel=1e-6)
        assert fit.auroc == pytest.approx(roc_auc_score(y, x if higher_is_error else -x))
        assert (fit.n_positive, fit.n_negative) == (int(y.sum()), int((1 - y).sum()))


def test_one_class_cannot_be_fitted():
    with pytest.raises(BadInput, match="needs both labels; got 3 positive and 0 negative"):
        fit_threshold([0.1, 0.2, 0.3], [1, 1, 1])


def test_teacher_forced_views_match_a_full_forward_pass(tiny_qwen2):
    lm = load_model(str(tiny_qwen2), device="cpu")
    p = lm.prompt_ids(lm.chat_prompt("Capital of France?"))
    c = lm.tokenizer("Paris is the capital.", add_special_tokens=False)["input_ids"]
    (forced,) = teacher_force(lm, [(p, c)], [1, 2])
    with torch.no_grad():
        logits = lm.model(torch.tensor([p + c])).logits[0, len(p) - 1 : len(p) + len(c) - 1].double()
    probs = torch.softmax(logits, -1)
    np.testing.assert_allclose(forced.entropy, (-(probs * probs.log()).sum(-1)).numpy(), atol=1e-5)
    top = probs.topk(2, -1).values
    np.testing.assert_allclose(forced.margin, (top[:, 0] - top[:, 1]).numpy(), atol=1e-5)
    assert forced.top1.tolist() == probs.argmax(-1).tolist()
    np.testing.assert_allclose(forced.token_logprobs, probs.log()[range(len(c)), c].numpy(), atol=1e-5)


@pytest.fixture
def calibrated(cli, tiny_llama, tmp_path):
    """Half the references are the model's own greedy answers (its top-1 tokens: negatives), half are not."""
    from ucli.generation import generate
    from ucli.models import chat_prompt

    lm = load_model(str(tiny_llama), device="cpu")
    own = ["What is the capital of France?", "Who wrote 1984?"]
    answers = [g["answer"] for g in generate(lm, [chat_prompt(lm.tokenizer, q) for q in own], 8)]
    rows = [*zip(own, answers, strict=True), ("When did humans land on the Moon?", "Humans landed on the Moon in 1969."),
            ("What is water?", "Water is H2O, a molecule.")]  # fmt: skip
    data = tmp_path / "cal.jsonl"
    data.write_text("".join(json.dumps({"prompt": q, "reference": a}) + "\n" for q, a in rows))
    heads = tmp_path / "heads.json"
    assert cli("calibrate", "heads", "-m", tiny_llama, "--calibration", data, "-o", heads).exit_code == 0
    return data, heads


def fit_theta(model, data, heads, out):
    """`calibrate threshold` on the fixture's references: teacher-forced labels hold both classes."""
    return (
        "calibrate",
        "threshold",
        "-m",
        model,
        "--calibration",
        data,
        "--heads",
        heads,
        "-o",
        out,
        "--labels",
        "teacher-forced",
    )


@pytest.mark.parametrize("signal", ["rauq", "entropy", "margin"])
def test_cli_threshold_writes_theta_with_its_provenance(cli, tiny_llama, calibrated, tmp_path, signal):
    data, heads = calibrated
    out = tmp_path / "theta.json"
    res = cli(*fit_theta(tiny_llama, data, heads, out), "--signal", signal, "--alpha", 0.3)
    assert res.exit_code == 0, res.stderr
    doc = json.loads(out.read_text())
    assert (
        doc["provenance"]["schema"] == "halluc.rauq.theta" and doc["signal"] == signal and doc["alpha"] == 0.3
    )
    from ucli.artifacts import sha256_file

    assert doc["heads_sha256"] == sha256_file(heads) == doc["provenance"]["inputs"][str(heads)]
    assert doc["n_positive"] + doc["n_negative"] == doc["n_tokens"] > 0 and 0 <= doc["auroc"] <= 1
    assert doc["direction"] in ("above", "below") and doc["layers"] == [1, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha", "1.5"], "alpha must be in [0, 1], got 1.5"),
        (["--signal", "logit"], "--signal: unknown signal 'logit'"),
        (["--labels", "human"], "unknown --labels 'human'"),
        (["--labels", "sequence"], "needs both labels"),  # a random model gets every answer wrong
        ([], "needs both labels"),  # the default answer labels too
        (["--labels", "teacher-forced", "--coverage", "1.5"], "--coverage must be in (0, 1]"),
    ],
)
def test_cli_threshold_bad_input(cli, tiny_llama, calibrated, tmp_path, args, message):
    data, heads = calibrated
    out = tmp_path / "theta.json"
    res = cli(
        "calibrate", "threshold", "-m", tiny_llama, "--calibration", data, "--heads", heads, "-o", out, *args
    )
    assert res.exit_code == 2 and message in res.stderr and not out.exists()


def test_cli_threshold_refuses_heads_from_another_model(cli, tiny_qwen2, calibrated, tmp_path):
    data, heads = calibrated
    res = cli(
        "calibrate",
        "threshold",
        "-m",
        tiny_qwen2,
        "--calibration",
        data,
        "--heads",
        heads,
        "-o",
        tmp_path / "t.json",
    )
    assert res.exit_code == 2 and "made for model" in res.stderr and "num_layers: 3 vs 4" in res.stderr


@pytest.mark.slow
def test_sequence_labels_on_the_real_model(cli, smollm2, tmp_path):
    data = tmp_path / "facts.jsonl"
    assert cli("benchmarks", "export", "facts", "--split", "train", "--limit", 16, "-o", data).exit_code == 0
    heads, theta = tmp_path / "heads.json", tmp_path / "theta.json"
    assert cli("calibrate", "heads", "--calibration", data, "-o", heads, "--device", "cpu").exit_code == 0
    res = cli(
        "calibrate",
        "threshold",
        "--calibration",
        data,
        "--heads",
        heads,
        "-o",
        theta,
        "--labels",
        "sequence",
        "--device",
        "cpu",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (
        doc["labels"] == "sequence"
        and doc["n_positive"] > 0
        and doc["n_negative"] > 0
        and doc["alpha"] == 0.5
    )


def test_a_theta_file_from_another_model_is_refused(cli, tiny_llama, tiny_qwen2, calibrated, tmp_path):
    from halluc_rauq import load_theta

    data, heads = calibrated
    out = tmp_path / "theta.json"
    assert cli(*fit_theta(tiny_llama, data, heads, out)).exit_code == 0
    assert load_theta(out, load_model(str(tiny_llama), device="cpu").fingerprint)["signal"] == "rauq"
    with pytest.raises(BadInput, match="made for model"):
        load_theta(out, load_model(str(tiny_qwen2), device="cpu").fingerprint)
    with pytest.raises(
        BadInput, match=r"is a 'halluc\.rauq\.heads' artifact, expected 'halluc\.rauq\.theta'"
    ):
        load_theta(heads, load_model(str(tiny_llama), device="cpu").fingerprint)


SURPRISE = """
import numpy as np
from halluc_signals import Estimator

SURPRISE = Estimator("surprise", lambda r: -min(r["token_logprobs"]), frozenset({"logprobs"}),
                     step=lambda s: -np.asarray(s.logprob), reference="a plugin's token signal")
"""


def test_a_plugins_token_signal_fits_a_theta_and_drives_the_controller(cli, tiny_llama, calibrated, tmp_path,
                                                                       install_plugin):  # fmt: skip
    """A third-party estimator with a step is a `--signal` of `calibrate threshold` and `control run`."""
    from ucli.models import chat_prompt

    install_plugin("surprise_uq", SURPRISE, {"surprise": "SURPRISE"})
    data, heads = calibrated
    out = tmp_path / "theta.json"
    res = cli(*fit_theta(tiny_llama, data, heads, out), "--signal", "surprise")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(out.read_text())
    # the same fit on -log p of every reference token, from a plain forward pass
    lm = load_model(str(tiny_llama), device="cpu")
    scores, labels = [], []
    for row in map(json.loads, data.read_text().splitlines()):
        p = lm.prompt_ids(lm.chat_prompt(row["prompt"]))
        c = lm.tokenizer(row["reference"], add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(torch.tensor([p + c])).logits[0, len(p) - 1 : -1].double(), -1)
        scores += (-logp[range(len(c)), c]).tolist()
        labels += (logp.argmax(-1) != torch.tensor(c)).int().tolist()
    want = fit_threshold(np.array(scores), np.array(labels))
    assert doc["signal"] == "surprise" and doc["direction"] == want.direction
    assert doc["theta"] == pytest.approx(want.theta, rel=1e-4)
    from ucli.generation import generate

    (greedy,) = generate(lm, [chat_prompt(lm.tokenizer, "What is water?")], 8)
    theta = float(np.median(-np.array(greedy["logprobs"])))  # some greedy tokens fire, some do not
    run = tmp_path / "run.json"
    res = cli("control", "run", "-m", tiny_llama, "-p", "What is water?", "--signal", "surprise", "--theta", theta,
              "--repair", "none", "--cooldown", 0, "--max-triggers", 100, "--max-new-tokens", 8, "-o", run)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    trace = json.loads(run.read_text())
    ids = lm.encode([chat_prompt(lm.tokenizer, "What is water?")])["input_ids"][0].tolist()
    tokens = [t["id"] for t in trace["tokens"]]
    with torch.no_grad():
        logp = torch.log_softmax(
            lm.model(torch.tensor([ids + tokens])).logits[0, len(ids) - 1 : -1].double(), -1
        )
    surprise = (-logp[range(len(tokens)), tokens]).numpy()
    assert trace["signals"] == pytest.approx(surprise.tolist(), abs=1e-4)
    fired = np.flatnonzero(surprise >= theta).tolist()
    assert tokens == greedy["token_ids"] and 0 < len(fired) < len(tokens)
    assert [e["position"] for e in trace["trigger_events"]] == fired
