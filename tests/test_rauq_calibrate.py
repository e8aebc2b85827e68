"""`halluc calibrate heads`: the L x H means against an independent computation, and the CLI."""

import json

import numpy as np
import pytest
import torch

from halluc_rauq.calibration import calibrate_heads
from halluc_signals import load_heads, parse_layers
from ucli.data import read_prompt_pairs
from ucli.errors import BadInput
from ucli.models import load_model

PAIRS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Who wrote 1984?", "George Orwell wrote it."),
    ("What is the chemical symbol for gold?", "Au"),
    ("When did humans land on the Moon?", "Humans landed on the Moon in 1969."),
    ("What is water?", "Water is H2O, a molecule."),
]


@pytest.fixture
def calibration_file(tmp_path):
    f = tmp_path / "cal.tsv"
    f.write_text("".join(f"{p}\t{r}\n" for p, r in PAIRS) + "Say nothing.\t\n")
    return f


def independent_means(lm, pairs):
    """One full eager forward pass per example; average the diagonal a(2..n) over all examples."""
    lm.model.set_attn_implementation("eager")
    sums, count = None, 0
    for pair in pairs:
        p = lm.prompt_ids(lm.chat_prompt(pair.prompt))
        c = lm.tokenizer(pair.reference, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            att = lm.model(torch.tensor([p + c]), output_attentions=True).attentions
        block = np.stack([a[0].double().numpy() for a in att])  # [L, H, T, T]
        diag = np.stack(
            [
                [np.diagonal(block[layer, h])[len(p) : len(p) + len(c) - 1] for h in range(block.shape[1])]
                for layer in range(block.shape[0])
            ]
        )
        sums = diag.sum(axis=-1) if sums is None else sums + diag.sum(axis=-1)
        count += len(c) - 1
    lm.model.set_attn_implementation("sdpa")
    return sums / count, count


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_qwen2"])
def test_means_and_heads_match_an_independent_computation_for_any_batch_size(
    request, fixture, calibration_file
):
    lm = load_model(str(request.getfixturevalue(fixture)), device="cpu")
    pairs = read_prompt_pairs(calibration_file)
    expected, count = independent_means(lm, [p for p in pairs if p.reference])
    one = calibrate_heads(lm, pairs, batch_size=1)
    four = calibrate_heads(lm, pairs, batch_size=4)
    assert one.mean_attention.shape == (lm.fingerprint.num_layers, lm.fingerprint.num_heads)
    np.testing.assert_allclose(one.mean_attention, expected, atol=1e-5)
    np.testing.assert_allclose(four.mean_attention, expected, atol=1e-5)  # right padding is exact
    assert one.heads == {layer: int(np.argmax(expected[layer])) for layer in range(expected.shape[0])}
    assert (one.n_tokens, one.n_examples, one.skipped_empty) == (count, 5, 1)


def test_generated_mode_calibrates_on_the_models_own_answers(tiny_llama, calibration_file):
    lm = load_model(str(tiny_llama), device="cpu")
    cal = calibrate_heads(
        lm, read_prompt_pairs(calibration_file), mode="generated", max_new_tokens=5, batch_size=3
    )
    assert cal.mode == "generated" and cal.n_examples == 6 and cal.n_tokens == 6 * 4
    assert all(len(e["completion"]) > 0 for e in cal.examples)


def test_layer_specs():
    assert parse_layers(None, 30) == list(range(10, 21))
    assert parse_layers("3,5-7,5", 30) == [3, 5, 6, 7]
    with pytest.raises(BadInput, match=r"--layers: \[30\] outside this model's layers 0..29"):
        parse_layers("28-30", 30)
    with pytest.raises(BadInput, match="'x' is not a layer number"):
        parse_layers("x", 30)


def test_cli_heads_writes_the_artifact_table_and_plot(cli, tiny_llama, calibration_file, tmp_path):
    out, png = tmp_path / "heads.json", tmp_path / "heads.png"
    res = cli(
        "calibrate",
        "heads",
        "-m",
        tiny_llama,
        "--calibration",
        calibration_file,
        "--limit",
        100,
        "-o",
        out,
        "--plot",
        png,
        "--layers",
        "0-1",
    )
    assert res.exit_code == 0, res.stderr
    assert (
        "has 6 pairs; using all of them (asked for 100)" in res.stderr and "skipped 1 example" in res.stderr
    )
    assert "runtime" in res.stdout and png.read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(out.read_text())
    assert (
        doc["provenance"]["schema"] == "halluc.rauq.heads" and doc["provenance"]["model"]["num_layers"] == 3
    )
    assert doc["layers"] == [0, 1] and len(doc["mean_attention"]) == 3 and doc["n_examples"] == 5
    lm = load_model(str(tiny_llama), device="cpu")
    heads, layers = load_heads(out, lm.fingerprint)
    assert layers == [0, 1] and heads == {0: doc["heads"]["0"], 1: doc["heads"]["1"]}


def test_a_heads_file_from_another_model_is_refused(cli, tiny_llama, tiny_qwen2, calibration_file, tmp_path):
    out = tmp_path / "heads.json"
    assert (
        cli(
            "calibrate", "heads", "-m", tiny_llama, "--calibration", calibration_file, "-o", out, "--json"
        ).exit_code
        == 0
    )
    qwen = load_model(str(tiny_qwen2), device="cpu")
    with pytest.raises(
        BadInput, match=r"made for model .* \(architecture: 'LlamaForCausalLM' vs 'Qwen2ForCausalLM'"
    ):
        load_heads(out, qwen.fingerprint)
    doc = json.loads(out.read_text())
    doc["layers"] = [0, 7]
    doc["heads"]["7"] = 0
    out.write_text(json.dumps(doc))
    with pytest.raises(BadInput, match=r"layers \[7\] exceed this model's 3 layers"):
        load_heads(out, load_model(str(tiny_llama), device="cpu").fingerprint)


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("", [], "cal.tsv: file is empty"),
        ("A?\t\nB?\t \n", [], "every completion is empty: nothing to calibrate on"),
        ("A?\tyes\n", ["--layers", "5"], "--layers: [5] outside this model's layers 0..2"),
        ("A?\tyes\n", ["--mode", "sampled"], "unknown --mode 'sampled'"),
        ("A?\n", [], "cal.tsv:1: expected 'prompt<TAB>reference', found no tab"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(
    cli, tiny_llama, tmp_path, content, args, message
):
    f = tmp_path / "cal.tsv"
    f.write_text(content)
    out = tmp_path / "heads.json"
    res = cli("calibrate", "heads", "-m", tiny_llama, "--calibration", f, "-o", out, *args)
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()
