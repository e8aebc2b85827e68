"""Claim splitters and the alignment of claims to answer tokens (issue 33, first part)."""

from __future__ import annotations

import numpy as np
import pytest

from halluc_claims import Claim, align_claims, char_spans, content_words, get_splitter, token_pieces

BIO = ('Dr. Marie Curie was born on 7 Nov. 1867 in Warsaw. She won the Nobel Prize in 1903, and again in 1911! '
       '"Nothing in life is to be feared," she said. She died aged 66.5 years; her daughter Irène also won it.')  # fmt: skip


def test_sentences_keep_abbreviations_numbers_and_quotes_whole_and_split_clauses_at_semicolons():
    claims = get_splitter("sentences").split(BIO)
    assert [c.text for c in claims] == [
        "Dr. Marie Curie was born on 7 Nov. 1867 in Warsaw.",
        "She won the Nobel Prize in 1903, and again in 1911!",
        '"Nothing in life is to be feared," she said.',
        "She died aged 66.5 years;",
        "her daughter Irène also won it.",
    ]
    assert [c.sentence for c in claims] == [0, 1, 2, 3, 3]
    assert all(BIO[c.start : c.end] == c.text for c in claims)  # spans of the answer
    whole = get_splitter("sentences", clauses="false").split(BIO)
    assert len(whole) == 4 and whole[-1].text == "She died aged 66.5 years; her daughter Irène also won it."
    assert get_splitter("sentences").split("  ...  ") == []
    from ucli.errors import BadInput

    with pytest.raises(BadInput, match="unknown option 'lang'"):
        get_splitter("sentences", lang="de")
    with pytest.raises(BadInput, match="expected true or false"):
        get_splitter("sentences", clauses="maybe")


def test_a_span_claim_rests_on_the_tokens_that_decode_to_it(tiny_llama):
    """On a real tokenizer: each aligned claim's tokens decode to text holding its content words."""
    from ucli.models import load_model

    tokenizer = load_model(str(tiny_llama), device="cpu").tokenizer
    ids = tokenizer(BIO, add_special_tokens=False)["input_ids"]
    pieces = token_pieces(tokenizer, ids)
    answer = "".join(pieces)
    assert answer == tokenizer.decode(ids, skip_special_tokens=True)
    claims = get_splitter("sentences").split(answer)
    aligned = align_claims(claims, answer, pieces)
    assert all(a is not None for a in aligned)
    for claim, tokens in zip(claims, aligned, strict=True):
        text = tokenizer.decode(ids[tokens[0] : tokens[-1] + 1]).lower()  # the span the claim's tokens cover
        assert all(w in text for w in content_words(claim.text)), (claim.text, text)
        gaps = set(range(tokens[0], tokens[-1] + 1)) - set(tokens)  # one run, less spaces and punctuation
        assert all(not any(ch.isalnum() for ch in pieces[t]) for t in gaps)
    # neighbours share no token beyond the seam's
    assert set(aligned[0]).isdisjoint(aligned[2])


def test_a_rewritten_claim_rests_on_its_content_words_or_is_unaligned():
    answer = "Ada Lovelace was born in London in 1815. She wrote the first program."
    pieces = [w for w in __import__("re").findall(r"\s*\S+", answer)]  # an API's token strings
    spans = char_spans(pieces)
    assert "".join(pieces) == answer and spans[-1][1] == len(answer)
    claims = [Claim("Lovelace was born in 1815.", 0), Claim("Lovelace wrote the first computer program.", 1),
              Claim("The first program was written by Ada.", 1), Claim("It was so.", 0)]  # fmt: skip
    aligned = align_claims(claims, answer, pieces, sentence_starts=[0, answer.index("She")])
    words = lambda tokens: "".join(pieces[t] for t in tokens).split()  # noqa: E731
    assert words(aligned[0]) == ["Lovelace", "born", "1815."]
    assert aligned[1] is None  # "computer" is not in the answer
    assert aligned[2] is None  # "ada" is not after the start of sentence 1, in order
    assert aligned[3] is None  # no content word


def test_a_third_party_claim_splitter_is_one_module_and_one_entry_point(install_plugin):
    install_plugin(
        "my_claims",
        "class Lines:\n"
        "    name = 'lines'\n"
        "    def __init__(self):\n        pass\n"
        "    def split(self, answer, question=''):\n"
        "        from halluc_claims import Claim\n"
        "        return [Claim(t, i) for i, t in enumerate(answer.splitlines()) if t]\n",
        {"lines": "Lines"},
        kind="claims",
    )
    from halluc_claims import splitters

    assert {"sentences", "lines"} <= set(splitters())
    assert [c.text for c in get_splitter("lines").split("a\nb")] == ["a", "b"]


def test_uq_score_claims_scores_each_claims_tokens_locally_and_through_an_api(
    cli, tiny_llama, tmp_path, monkeypatch
):
    import json

    from halluc_backends.loopback import LoopbackServer, token_logprob

    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"id": "a", "prompt": "Tell me about Paris.", "reference": "Paris"}) + "\n")
    out = tmp_path / "local.jsonl"
    res = cli("uq", "score", "--data", data, "-m", tiny_llama, "--device", "cpu", "--max-new-tokens", 24,
              "--estimators", "msp,max_token_entropy,rauq,p_true", "--claims", "sentences", "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    record = json.loads(out.read_text())
    assert record["claims"], record["completion"]
    for claim in record["claims"]:
        assert record["completion"][claim["start"] : claim["end"]] == claim["text"]
        assert set(claim["uq"]) == {"msp", "max_token_entropy", "rauq", "p_true"}
        if claim["tokens"]:
            assert claim["uq"]["msp"] == pytest.approx(
                -sum(record["token_logprobs"][t] for t in claim["tokens"])
            )
            mean_rauq = sum(record["token_rauq"][t] for t in claim["tokens"]) / len(claim["tokens"])
            assert claim["uq"]["rauq"] == pytest.approx(mean_rauq)  # its own claim rule
    meta = json.loads((tmp_path / "local.jsonl.meta.json").read_text())
    assert meta["provenance"]["config"]["claims"] == "sentences"
    # p(True) of each claim: the claim in the answer's place in the P(True) prompt, computed by hand
    from halluc_uq.extras import true_logprobs
    from ucli.models import load_model

    lm = load_model(str(tiny_llama), device="cpu")
    by_hand = true_logprobs(lm, [(record["prompt"], c["text"]) for c in record["claims"]])
    for claim, (yes, no) in zip(record["claims"], by_hand, strict=True):
        assert (claim["p_true"], claim["p_false"]) == pytest.approx((yes, no), abs=1e-5)
        assert claim["uq"]["p_true"] == pytest.approx(-(yes - np.logaddexp(yes, no)), abs=1e-5)
        assert claim["p_true"] != record["p_true"] or claim["text"] == record["completion"]

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    said = "Paris is the capital of France. It has 2.1 million people; the Seine runs through it."
    with LoopbackServer() as server:
        for backend, url in [("openai", server.url + "/v1"), ("anthropic", server.url)]:
            server.script("Paris", [f"say:{said}"] * 5)  # the answer, its samples and the follow-ups say it
            out = tmp_path / f"{backend}.jsonl"
            res = cli("uq", "score", "--data", data, "--backend", backend, "-m", "m", "--base-url", url, "--rpm", 6000,
                      "--estimators", "all", "--samples", 2, "--equivalence", "exact", "--claims", "sentences", "-o", out)  # fmt: skip
            assert res.exit_code == 0, res.stderr
            claims = json.loads(out.read_text())["claims"]
            assert [c["text"] for c in claims] == ["Paris is the capital of France.", "It has 2.1 million people;",
                                                   "the Seine runs through it."]  # fmt: skip
            if backend == "openai":  # word tokens with log-probs -0.1 (i + 1)
                assert [c["tokens"] for c in claims] == [
                    [0, 1, 2, 3, 4, 5],
                    [6, 7, 8, 9, 10],
                    [11, 12, 13, 14, 15],
                ]
                assert claims[1]["uq"]["msp"] == pytest.approx(-sum(token_logprob(i) for i in range(6, 11)))
            else:  # no tokens returned: every claim recorded, unaligned (texts-only estimators score no claim)
                assert all(c["tokens"] is None and c["uq"] == {} for c in claims)
    res = cli(
        "uq", "score", "--data", data, "-m", tiny_llama, "--claims", "paragraphs", "-o", tmp_path / "x.jsonl"
    )
    assert res.exit_code == 2 and "unknown claim 'paragraphs'" in res.stderr


# two of SmolLM2-135M-Instruct's biographies (bios/test, greedy, 128 new tokens), as it wrote them
SMOLLM2_BIOS = [
    "Charles Robert Darwin was born on January 4, 17ishable, 1814, in the English city of Liverpool, England, to a "
    "British father and a Spanish mother. He was the son of a wealthy merchant family. Charles was raised by his "
    "father's wife, Emma Willink, and her husband, John, who was a wealthy merchant. Charles was educated at the "
    "Royal College of Surgeons and later became a lawyer. He was born into a family of modest means, and his "
    "parents encouraged his curiosity and encouraged him to pursue his passion for science.\n\nCharles was raised "
    "by a family of modest means, and",
    "Leonardo da Vinci was born on March 14, 1469, in Vinci, Italy, to a family of modest means. His parents, "
    "Francesco del Giocmeo and Francesca da'Cristofori, were both artists and scientists. Leonardo's mother, "
    "Francesca, was a talented artist and a patron of science, and she encouraged him to pursue a career in "
    "art.\n\nLeonardo's father, Francesco, was a wealthy merchant and a patron of the arts. He encouraged Leonardo "
    "to pursue a career in art, and Leonardo's family was well-respected in the art world.",
]


def test_claims_of_smollm2_bios_align_to_tokens_that_decode_to_their_content_words(smollm2):
    """The alignment rule on the real model's tokenizer and its own biographies: span claims and the
    rewritten claims an LLM splitter would give (content words searched from their sentence)."""
    tokenizer = smollm2.tokenizer
    rewritten = [Claim("Darwin was born in Liverpool.", 0), Claim("Leonardo's father was a merchant.", 3)]
    for bio in SMOLLM2_BIOS:
        ids = tokenizer(bio, add_special_tokens=False)["input_ids"]
        pieces = token_pieces(tokenizer, ids)
        answer = "".join(pieces)
        claims = get_splitter("sentences").split(answer)
        starts = [s.start for s in get_splitter("sentences", clauses="false").split(answer)]
        extra = [c for c in rewritten if c.text.split()[0].rstrip("'s") in answer]
        aligned = align_claims([*claims, *extra], answer, pieces, starts)
        assert len(claims) >= 5 and all(a is not None for a in aligned)
        for claim, tokens in zip([*claims, *extra], aligned, strict=True):
            text = tokenizer.decode(ids[tokens[0] : tokens[-1] + 1]).lower()
            assert all(w in text for w in content_words(claim.text)), (claim.text, text)
