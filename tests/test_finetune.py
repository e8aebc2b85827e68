"""`halluc finetune qlora` on the tiny model (CPU, `--no-quant`): loss, masking, resume, adapters."""

import csv
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

WORDS = ["apple", "river", "stone", "cloud", "maple", "ember", "frost", "glade"]


def recipe_file(tmp_path, base, **train):
    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"What is code word {i}?", "output": f"The code word is {w}."}) + "\n"
                            for i, w in enumerate(WORDS)))  # fmt: skip
    settings = {"max_steps": 30, "learning_rate": 0.01, "lr_scheduler": "constant", "warmup_ratio": 0.0,
                "batch_size": 4, "save_steps": 10, "seed": 1, **train}  # fmt: skip
    lines = ["name = \"toy\"", "[model]", f"base_model = \"{base}\"", "[lora]", "lora_r = 8", "lora_alpha = 16",
             "lora_dropout = 0.0", "target_modules = [\"q_proj\", \"v_proj\"]", "[data]", "data_file = \"toy.jsonl\"",
             "max_seq_length = 128", "[train]", *(f"{k} = {json.dumps(v)}" for k, v in settings.items())]  # fmt: skip
    path = tmp_path / "recipe.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def losses(folder):
    return [
        (int(r["step"]), float(r["loss"])) for r in csv.DictReader((folder / "loss.csv").open()) if r["loss"]
    ]


def test_a_few_steps_on_a_memorisable_set_lower_the_loss(cli, tiny_llama, tmp_path):
    out = tmp_path / "adapter"
    res = cli(
        "finetune",
        "qlora",
        "-c",
        recipe_file(tmp_path, tiny_llama),
        "--no-quant",
        "-o",
        out,
        "--device",
        "cpu",
    )
    assert res.exit_code == 0, res.stderr
    log = losses(out)
    assert [s for s, _ in log] == list(range(1, 31))
    assert sum(v for _, v in log[-5:]) / 5 < 0.95 * sum(v for _, v in log[:5]) / 5
    assert {p.name for p in out.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors", "recipe.json",
                                               "loss.csv", "loss.png"}  # fmt: skip
    doc = json.loads((out / "recipe.json").read_text())
    assert doc["provenance"]["schema"] == "halluc.finetune.recipe" and doc["steps"] == 30
    assert doc["quantization"] == "none" and doc["lora_r"] == 8 and len(doc["data_sha256"]) == 64
    assert doc["provenance"]["model"]["num_layers"] == 3


def test_the_loss_only_sees_completion_tokens(tiny_qwen2, tmp_path):
    from halluc_finetune.recipe import load_recipe
    from halluc_finetune.sft_data import IGNORE, build_examples
    from ucli.data import read_records
    from ucli.models import chat_prompt, load_model

    recipe = load_recipe(recipe_file(tmp_path, tiny_qwen2))
    tok = load_model(str(tiny_qwen2), device="cpu").tokenizer
    records = read_records(recipe.data_file)
    for rec, ex in zip(records, build_examples(records, tok, recipe), strict=True):
        prompt = tok(chat_prompt(tok, rec.data["instruction"]), add_special_tokens=False)["input_ids"]
        completion = tok(rec.data["output"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        assert ex.input_ids == prompt + completion
        assert ex.labels == [IGNORE] * len(prompt) + completion


def test_the_adapter_loads_through_ucli_models_and_changes_the_model(cli, tiny_llama, tmp_path):
    from ucli.models import load_model

    out = tmp_path / "adapter"
    assert cli("finetune", "qlora", "-c", recipe_file(tmp_path, tiny_llama, max_steps=10), "--no-quant", "-o", out,
               "--device", "cpu").exit_code == 0  # fmt: skip
    base = load_model(str(tiny_llama), device="cpu")
    tuned = load_model(str(tiny_llama), device="cpu", adapter=str(out))
    ids = base.tokenizer("What is code word 3?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert not torch.allclose(base.model(ids).logits, tuned.model(ids).logits)
    assert tuned.fingerprint.adapter


def test_resume_after_a_kill_gives_the_uninterrupted_adapter(cli, tiny_llama, tmp_path):
    from safetensors.torch import load_file

    whole = tmp_path / "whole"
    recipe = recipe_file(tmp_path, tiny_llama, max_steps=40, save_steps=5)
    assert cli("finetune", "qlora", "-c", recipe, "--no-quant", "-o", whole, "--device", "cpu").exit_code == 0
    part = tmp_path / "part"
    code = "import sys; from ucli.app import main; sys.argv = ['halluc', *sys.argv[1:]]; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, "finetune", "qlora", "-c", str(recipe), "--no-quant", "-o",
                             str(part), "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and not (part / "checkpoints" / "checkpoint-10" / "trainer_state.json").exists()
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert not (part / "recipe.json").exists()  # killed before the end
    torn = part / "checkpoints" / "checkpoint-999"  # as if a kill had struck in the middle of a save
    torn.mkdir(exist_ok=True)
    (torn / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    res = cli("finetune", "qlora", "-c", recipe, "--no-quant", "-o", part, "--device", "cpu", "--resume")
    assert res.exit_code == 0, res.stderr
    part_rows, whole_rows = losses(part), losses(whole)
    assert [s for s, _ in part_rows] == [s for s, _ in whole_rows]  # every step once
    assert [v for _, v in part_rows] == pytest.approx([v for _, v in whole_rows], rel=1e-4)  # same losses
    a, b = load_file(whole / "adapter_model.safetensors"), load_file(part / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_4bit_needs_a_gpu_and_bad_recipes_are_one_line(cli, tiny_llama, tmp_path):
    recipe = recipe_file(tmp_path, tiny_llama)
    res = cli("finetune", "qlora", "-c", recipe, "-o", tmp_path / "x", "--device", "cpu")
    assert res.exit_code == 2 and "needs a CUDA GPU; pass --no-quant" in res.stderr
    recipe.write_text(recipe.read_text().replace("lora_r = 8", "lora_r = 0"))
    res = cli("finetune", "qlora", "-c", recipe, "--no-quant", "-o", tmp_path / "y")
    assert res.exit_code == 2 and "lora_r" in res.stderr and not (tmp_path / "y").exists()


@pytest.mark.parametrize("double_quant", [True, False])
def test_the_recipe_quantization_reaches_bitsandbytes(tiny_llama, tmp_path, monkeypatch, double_quant):
    """`double_quant`, `compute_dtype` and NF4 from the recipe are what bitsandbytes is given (issue 17,
    item 5). The 4-bit load itself needs a GPU; the config handed to it is checked here."""
    import importlib.util

    import halluc_finetune.qlora as qlora
    import ucli.models
    from halluc_finetune.recipe import load_recipe

    recipe = recipe_file(tmp_path, tiny_llama)
    recipe.write_text(
        recipe.read_text() + f"double_quant = {str(double_quant).lower()}\ncompute_dtype = 'float16'\n"
    )
    monkeypatch.setattr(ucli.models, "pick_device", lambda device: "cuda")
    options = qlora.base_load_options(load_recipe(recipe), "cuda")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: object() if n == "bitsandbytes" else real_find_spec(n, *a)
    )
    bnb = ucli.models._quantization_config(options, "cuda")
    assert (bnb.load_in_4bit, bnb.bnb_4bit_quant_type, bnb.bnb_4bit_use_double_quant) == (
        True,
        "nf4",
        double_quant,
    )
    assert str(bnb.bnb_4bit_compute_dtype) == "torch.float16"
    assert str(bnb.bnb_4bit_quant_storage) == "torch.uint8"  # bitsandbytes' own default
    # FSDP-QLoRA (accelerate launch with an FSDP config): 4-bit weights stored in the compute dtype,
    # which FSDP can shard, and no device map (FSDP places the shards)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    bnb = ucli.models._quantization_config(options, "cuda")
    assert str(bnb.bnb_4bit_quant_storage) == str(bnb.bnb_4bit_compute_dtype) == "torch.float16"
    assert ucli.models.device_map("cuda:1", quantized=True) is None


def test_an_adapter_names_its_base_as_the_user_did(cli, smollm2, tmp_path):
    """Not the GGUF cache folder the alias was loaded from (issue 17, item 14)."""
    recipe = recipe_file(tmp_path, "smollm2-135m", max_steps=1, batch_size=1, save_steps=1)
    recipe.write_text(recipe.read_text().replace("max_seq_length = 128", "max_seq_length = 96"))
    res = cli("finetune", "qlora", "-c", recipe, "--no-quant", "-o", tmp_path / "ft", "--device", "cpu")
    assert res.exit_code == 0, res.stderr
    config = json.loads((tmp_path / "ft" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "smollm2-135m"


def test_the_shipped_recipe_loads():
    from pathlib import Path

    from halluc_finetune.recipe import load_recipe

    recipe = load_recipe(Path(__file__).parent.parent / "examples" / "configs" / "qlora_smollm2_facts.toml")
    assert recipe.quantization == "nf4" and recipe.lora_r == 16 and Path(recipe.data_file).is_file()


def test_cot_data_keeps_successful_short_repairs(cli, tmp_path):
    def event(action="cot", kept=True, span=(2, 6), cot_tokens=2):
        return {
            "action": action,
            "kept": kept,
            "cot_span": list(span),
            "cot_tokens": cot_tokens,
            "position": 2,
        }

    tokens = ["The", " capital", " Wait,", " think", ".", " So", " Paris", "."]
    records = [
        {"sample_id": "ok", "correct": 1, "question": "Capital of France?", "tokens": tokens,
         "trigger_events": [event(kept=False), event()]},
        {"sample_id": "wrong", "correct": 0, "tokens": tokens, "trigger_events": [event()]},
        {"sample_id": "rerank", "correct": 1, "tokens": tokens, "trigger_events": [event(action="rerank")]},
        {"sample_id": "long", "correct": 1, "tokens": tokens, "trigger_events": [event(cot_tokens=30)]},
        {"sample_id": "plain", "correct": 1, "tokens": tokens, "trigger_events": []},
    ]  # fmt: skip
    run = tmp_path / "run"
    run.mkdir()
    (run / "controller.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "microcot.jsonl"
    res = cli("finetune", "cot-data", "--runs", run, "-o", out, "--max-cot-tokens", 20, "--json")
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["records"] == 5 and report["kept"] == 1
    assert report["dropped"] == {"incorrect": 1, "no kept cot repair": 2, "cot too long": 1}
    (kept,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert (kept["prefix"], kept["cot"], kept["answer"]) == ("The capital", " Wait, think. So", " Paris.")
    assert kept["completion"] == "".join(tokens) and kept["prompt"] == "Capital of France?"
    assert kept["source"] == {"sample_id": "ok", "event": 1, "run": str(run)}
    missing = cli("finetune", "cot-data", "--runs", tmp_path / "nope", "-o", tmp_path / "x.jsonl")
    assert missing.exit_code == 2 and "no controller.jsonl" in missing.stderr


def mcq_file(path, n, seed, nested=False):
    import random

    rng = random.Random(seed)
    fruits = ["apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "plum"]
    others = ["stone", "river", "cloud", "table", "engine", "paper", "window", "bridge"]
    rows = []
    for i in range(n):
        choices = [rng.choice(fruits), *rng.sample(others, 3)]
        rng.shuffle(choices)
        label = "ABCD"[[c in fruits for c in choices].index(True)]
        if nested:
            rows.append({"id": f"q{i}", "answerKey": label, "question": {"stem": "Which one can you eat?",
                         "choices": [{"label": lab, "text": t} for lab, t in zip("ABCD", choices, strict=True)]}})  # fmt: skip
        else:
            rows.append({"id": f"q{i}", "question": "Which one can you eat?",
                         "choices": {"label": list("ABCD"), "text": choices}, "answerKey": label})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mcq_fine_tuning_learns_a_learnable_toy_set(cli, tmp_path):
    from ucli.testing import build_tiny_encoder

    encoder = build_tiny_encoder(tmp_path / "enc")
    train = mcq_file(tmp_path / "train.jsonl", 96, 0, nested=True)  # the original CSQA layout
    val = mcq_file(tmp_path / "val.jsonl", 40, 1)  # the hub layout
    out = tmp_path / "mcq"
    res = cli("finetune", "mcq", "-m", encoder, "--train", train, "--validation", val, "-o", out, "--lr", 3e-3,
              "--epochs", 6, "--batch-size", 8, "--max-length", 24, "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["validation_accuracy"] >= 0.9 > doc["validation_accuracy_before"] + 0.2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["provenance"]["schema"] == "halluc.finetune.mcq" and metrics["choices"] == 4
    from transformers import AutoModelForMultipleChoice

    assert AutoModelForMultipleChoice.from_pretrained(out).config.hidden_size == 32
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"question": "q?", "choices": {"label": ["A"], "text": ["x"]}, "answerKey": "Z"}) + "\n"
    )
    res = cli("finetune", "mcq", "-m", encoder, "--train", bad, "--validation", val, "-o", tmp_path / "m2")
    assert res.exit_code == 2 and "field 'answerKey': 'Z' is not one of the labels" in res.stderr


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("lora_r = 8", "lora_r = 8\nlora_rank = 8"),
            "unknown key 'lora_rank'; did you mean 'lora_r'?",
        ),
        (('target_modules = ["q_proj", "v_proj"]', 'target_modules = ["query", "value"]'), "are not all in"),
        (
            (
                "max_seq_length = 128",
                'max_seq_length = 128\nuse_chat_template = false\ntemplate = "Q: {question}"',
            ),
            "the template needs 'question'",
        ),
    ],
)
def test_bad_recipes_are_one_line_and_leave_no_folder(cli, tiny_llama, tmp_path, edit, message):
    recipe = recipe_file(tmp_path, tiny_llama)
    recipe.write_text(recipe.read_text().replace(*edit))
    out = tmp_path / "adapter"
    res = cli("finetune", "qlora", "-c", recipe, "--no-quant", "-o", out, "--device", "cpu")
    assert res.exit_code == 2 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not out.exists()
    if "not all in" in message:
        assert "its linear modules: down_proj, gate_proj, k_proj" in res.stderr


def test_empty_data_is_refused(cli, tiny_llama, tmp_path):
    recipe = recipe_file(tmp_path, tiny_llama)
    (tmp_path / "toy.jsonl").write_text("")
    res = cli("finetune", "qlora", "-c", recipe, "--no-quant", "-o", tmp_path / "a", "--device", "cpu")
    assert res.exit_code == 2 and "toy.jsonl: file is empty" in res.stderr


def test_a_plain_template_eval_split_and_the_adapter_in_halluc_eval(cli, tiny_llama, tmp_path, monkeypatch):
    from pathlib import Path

    from halluc_finetune.recipe import load_recipe
    from halluc_finetune.sft_data import build_examples
    from ucli.data import read_records
    from ucli.models import load_model

    recipe = recipe_file(tmp_path, tiny_llama, max_steps=8, eval_fraction=0.25, eval_steps=4)
    text = recipe.read_text().replace("max_seq_length = 128",
                                      'max_seq_length = 128\nuse_chat_template = false\ntemplate = "Q: {prompt}\\nA:"')  # fmt: skip
    recipe.write_text(text)
    loaded = load_recipe(recipe)
    tok = load_model(str(tiny_llama), device="cpu").tokenizer
    first = build_examples(read_records(loaded.data_file)[:1], tok, loaded)[0]
    prompt_ids = tok("Q: What is code word 0?\nA:")["input_ids"]
    assert first.input_ids[: len(prompt_ids)] == prompt_ids
    out = tmp_path / "adapter"
    assert cli("finetune", "qlora", "-c", recipe, "--no-quant", "-o", out, "--device", "cpu").exit_code == 0
    rows = list(csv.DictReader((out / "loss.csv").open()))
    assert [int(r["step"]) for r in rows if r["eval_loss"]] == [4, 8]
    assert json.loads((out / "recipe.json").read_text())["eval_examples"] == 2
    repo = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(repo)
    res = cli("eval", "run", "-m", tiny_llama, "--adapter", out, "--skip-baseline", "--tasks", "halluc_arc_easy_local",
              "--limit", 2, "--include-path", repo / "examples" / "tasks", "--root", tmp_path / "evals",
              "--device", "cpu")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert (
        tmp_path
        / "evals"
        / "drafts"
        / "postqlora"
        / "adapter"
        / "halluc_arc_easy_local_seed0_limit2"
        / "manifest.json"
    ).is_file()


def test_ddp_under_torchrun_equals_one_process_with_the_same_global_batch(cli, tiny_llama, tmp_path):
    """`torchrun --nproc_per_node 2` (gloo on CPU) at 2 examples per process against one process at
    4: the same examples per step (DDP's sampler deals rank r every other example of the same
    permutation), and the Trainer averages the loss over the tokens of the whole global batch, so
    the two runs differ only in float32 summation order (the gradient all-reduce): ~1e-7 relative
    per step, which Adam carries into weights ~1e-6 apart after 6 steps; 1e-5 bounds it. Only
    rank 0 writes and reports."""
    from safetensors.torch import load_file

    one, ddp = tmp_path / "one", tmp_path / "ddp"
    (one / "in").mkdir(parents=True)
    (ddp / "in").mkdir(parents=True)
    recipe = recipe_file(one / "in", tiny_llama, max_steps=6, batch_size=4, save_steps=3)
    assert (
        cli("finetune", "qlora", "-c", recipe, "--no-quant", "-o", one / "out", "--device", "cpu").exit_code
        == 0
    )
    recipe = recipe_file(ddp / "in", tiny_llama, max_steps=6, batch_size=2, save_steps=3)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "ucli", "finetune", "qlora",
         "-c", str(recipe), "--no-quant", "-o", str(ddp / "out"), "--device", "cpu"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("6 steps, last logged loss") == 1  # rank 0 reported, rank 1 kept quiet
    assert sorted(p.name for p in (ddp / "out").iterdir()) == sorted(p.name for p in (one / "out").iterdir())
    assert [s for s, _ in losses(ddp / "out")] == list(range(1, 7))
    assert [v for _, v in losses(ddp / "out")] == pytest.approx([v for _, v in losses(one / "out")], rel=1e-5)
    a, b = (
        load_file(one / "out" / "adapter_model.safetensors"),
        load_file(ddp / "out" / "adapter_model.safetensors"),
    )
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=1e-5) for k in a)


def test_a_distributed_launch_gives_each_rank_its_own_gpu(monkeypatch):
    """Under torchrun a quantized base loads whole on the rank's GPU ({"": local_rank}), never with
    device_map "auto" (which spreads one model over every GPU and breaks DDP); a plain run keeps "auto"."""
    from ucli import ranks
    from ucli.models import device_map, pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert pick_device("auto") == pick_device("cuda") == "cuda:1" and not ranks.is_main()
    assert device_map(pick_device("cuda"), quantized=True) == {"": "cuda:1"}
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert pick_device("auto") == "cuda" and device_map("cuda", quantized=True) == "auto" and ranks.is_main()
