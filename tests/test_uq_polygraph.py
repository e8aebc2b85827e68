"""halluc's estimators against LM-Polygraph's on the same statistics, and the LM-Polygraph bridge."""

import json

import numpy as np
import pytest

from ucli.testing import require


@pytest.fixture(scope="module")
def polygraph():
    require("lm_polygraph", "pip install 'halluc[polygraph]'")
    import lm_polygraph.estimators as estimators

    return estimators


@pytest.fixture(scope="module")
def scored(tiny_llama, tmp_path_factory):
    """Real records of `uq score --estimators all` on the tiny model (exact judge, K = 4)."""
    from typer.testing import CliRunner

    from ucli.app import app

    folder = tmp_path_factory.mktemp("polygraph")
    data = folder / "q.jsonl"
    rows = [{"id": f"q{i}", "prompt": f"Name a colour, number {i}.", "reference": "red"} for i in range(3)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = folder / "all.jsonl"
    res = CliRunner().invoke(app, ["uq", "score", "--data", str(data), "-m", str(tiny_llama), "--device", "cpu",
                                   "--max-new-tokens", "5", "--samples", "4", "--temperature", "1.0",
                                   "--equivalence", "exact", "--estimators", "all", "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    return [json.loads(x) for x in out.read_text().splitlines()]


# halluc's estimator -> (LM-Polygraph's class, its arguments, the offset: ours = theirs + offset)
SAME_ON_THE_SAME_INPUTS = {
    "msp": ("MaximumSequenceProbability", {}, 0.0),
    "perplexity": ("Perplexity", {}, 0.0),
    "mean_token_entropy": ("MeanTokenEntropy", {}, 0.0),
    "lexical_similarity": ("LexicalSimilarity", {"metric": "rougeL"}, 1.0),
    "eigval_laplacian": ("EigValLaplacian", {}, 0.0),
    "degree_matrix": ("DegMat", {}, 0.0),
    "eccentricity": ("Eccentricity", {}, 0.0),
    "discrete_semantic_entropy": ("SemanticEntropy", {"class_probability_estimation": "frequency"}, 0.0),
    "token_sar": ("TokenSAR", {}, 0.0),
    "sentence_sar": ("SentenceSAR", {}, 0.0),
    "sar": ("SAR", {}, 0.0),
    "ccp": ("ClaimConditionedProbability", {}, 1.0),
    "mc_sequence_entropy": ("MonteCarloSequenceEntropy", {}, 0.0),
    "cocoa_msp": ("CocoaMSP", {}, 0.0),
    "cocoa_ppl": ("CocoaPPL", {}, 0.0),
    "kernel_language_entropy": ("KernelLanguageEntropy", {}, 0.0),
}


# where an empty sample (EOS first) has no probability for halluc and probability 1 for LM-Polygraph
LEAVE_EMPTY_SAMPLES_OUT = ("sentence_sar", "sar", "mc_sequence_entropy")


def _without_empty_samples(record):
    kept = [i for i, s in enumerate(record["samples"]) if s["token_ids"]]
    w = np.asarray(record["sample_similarity"])[np.ix_(kept, kept)]
    return {**record, "samples": [record["samples"][i] for i in kept], "sample_similarity": w.tolist()}


def test_halluc_estimators_equal_lm_polygraphs_on_the_same_statistics(polygraph, scored):
    from halluc_uq.polygraph import polygraph_value

    assert any(not s["token_ids"] for r in scored for s in r["samples"])  # the case that differs is here
    for record in scored:
        assert record["uq"]["ccp"] is not None and len(record["samples"]) == 4
        for ours, (theirs, kwargs, offset) in SAME_ON_THE_SAME_INPUTS.items():
            fed = _without_empty_samples(record) if ours in LEAVE_EMPTY_SAMPLES_OUT else record
            want = polygraph_value(theirs, fed, **kwargs) + offset
            assert record["uq"][ours] == pytest.approx(want, rel=1e-6, abs=1e-9), (ours, theirs)


def test_p_true_is_lm_polygraphs_renormalised_over_true_and_false(polygraph, scored):
    """LM-Polygraph's PTrue is -log p(True) alone; halluc's puts True against False (docs/uq.md)."""
    from halluc_uq.polygraph import polygraph_value

    for record in scored:
        theirs = polygraph_value("PTrue", record)
        assert theirs == pytest.approx(-record["p_true"])
        assert record["uq"]["p_true"] == pytest.approx(
            theirs + np.logaddexp(record["p_true"], record["p_false"])
        )


def test_eigenscore_equals_lm_polygraphs_on_the_embeddings_its_gram_comes_from(polygraph):
    """halluc keeps the K x K Gram matrix of the samples' states, LM-Polygraph the states."""
    from halluc_signals.sampled import EIGENSCORE

    z = np.random.default_rng(2).normal(size=(5, 64))
    centred = z - z.mean(axis=1, keepdims=True)
    ours = EIGENSCORE({"token_ids": [1], "sample_gram": (centred @ centred.T).tolist()})
    assert ours == pytest.approx(polygraph.EigenScore()({"sample_embeddings": [z]})[0], rel=1e-9)


def test_the_bridge_registers_what_halluc_lacks_and_feeds_it_recorded_statistics(polygraph, scored):
    from halluc_signals import registry

    bridged = {n: e for n, e in registry().items() if n.startswith("lmpg_")}
    assert set(bridged) == {"lmpg_monte_carlo_normalized_sequence_entropy", "lmpg_label_prob"}
    for record in scored:
        samples = record["samples"]
        total = [sum(s["logprobs"]) for s in samples]
        shares = np.unique(record["sample_clusters"], return_counts=True)[1] / len(samples)
        want = {
            "lmpg_monte_carlo_normalized_sequence_entropy": -np.mean(
                [t / len(s["token_ids"]) for t, s in zip(total, samples, strict=True) if s["token_ids"]]
            ),
            "lmpg_label_prob": 1 - shares.max(),
        }
        assert {n: record["uq"][n] for n in want} == {n: pytest.approx(v) for n, v in want.items()}
        # the stored record alone gives them again: no second generation
        assert {n: bridged[n](record) for n in want} == pytest.approx({n: record["uq"][n] for n in want})


def test_kernel_language_entropy_on_nli_verdicts_equals_lm_polygraphs(polygraph):
    """On hard NLI verdicts, halluc's graph S + S^T with S = entail + neutral / 2 is LM-Polygraph's
    entail + 0.5 neutral over both directions."""
    from halluc_signals.sampled import KERNEL_LANGUAGE_ENTROPY

    rng = np.random.default_rng(4)
    for k in (2, 3, 5):
        verdict = rng.integers(0, 3, size=(k, k))  # 0 entail, 1 neutral, 2 contradict
        np.fill_diagonal(verdict, 0)
        entail, contra = (verdict == 0).astype(float), (verdict == 2).astype(float)
        s = entail + 0.5 * (verdict == 1)
        ours = KERNEL_LANGUAGE_ENTROPY({"completion": "x", "sample_similarity": s.tolist()})
        theirs = polygraph.KernelLanguageEntropy()(
            {"semantic_matrix_entail": [entail], "semantic_matrix_contra": [contra]}
        )
        assert ours == pytest.approx(theirs[0], rel=1e-9, abs=1e-12)


def test_claim_level_estimators_equal_lm_polygraphs_on_the_same_claims_tokens_and_alternatives(
    polygraph, scored
):
    """A claim's view of a record (its tokens) scored by halluc's estimators marked `claims` equals
    LM-Polygraph's claim-level estimators on the same aligned tokens; CCP plus 1 as at sequence
    level. LM-Polygraph's stop-word rule (a stop word's alternatives all entail) is given `never`:
    on a white-box model its alternatives are token ids, which its rule never counts as stop words."""
    from lm_polygraph.estimators.claim.claim_conditioned_probability import ClaimConditionedProbabilityClaim
    from lm_polygraph.estimators.claim.max_probability import MaximumClaimProbability
    from lm_polygraph.estimators.claim.perplexity import PerplexityClaim
    from lm_polygraph.estimators.claim.token_entropy import MaxTokenEntropyClaim
    from lm_polygraph.stat_calculators.extract_claims import Claim

    from halluc_signals import claim_estimators, claim_view
    from halluc_uq.polygraph import polygraph_stats

    theirs = {"ccp": (ClaimConditionedProbabilityClaim(is_stopword=lambda w: False), 1.0),
              "msp": (MaximumClaimProbability(), 0.0), "perplexity": (PerplexityClaim(), 0.0),
              "max_token_entropy": (MaxTokenEntropyClaim(), 0.0)}  # fmt: skip
    assert set(theirs) <= set(claim_estimators())
    checked = 0
    for record in scored:
        n = len(record["token_ids"])
        if n < 3:
            continue
        parts = [[0, 1], list(range(1, n)), [n - 1]]  # overlapping and one-token claims
        stats = {**polygraph_stats(record), "claims": [[Claim("c", "s", p) for p in parts]]}
        for name, (estimator, offset) in theirs.items():
            ours = [claim_estimators()[name](claim_view(record, p, "c")) for p in parts]
            assert ours == pytest.approx([v + offset for v in estimator(stats)[0]], rel=1e-6, abs=1e-9), name
        checked += 1
    assert checked >= 2
