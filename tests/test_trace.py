"""`halluc trace`: stored internals equal what the model computes (checked against transformers'
own outputs and against projections recomputed by hand), resume, validation and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from halluc_trace import TraceStore, layout
from halluc_trace.extract import ExtractConfig, extract_traces
from halluc_trace.sources import format_prompt, load_questions, load_texts
from ucli.errors import BadInput

TEXTS = [
    "The capital of France is Paris.",
    "Gold has the chemical symbol Au. Silver has the symbol Ag. Water is H2O.",
    "Jupiter is the largest planet.",
    "",
    "George Orwell wrote 1984.",
    "Humans landed on the Moon in 1969. The Nile is the longest river in Africa.",
]
ALL = ("attn", "qkv", "hidden", "resid")


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("texts") / "texts.txt"
    path.write_text("\n".join(TEXTS) + "\n")
    return path


def csqa_file(path: Path, n: int = 5, labelled: bool = True) -> Path:
    rows = []
    for i in range(n):
        choices = ["Paris", "Rome", "the largest planet in the sky", "gold", "water"]
        rows.append({"id": f"q{i}", "question": f"Which one is number {i}?" + " really" * i,
                     "question_concept": "x", "choices": {"label": list("ABCDE"), "text": choices[i:] + choices[:i]},
                     "answerKey": "ABCDE"[i % 5] if labelled else ""})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def reference_model(folder: Path, cls: str = "causal"):
    from transformers import AutoModelForCausalLM, AutoModelForMultipleChoice, AutoTokenizer

    auto = AutoModelForCausalLM if cls == "causal" else AutoModelForMultipleChoice
    model = auto.from_pretrained(folder, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def decoder_run(request, tmp_path_factory, texts):
    folder = request.getfixturevalue(f"tiny_{request.param}")
    out = tmp_path_factory.mktemp(f"trace-{request.param}") / "run"
    cfg = ExtractConfig(model=str(folder), data=str(texts), capture=ALL, batch_size=2, store_dtype="float32",
                        device="cpu")  # fmt: skip
    extract_traces(config=cfg, output=out)
    return folder, out


def test_decoder_traces_equal_transformers_outputs_and_hand_projections(decoder_run):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    folder, out = decoder_run
    store = TraceStore(out)
    model, tok = reference_model(folder)
    cfg = model.config
    n_layers, heads, kv = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads
    d = cfg.hidden_size // heads
    assert store.meta["qk_after_rotary"] is True and store.meta["num_kv_heads"] == kv
    assert (store.meta["kv_heads_note"] is not None) == (kv != heads)
    assert store.arrays()["dec_self_qkv.zarr/k"][2] == kv  # GQA keeps the model's KV heads
    ids_seen = store.example_ids()
    assert ids_seen == ["line-1", "line-2", "line-3", "line-5", "line-6"]  # the blank line 4 is skipped
    lengths = set()
    for eid, text in zip(ids_seen, [t for t in TEXTS if t], strict=True):
        ids = tok(text, return_tensors="pt")["input_ids"]
        t = ids.shape[1]
        lengths.add(t)
        with torch.no_grad():
            ref = model(ids, output_attentions=True, output_hidden_states=True)
        hs = [h[0].numpy() for h in ref.hidden_states]
        np.testing.assert_allclose(store.hidden(eid), np.stack(hs), atol=1e-5)
        np.testing.assert_allclose(store.resid(eid, "embed"), hs[0], atol=1e-6)
        positions = torch.arange(t)[None]
        for layer in range(n_layers):
            block = model.model.layers[layer]
            for h in range(heads):
                np.testing.assert_allclose(store.attn(eid, layer=layer, head=h), ref.attentions[layer][0, h].numpy(),
                                           atol=1e-6)  # fmt: skip
            pre, post_attn = (
                store.resid(eid, "pre_attn", layer=layer),
                store.resid(eid, "post_attn", layer=layer),
            )
            post_mlp = store.resid(eid, "post_mlp", layer=layer)
            np.testing.assert_allclose(pre, hs[layer], atol=1e-6)
            if layer < n_layers - 1:  # the last hidden state has the final norm applied
                np.testing.assert_allclose(post_mlp, hs[layer + 1], atol=1e-6)
            else:
                final = model.model.norm(torch.from_numpy(post_mlp)).detach().numpy()
                np.testing.assert_allclose(final, hs[-1], atol=1e-5)
            with torch.no_grad():
                x = torch.from_numpy(post_attn)
                np.testing.assert_allclose(post_mlp, (x + block.mlp(block.post_attention_layernorm(x))).numpy(),
                                           atol=1e-5)  # fmt: skip
                normed = block.input_layernorm(torch.from_numpy(pre))[None]
                att = block.self_attn
                q = att.q_proj(normed).view(1, t, heads, d).transpose(1, 2)
                k = att.k_proj(normed).view(1, t, kv, d).transpose(1, 2)
                v = att.v_proj(normed).view(1, t, kv, d).transpose(1, 2)
                cos, sin = model.model.rotary_emb(normed, positions)
                q, k = apply_rotary_pos_emb(q, k, cos, sin)
            for h in range(heads):
                np.testing.assert_allclose(
                    store.qkv(eid, "q", layer=layer, head=h), q[0, h].numpy(), atol=1e-5
                )
            for h in range(kv):
                np.testing.assert_allclose(
                    store.qkv(eid, "k", layer=layer, head=h), k[0, h].numpy(), atol=1e-5
                )
                np.testing.assert_allclose(
                    store.qkv(eid, "v", layer=layer, head=h), v[0, h].numpy(), atol=1e-5
                )
        # next-token diagnostics against a float64 softmax of the unpadded logits
        rows = store.tokens[store.tokens["example_id"] == eid].sort_values("position")
        probs = torch.softmax(ref.logits[0].double(), -1)
        assert rows["token_id"].tolist() == ids[0].tolist()
        assert rows["next_pred_id"].tolist() == probs.argmax(-1).tolist()
        np.testing.assert_allclose(
            rows["next_pred_prob"].to_numpy(float), probs.max(-1).values.numpy(), rtol=1e-4
        )
        entropy = -(probs * probs.log()).sum(-1).numpy()
        np.testing.assert_allclose(rows["next_entropy"].to_numpy(float), entropy, rtol=1e-4)
        true = probs[torch.arange(t - 1), ids[0, 1:]].numpy()
        np.testing.assert_allclose(rows["next_true_prob"].to_numpy(float)[:-1], true, rtol=1e-4)
        assert rows["next_true_prob"].isna().tolist() == [False] * (t - 1) + [True]
        assert rows["next_true_id"].tolist()[:-1] == ids[0, 1:].tolist()
        assert rows["next_pos"].tolist()[:-1] == list(range(1, t))
        top = torch.topk(probs[0], 5)
        assert rows.iloc[0]["next_topk_ids"].tolist() == top.indices.tolist()
        np.testing.assert_allclose(rows.iloc[0]["next_topk_probs"], top.values.numpy(), rtol=1e-4)
        assert rows["next_correct"].tolist()[:-1] == (probs.argmax(-1)[:-1] == ids[0, 1:]).tolist()
    assert len(lengths) > 1  # padding was exercised


def test_stats_read_the_runs_own_tokens_parquet(cli, decoder_run):
    """Each example's last position has no next token (null); single-file statistics (auroc, prr,
    bootstrap) leave those rows out, with one warning (issue 17, item 14)."""
    _, out = decoder_run
    res = cli("stats", "bootstrap", out / "tokens.parquet", "--field", "next_true_prob", "--json")
    assert res.exit_code == 0, res.stderr
    tokens = pd.read_parquet(out / "tokens.parquet")
    kept = tokens["next_true_prob"].dropna()
    assert json.loads(res.stdout)["groups"][0]["estimate"] == pytest.approx(kept.mean())
    assert f"left out {len(tokens) - len(kept)} row(s) with a null next_true_prob" in res.stderr
    assert len(tokens) - len(kept) == tokens["example_id"].nunique()  # one last position per example


def test_padding_is_stored_as_zeros_and_the_layout_is_sharded_per_example(decoder_run):
    import zarr

    _, out = decoder_run
    meta = json.loads((out / "meta.json").read_text())
    t = meta["max_seq_len"]
    attn = zarr.open_array(str(out / "dec_self_attn.zarr/attn"), mode="r")
    assert attn.shape[-2:] == (t, t) and attn.chunks == (1, *attn.shape[1:])  # short: one chunk per example
    assert layout.layers_per_chunk(30, 4 << 20) == 1 and layout.layers_per_chunk(30, 200_000) == 15
    assert layout.layers_per_chunk(31, 200_000) == 1  # a divisor of the layer count, as sharding needs
    for ex in meta["examples"]:
        n = ex["lengths"][0]
        a = attn[ex["index"]]
        assert n == t or (not a[..., n:, :].any() and not a[..., :, n:].any())
        assert (out / "dec_self_attn.zarr/attn/c" / str(ex["index"])).is_dir()
    assert meta["padding"] == "right" and meta["provenance"]["schema"] == "halluc.trace.meta"


def tiny_mc_encoder(tmp_path: Path) -> Path:
    from transformers import AutoModelForMultipleChoice, AutoTokenizer

    from ucli.testing import build_tiny_encoder

    base = build_tiny_encoder(tmp_path / "enc-base")
    torch.manual_seed(3)
    model = AutoModelForMultipleChoice.from_pretrained(base)  # the choice head is saved, so every load agrees
    model.save_pretrained(tmp_path / "enc")
    AutoTokenizer.from_pretrained(base).save_pretrained(tmp_path / "enc")
    return tmp_path / "enc"


def test_encoder_mcq_traces_equal_transformers_outputs(tmp_path):
    encoder = tiny_mc_encoder(tmp_path)
    data = csqa_file(tmp_path / "csqa.jsonl", 4)
    out = tmp_path / "run"
    extract_traces(config=ExtractConfig(model=str(encoder), mode="encoder-mcq", data=str(data), capture=ALL,
                                        batch_size=3, store_dtype="float32", device="cpu"), output=out)  # fmt: skip
    store = TraceStore(out)
    assert store.meta["qk_after_rotary"] is False and store.arrays()["enc_mc_attn.zarr/attn"][:2] == (4, 5)
    model, tok = reference_model(encoder, "mc")
    heads, d = model.config.num_attention_heads, model.config.hidden_size // model.config.num_attention_heads
    for item in load_questions(None, data, "validation"):
        logits = []
        for c, choice in enumerate(item.choices):
            enc = tok(item.question, choice, return_tensors="pt")
            t = enc["input_ids"].shape[1]
            with torch.no_grad():
                ref = model(
                    **{k: v[None] for k, v in enc.items()}, output_attentions=True, output_hidden_states=True
                )
            logits.append(float(ref.logits[0, 0]))
            hs = [h[0].numpy() for h in ref.hidden_states]
            np.testing.assert_allclose(store.mcq_hidden(item.id, c), np.stack(hs), atol=1e-5)
            for layer, block in enumerate(model.bert.encoder.layer):
                np.testing.assert_allclose(store.mcq_attn(item.id, c, layer, 1), ref.attentions[layer][0, 1].numpy(),
                                           atol=1e-6)  # fmt: skip
                post_attn = store.mcq_resid(item.id, c, "post_attn", layer)
                post_mlp = store.mcq_resid(item.id, c, "post_mlp", layer)
                np.testing.assert_allclose(post_mlp, hs[layer + 1], atol=1e-5)  # no final norm in BERT
                with torch.no_grad():
                    x = torch.from_numpy(post_attn)
                    mlp = block.output(block.intermediate(x), x).numpy()
                    q = (
                        block.attention.self.query(torch.from_numpy(hs[layer]))
                        .view(t, heads, d)
                        .transpose(0, 1)
                    )
                np.testing.assert_allclose(post_mlp, mlp, atol=1e-5)
                np.testing.assert_allclose(store.mcq_qkv(item.id, c, "q", layer, 0), q[0].numpy(), atol=1e-5)
        rows = store.tokens[store.tokens["example_id"] == item.id]
        first = rows.iloc[0]
        np.testing.assert_allclose(first["choice_logits"], logits, atol=1e-5)
        assert first["pred_idx"] == int(np.argmax(logits)) and first["label_idx"] == item.label
        assert first["is_correct"] == (item.label == int(np.argmax(logits)))
        assert first["pred_label"] == "ABCDE"[int(np.argmax(logits))]
        assert sorted(rows["choice_idx"].unique().tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(BadInput, match="use the mcq_ accessors"):
        store.attn("q0")


def test_prompt_mode_scores_the_choice_letters_after_the_prompt(tiny_llama, tmp_path):
    data = csqa_file(tmp_path / "csqa.jsonl", 3, labelled=False)
    out = tmp_path / "run"
    extract_traces(config=ExtractConfig(model=str(tiny_llama), mode="prompt", data=str(data), capture=("hidden",),
                                        device="cpu"), output=out)  # fmt: skip
    store = TraceStore(out)
    model, tok = reference_model(tiny_llama)
    letters = store.meta["choice_letter_ids"]
    assert [tok.decode([i]).strip() for i in letters] == list("ABCDE")
    for item in load_questions(None, data, "validation"):
        prompt = format_prompt(item)
        assert prompt.startswith("Question: ") and prompt.endswith("\nE. " + item.choices[4] + "\nAnswer:")
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            last = model(ids).logits[0, -1]
        row = store.tokens[store.tokens["example_id"] == item.id].iloc[0]
        np.testing.assert_allclose(row["choice_logits"], last[letters].numpy(), atol=1e-4)
        np.testing.assert_allclose(row["choice_probs"], torch.softmax(last[letters], -1).numpy(), atol=1e-5)
        assert (
            row["pred_idx"] == int(last[letters].argmax())
            and pd_na(row["label_idx"])
            and pd_na(row["is_correct"])
        )
        assert store.length(item.id) == ids.shape[1]


def pd_na(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


class SimulatedCrash(Exception):
    pass


def test_resume_after_a_crash_computes_only_unfinished_examples(tiny_qwen2, texts, tmp_path, monkeypatch):
    import zarr

    from halluc_trace import extract

    cfg = ExtractConfig(
        model=str(tiny_qwen2), data=str(texts), capture=("attn", "resid"), batch_size=2, device="cpu"
    )
    clean = tmp_path / "clean"
    extract_traces(config=cfg, output=clean)
    calls: list[list[str]] = []
    armed = [True]
    original = extract.Extractor.compute

    def crashing(self, batch):
        calls.append([e.id for e in batch])
        if armed and len(calls) == 2:
            raise SimulatedCrash
        return original(self, batch)

    monkeypatch.setattr(extract.Extractor, "compute", crashing)
    out = tmp_path / "run"
    with pytest.raises(SimulatedCrash):
        extract_traces(config=cfg, output=out)
    assert not (out / "meta.json").exists() and (out / "journal.jsonl").exists()
    with pytest.raises(BadInput, match=r"missing meta.json .*--resume"):
        TraceStore(out)
    with pytest.raises(BadInput, match="changed: batch_size"):
        extract_traces(config=cfg.model_copy(update={"batch_size": 3}), output=out, resume=True)
    calls.clear()
    armed.clear()
    result = extract_traces(config=cfg, output=out, resume=True)
    assert calls == [["line-3", "line-5"], ["line-6"]]  # the first batch was journaled before the crash
    assert (
        result["examples"] == 5
        and not (out / "journal.jsonl").exists()
        and not (out / "tokens.parts").exists()
    )
    for path in json.loads((out / "meta.json").read_text())["arrays"]:
        assert np.array_equal(zarr.open_array(str(out / path))[:], zarr.open_array(str(clean / path))[:])
    a, b = TraceStore(out).tokens, TraceStore(clean).tokens
    assert a.equals(b)
    assert (
        extract_traces(config=cfg, output=out, resume=True)["complete"] is True
    )  # a finished run: nothing to do


def test_index_and_validate_report_every_corruption(cli, tiny_llama, texts, tmp_path):
    out = tmp_path / "run"
    res = cli("trace", "extract", "-m", tiny_llama, "--data", texts, "--capture", "attn,hidden", "--layers", "0-1",
              "--output", out, "--device", "cpu", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    res = cli("trace", "index", out, "--validate", "--json")
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["problems"] == [] and doc["examples"] == 5 and doc["layers"] == [0, 1]
    assert {a["array"]: a["shape"][:3] for a in doc["arrays"]} == {
        "dec_self_attn.zarr/attn": [5, 2, 4], "dec_hidden.zarr/h": [5, 3, doc["max_seq_len"]]}  # fmt: skip

    import zarr

    shutil.rmtree(out / "dec_hidden.zarr/h/c/3")  # a deleted chunk
    parquet = out / "tokens.parquet"
    intact = parquet.read_bytes()
    parquet.write_bytes(intact[: len(intact) // 2])  # a truncated parquet
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text())
    t = meta["max_seq_len"]
    meta["arrays"]["dec_self_attn.zarr/attn"]["shape"][-1] += 1  # an edited meta
    meta_path.write_text(json.dumps(meta))
    res = cli("trace", "index", out, "--validate")
    assert res.exit_code == 1
    text = " ".join(res.stdout.split())
    for expected in (
        "dec_hidden.zarr/h: missing chunk(s) for example(s) 3 ('line-5')",
        "tokens.parquet: unreadable",
        f"dec_self_attn.zarr/attn: shape (5, 2, 4, {t}, {t}) on disk, (5, 2, 4, {t}, {t + 1}) in meta.json",
        "3 problem(s)",
    ):
        assert expected in text, text
    assert cli("trace", "index", out).exit_code == 1  # even a plain index says the parquet is damaged

    # parquet and array shape restored; another meta edit and two damaged values
    parquet.write_bytes(intact)
    meta["arrays"]["dec_self_attn.zarr/attn"]["shape"][-1] -= 1
    n = meta["examples"][1]["lengths"][0]
    meta["examples"][1]["lengths"] = [n + 1]
    meta_path.write_text(json.dumps(meta))
    attn = zarr.open_array(str(out / "dec_self_attn.zarr/attn"), mode="r+")
    block = attn[4]
    block[0, 0, 0, 0] = np.nan  # a non-finite value
    attn[4] = block
    attn[2] = attn[2] * 2  # rows that no longer sum to 1
    hidden = zarr.open_array(str(out / "dec_hidden.zarr/h"), mode="r+")
    block = hidden[0]
    block[:, -1, :] = 0.5  # padding that is not zero (line-1 is shorter than T)
    hidden[0] = block
    res = cli("trace", "index", out, "--validate", "--json", "--sample", 5)
    problems = json.loads(res.stdout)["problems"]
    assert res.exit_code == 1 and len(problems) == 5, problems
    assert "dec_hidden.zarr/h: non-zero values past the true length in example(s) 'line-1'" in problems
    joined = " | ".join(problems)
    assert f"tokens.parquet: example 'line-2' has {n} token rows, meta.json says lengths [{n + 1}]" in joined
    assert "dec_self_attn.zarr/attn: non-finite values in example(s) 'line-6' (1)" in joined
    # line-3 was doubled; the edited length also makes line-2's first padding row count (it sums to 0)
    assert (
        "attention rows do not sum to 1 (tolerance 0.01) in 'line-2' (off by 1), 'line-3' (off by 1)"
        in joined
    )
    assert "dec_hidden.zarr/h: missing chunk(s)" in joined
    parquet.unlink()
    res = cli("trace", "index", out)
    assert res.exit_code == 2 and res.stderr.strip().endswith("missing tokens.parquet")


def test_show_draws_a_labelled_heat_map_and_refuses_what_was_not_stored(cli, tiny_llama, texts, tmp_path,
                                                                          monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    res = cli("trace", "extract", "-m", tiny_llama, "--data", texts, "--layers", "1", "--capture", "attn",
              "--device", "cpu", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    out = Path(json.loads(res.stdout)["output"])
    assert out.parent == Path("traces") and out.name.split("-")[1] == "trace"  # traces/<RUN_ID>
    assert (tmp_path / out / "meta.json").is_file()
    png = tmp_path / "map.png"
    res = cli(
        "trace", "show", out, "--example", "line-2", "--layer", 1, "--head", 3, "--output", png, "--json"
    )
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == {
        "output": str(png),
        "example": "line-2",
        "layer": 1,
        "head": 3,
        "choice": None,
    }
    from matplotlib.image import imread

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and imread(png).shape[0] > 300
    drawn = png.read_bytes()
    res = cli("trace", "show", out, "--example", "line-2", "--layer", 1, "--head", 0, "--output", png)
    assert res.exit_code == 2 and "map.png: exists; pass --force to replace it" in res.stderr
    res = cli(
        "trace", "show", out, "--example", "line-2", "--layer", 0, "--head", 0, "--output", png, "--force"
    )
    assert res.exit_code == 2 and "layer 0 was not captured (stored layers: [1])" in res.stderr
    res = cli(
        "trace", "show", out, "--example", "nope", "--layer", 1, "--head", 0, "--output", png, "--force"
    )
    assert res.exit_code == 2 and "no example 'nope'" in res.stderr
    res = cli(
        "trace", "show", out, "--example", "line-2", "--layer", 1, "--head", 9, "--output", png, "--force"
    )
    assert res.exit_code == 2 and "head 9 outside 0..3" in res.stderr
    assert png.read_bytes() == drawn  # a refused drawing leaves the one there whole


def test_bad_input_is_one_line_and_exit_2(cli, tiny_llama, texts, tmp_path):
    base = ("trace", "extract", "-m", tiny_llama, "--device", "cpu")
    cases = [
        (("--data", texts, "--capture", "attn,logits"), "--capture: unknown capture 'logits'"),
        (("--data", texts, "--layers", "1-5"), "--layers: [3, 4, 5] outside this model's layers 0..2"),
        (("--data", texts, "--dataset", "wikitext2"), "exactly one of --dataset NAME and --data FILE"),
        (("--dataset", "imdb"), "unknown --dataset 'imdb'"),
        (("--data", texts, "--max-seq-len", "lots"), "--max-seq-len: expected a number of tokens or 'auto'"),
        (("--data", texts, "--resume"), "--resume needs --output"),
    ]
    for args, message in cases:
        res = cli(*base, *args, "--output", tmp_path / "x") if "--resume" not in args else cli(*base, *args)
        assert res.exit_code == 2, (args, res.stderr)
        assert message in res.stderr and res.stderr.count("\n") == 1, (message, res.stderr)
    data = csqa_file(tmp_path / "csqa.jsonl", 3)
    res = cli(*base, "--mode", "prompt", "--data", data, "--max-seq-len", 12, "--output", tmp_path / "y")
    assert (
        res.exit_code == 2
        and "example 'q2' needs" in res.stderr
        and "--max-seq-len limit of 12" in res.stderr
    )
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_hub_loaders_read_local_copies_in_the_hub_shape(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    wiki = tmp_path / "wiki.parquet"
    pq.write_table(
        pa.table({"text": ["", " = Valkyria Chronicles = \n", "", " Senjo no Valkyria is a game . \n"]}), wiki
    )
    for name in ("wikitext2", "wikitext103"):
        got = load_texts(name, None, "validation", wiki)
        assert [(e.id, e.text) for e in got] == [(f"{name}-validation-1", "= Valkyria Chronicles ="),
                                                 (f"{name}-validation-3", "Senjo no Valkyria is a game .")]  # fmt: skip
    ud = tmp_path / "ud.jsonl"
    ud.write_text(json.dumps({"idx": "weblog-0001", "text": "Al-Zaman : American forces killed Shaikh .",
                              "tokens": ["Al", "-"], "upos": [10, 1]}) + "\n")  # fmt: skip
    assert [(e.id, e.text) for e in load_texts("ud_ewt", None, "test", ud)] == [
        ("weblog-0001", "Al-Zaman : American forces killed Shaikh .")]  # fmt: skip
    go = tmp_path / "go.jsonl"
    go.write_text(json.dumps({"text": "My favourite food is anything I didn't have to cook myself.", "labels": [27],
                              "id": "eebbqej"}) + "\n")  # fmt: skip
    assert load_texts("go_emotions", None, "train", go)[0].id == "eebbqej"
    csqa = csqa_file(tmp_path / "csqa.jsonl", 2)
    assert [e.text for e in load_texts("csqa", None, "validation", csqa)] == ["Which one is number 0?",
                                                                           "Which one is number 1? really"]  # fmt: skip
    items = load_questions("csqa", None, "validation", csqa)
    assert items[1].choices[0] == "Rome" and items[1].label == 1
    with pytest.raises(BadInput, match="has no multiple-choice questions"):
        load_questions("go_emotions", None, "train", go)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(BadInput, match=r"bad.jsonl:1: no text field \(expected one of: text, sentence"):
        load_texts(None, bad, "validation")


@pytest.mark.slow
def test_real_model_prompt_traces_validate_and_match_eager_attention(smollm2, tmp_path, cli):
    data = tmp_path / "csqa.jsonl"
    rows = [
        {"id": "france", "question": "What is the capital of France?", "answerKey": "B",
         "choices": {"label": list("ABCD"), "text": ["Rome", "Paris", "Madrid", "Berlin"]}},
        {"id": "gold", "question": "Which chemical symbol stands for gold?", "answerKey": "C",
         "choices": {"label": list("ABCD"), "text": ["Ag", "Fe", "Au", "Cu"]}},
    ]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    res = cli("trace", "extract", "--mode", "prompt", "--data", data, "--capture", "attn,qkv,hidden,resid",
              "--layers", "0,29", "--output", out, "--device", "cpu", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    res = cli("trace", "index", out, "--validate", "--json")
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["problems"] == [] and doc["store_dtype"] == "float16"
    store = TraceStore(out)
    assert store.arrays()["dec_self_qkv.zarr/k"] == (
        2,
        2,
        3,
        store.meta["max_seq_len"],
        64,
    )  # 3 KV heads of 9
    model, tok = smollm2.model, smollm2.tokenizer
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        for item in load_questions(None, data, "validation"):
            ids = tok(format_prompt(item), return_tensors="pt")["input_ids"]
            with torch.no_grad():
                ref = model(ids, output_attentions=True, output_hidden_states=True)
            for layer in (0, 29):
                np.testing.assert_allclose(store.attn(item.id, layer=layer, head=4), ref.attentions[layer][0, 4].numpy(),
                                           atol=2e-3)  # fmt: skip
            np.testing.assert_allclose(store.resid(item.id, "post_mlp", layer=0), ref.hidden_states[1][0].numpy(),
                                       rtol=2e-3, atol=2e-2)  # fmt: skip
            row = store.tokens[store.tokens["example_id"] == item.id].iloc[0]
            letters = store.meta["choice_letter_ids"]
            np.testing.assert_allclose(row["choice_logits"], ref.logits[0, -1, letters].numpy(), atol=1e-3)
    finally:
        model.set_attn_implementation(previous)
