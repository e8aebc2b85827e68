"""The estimators that read K sampled answers (`samples`) and, for most, the equivalence judge's
clusters and similarity matrix (`judge`); `halluc uq score` makes them.

Semantic entropy and its discrete form are `halluc_judges`' formulas (Farquhar et al. 2024), on
the clusters of the judge. The graph estimators of Lin et al. 2023 read the symmetrised
similarity W (K x K, diagonal 1), its degrees d_i = sum_j W_ij and the normalised Laplacian
L = I - D^-1/2 W D^-1/2, as LM-Polygraph computes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from halluc_signals.estimators import Estimator, relevance_weighted_nll

ECCENTRICITY_CUT = (
    0.9  # eigenvectors of L with eigenvalue below this embed the answers (LM-Polygraph's thres)
)


def _enough(r: Mapping[str, Any], key: str) -> bool:
    return len(r.get(key) or []) >= 2


def _sample_loglik(r: Mapping[str, Any]) -> list[float] | None:
    """Each sample's sequence log-likelihood sum_t log p, or None when the samples carry no
    log-probs (an API that returns none) or fewer than two do."""
    if not _enough(r, "samples") or any(s.get("logprobs") is None for s in r["samples"]):
        return None
    kept = [float(sum(s["logprobs"])) for s in r["samples"] if s["logprobs"]]
    return kept if len(kept) >= 2 else None


def _semantic_entropy(r: Mapping[str, Any]) -> float | None:
    """Likelihood-weighted over the samples with tokens (an empty answer has no likelihood)."""
    from halluc_judges import weighted_entropy

    if not _enough(r, "sample_clusters"):
        return None
    kept = [(c, float(np.mean(s["logprobs"])))
            for c, s in zip(r["sample_clusters"], r["samples"], strict=True) if s.get("logprobs")]  # fmt: skip
    return weighted_entropy([c for c, _ in kept], [ll for _, ll in kept]) if kept else None


def _discrete_semantic_entropy(r: Mapping[str, Any]) -> float | None:
    from halluc_judges import discrete_entropy

    return discrete_entropy(r["sample_clusters"]) if _enough(r, "sample_clusters") else None


def _similarity(r: Mapping[str, Any]) -> np.ndarray | None:
    if not _enough(r, "sample_similarity"):
        return None
    w = np.asarray(r["sample_similarity"], dtype=np.float64)
    return (w + w.T) / 2


def _laplacian(w: np.ndarray) -> np.ndarray:
    scale = 1.0 / np.sqrt(w.sum(axis=1))
    return np.eye(len(w)) - scale[:, None] * w * scale[None, :]


def _eigval_laplacian(r: Mapping[str, Any]) -> float | None:
    w = _similarity(r)
    return None if w is None else float(np.clip(1.0 - np.linalg.eigvalsh(_laplacian(w)), 0.0, None).sum())


def _degree_matrix(r: Mapping[str, Any]) -> float | None:
    w = _similarity(r)
    return None if w is None else float((len(w) ** 2 - w.sum()) / len(w) ** 2)


def _eccentricity(r: Mapping[str, Any]) -> float | None:
    w = _similarity(r)
    if w is None:
        return None
    values, vectors = np.linalg.eigh(_laplacian(w))
    embedded = vectors[:, values < ECCENTRICITY_CUT]  # row j: answer j's coordinates
    return float(np.linalg.norm(embedded - embedded.mean(axis=0)))


def _lexical_similarity(r: Mapping[str, Any]) -> float | None:
    """1 - the mean ROUGE-L F1 (rouge-score, Porter stemming) over pairs of samples."""
    if not _enough(r, "samples"):
        return None
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    texts = [s["answer"] for s in r["samples"]]
    pairs = [(a, b) for i, a in enumerate(texts) for b in texts[i + 1 :]]
    return 1.0 - float(np.mean([scorer.score(a, b)["rougeL"].fmeasure for a, b in pairs]))


JUDGED = frozenset({"samples", "judge"})
LIKELY = frozenset({"samples", "sample-logprobs"})  # the samples with their log-probs
SEMANTIC_ENTROPY = Estimator(
    "semantic_entropy", _semantic_entropy, JUDGED | LIKELY,
    reference="Semantic entropy (Farquhar et al. 2024; halluc_judges.weighted_entropy on the judge's clusters)",
    formula="-sum_c P_c log P_c, P_c = sum_(i in c) exp(l_i) / sum_j exp(l_j), l_i mean log p of sample i",
)  # fmt: skip
DISCRETE_SEMANTIC_ENTROPY = Estimator(
    "discrete_semantic_entropy", _discrete_semantic_entropy, JUDGED,
    reference="Discrete semantic entropy (Farquhar et al. 2024): the entropy of the cluster frequencies",
    formula="-sum_c (n_c / K) log(n_c / K)",
)  # fmt: skip
NUM_SEMANTIC_SETS = Estimator(
    "num_semantic_sets", lambda r: float(len(set(r["sample_clusters"]))) if _enough(r, "sample_clusters") else None,
    JUDGED, reference="Number of semantic sets (Lin et al. 2023; LM-Polygraph NumSemSets)",
    formula="the number of clusters among the K samples",
)  # fmt: skip
EIGVAL_LAPLACIAN = Estimator(
    "eigval_laplacian", _eigval_laplacian, JUDGED,
    reference="Sum of eigenvalues of the graph Laplacian (Lin et al. 2023; LM-Polygraph EigValLaplacian)",
    formula="sum_k max(0, 1 - lambda_k(L))",
)  # fmt: skip
DEGREE_MATRIX = Estimator(
    "degree_matrix", _degree_matrix, JUDGED,
    reference="Degree matrix (Lin et al. 2023; LM-Polygraph DegMat)",
    formula="trace(K I - D) / K^2 = 1 - sum_ij W_ij / K^2",
)  # fmt: skip
ECCENTRICITY = Estimator(
    "eccentricity", _eccentricity, JUDGED,
    reference="Eccentricity (Lin et al. 2023; LM-Polygraph Eccentricity, eigenvalue cut 0.9)",
    formula="|| V - mean_j V_j ||_F, V: eigenvectors of L with eigenvalue < 0.9, one row per answer",
)  # fmt: skip
LEXICAL_SIMILARITY = Estimator(
    "lexical_similarity", _lexical_similarity, frozenset({"samples"}),
    reference="Lexical similarity (Fomicheva et al. 2020; LM-Polygraph LexicalSimilarity rougeL, which is this minus 1)",
    formula="1 - mean_(i<j) ROUGE-L F1(s_i, s_j)",
)  # fmt: skip

SAR_TEMPERATURE = 0.001  # t of Duan et al. (LM-Polygraph's): how much a similar sample's probability lends


def _shifted_entropy(r: Mapping[str, Any], nll: Callable[[Mapping[str, Any]], float]) -> float | None:
    """-(1/K) sum_i log(p_i + (1/t) sum_(j != i) W_ij p_j), p_i = exp(-nll(sample i)): SentenceSAR on
    sequence NLLs, SAR on TokenSAR scores. Empty samples have no probability and are left out."""
    w = _similarity(r)
    if w is None:
        return None
    kept = [i for i, s in enumerate(r["samples"]) if s.get("logprobs")]
    if len(kept) < 2:
        return None
    w = w[np.ix_(kept, kept)]
    p = np.exp(-np.array([nll(r["samples"][i]) for i in kept]))
    lent = (w * (1.0 - np.eye(len(w))) * p[None, :]).sum(axis=1) / SAR_TEMPERATURE
    return float(-np.log(lent + p).mean())


def _sentence_sar(r: Mapping[str, Any]) -> float | None:
    return _shifted_entropy(r, lambda s: -sum(s["logprobs"]))


def _sar(r: Mapping[str, Any]) -> float | None:
    if any("relevance" not in s for s in r.get("samples") or []):
        return None
    return _shifted_entropy(r, lambda s: relevance_weighted_nll(s["logprobs"], s["relevance"]))


def _eigenscore(r: Mapping[str, Any]) -> float | None:
    if not _enough(r, "sample_gram"):
        return None
    gram = np.asarray(r["sample_gram"], dtype=np.float64)
    values = np.linalg.eigvalsh(gram + EIGENSCORE_ALPHA * np.eye(len(gram)))
    return float(np.log(np.where(values > 0, values, 1e-10)).mean())


EIGENSCORE_ALPHA = 1e-3  # the ridge of INSIDE (and LM-Polygraph's alpha)
SENTENCE_SAR = Estimator(
    "sentence_sar", _sentence_sar, JUDGED | LIKELY,
    reference="SentenceSAR (Duan et al. 2024; LM-Polygraph SentenceSAR, t = 0.001)",
    formula="-(1/K) sum_i log(p_i + (1/t) sum_(j!=i) W_ij p_j), p_i the sequence probability of sample i",
)  # fmt: skip
SAR = Estimator(
    "sar", _sar, JUDGED | LIKELY | {"relevance"},
    reference="SAR (Duan et al. 2024; LM-Polygraph SAR): SentenceSAR on the TokenSAR-corrected probabilities",
    formula="SentenceSAR with p_i = exp(-TokenSAR(sample i))",
)  # fmt: skip
EIGENSCORE = Estimator(
    "eigenscore", _eigenscore, frozenset({"samples", "hidden"}),
    reference="EigenScore (Chen et al. 2024, INSIDE; LM-Polygraph EigenScore, alpha 1e-3)",
    formula="(1/K) sum_k log lambda_k(Z J_d Z^T + alpha I), Z: the samples' middle-layer states at the last token read",
)  # fmt: skip

KLE_TIME = 0.3  # t of the heat kernel (Nikitin et al. 2024's default, and LM-Polygraph's)


def _kernel_language_entropy(r: Mapping[str, Any]) -> float | None:
    """The von Neumann entropy of the heat kernel of the samples' semantic graph, scaled by log K.
    The graph is LM-Polygraph's W = S + S^T on the judge's similarity S (with an NLI judge's hard
    verdicts, S = entail + neutral / 2, its `entail + 0.5 neutral` over both directions)."""
    if not _enough(r, "sample_similarity"):
        return None
    from scipy.linalg import expm

    s = np.asarray(r["sample_similarity"], dtype=np.float64)
    w = s + s.T
    kernel = expm(-KLE_TIME * (np.diag(w.sum(axis=0)) - w))
    root = np.sqrt(np.diag(kernel)) + 1e-12
    density = kernel / np.outer(root, root) / len(kernel)  # unit trace
    values = np.linalg.eigvalsh((density + density.T) / 2)
    values = values[np.abs(values) > 1e-8]
    return float(-(values * np.log(np.clip(values, 1e-300, None))).sum() / np.log(len(kernel)))


def _mc_sequence_entropy(r: Mapping[str, Any]) -> float | None:
    loglik = _sample_loglik(r)
    return None if loglik is None else -float(np.mean(loglik))


def _dissimilarity(r: Mapping[str, Any]) -> float | None:
    """1 - the mean similarity of the greedy answer to the K samples (CoCoA's consistency term)."""
    sims = r.get("greedy_similarity")
    return None if not sims else float(np.mean(1.0 - np.asarray(sims, dtype=np.float64)))


def _cocoa(confidence: Callable[[Mapping[str, Any]], float]) -> Callable[[Mapping[str, Any]], float | None]:
    def compute(r: Mapping[str, Any]) -> float | None:
        dissimilarity = _dissimilarity(r)
        return None if dissimilarity is None else confidence(r) * dissimilarity

    return compute


KERNEL_LANGUAGE_ENTROPY = Estimator(
    "kernel_language_entropy", _kernel_language_entropy, JUDGED,
    reference="Kernel language entropy (Nikitin et al. 2024; LM-Polygraph KernelLanguageEntropy, t = 0.3, normalized, scaled)",
    formula="VNE(K / K), K = expm(-t L) normalised to unit diagonal, L = D - W, W = S + S^T; VNE(A) = -tr A log A / log K",
)  # fmt: skip
MC_SEQUENCE_ENTROPY = Estimator(
    "mc_sequence_entropy", _mc_sequence_entropy, LIKELY,
    reference="Monte Carlo sequence entropy (Kuhn et al. 2023's predictive entropy; LM-Polygraph MonteCarloSequenceEntropy)",
    formula="-(1/K) sum_i log p(s_i | x), over the K sampled answers",
)  # fmt: skip
CONSISTENT = frozenset({"logprobs", "samples", "consistency"})
COCOA_MSP = Estimator(
    "cocoa_msp", _cocoa(lambda r: -sum(r["token_logprobs"])), CONSISTENT,
    reference="CoCoA (Vashurin et al. 2025, confidence times consistency; LM-Polygraph CocoaMSP)",
    formula="(-sum_t log p(y_t)) * (1/K) sum_i (1 - sim(y, s_i)), y the greedy answer",
)  # fmt: skip
COCOA_PPL = Estimator(
    "cocoa_ppl", _cocoa(lambda r: -float(np.mean(r["token_logprobs"]))), CONSISTENT,
    reference="CoCoA with perplexity as the confidence (Vashurin et al. 2025; LM-Polygraph CocoaPPL)",
    formula="(-(1/N) sum_t log p(y_t)) * (1/K) sum_i (1 - sim(y, s_i))",
)  # fmt: skip

SAMPLED = (SEMANTIC_ENTROPY, DISCRETE_SEMANTIC_ENTROPY, NUM_SEMANTIC_SETS, EIGVAL_LAPLACIAN, DEGREE_MATRIX,
           ECCENTRICITY, LEXICAL_SIMILARITY, SENTENCE_SAR, SAR, EIGENSCORE, KERNEL_LANGUAGE_ENTROPY,
           MC_SEQUENCE_ENTROPY, COCOA_MSP, COCOA_PPL)  # fmt: skip


def _unsupported_share(v: Mapping[str, Any]) -> float | None:
    support = v.get("sample_support")
    return None if not support else float(1.0 - np.mean(support))


# A claim-level estimator only (`level="claim"`): it has no value for a whole answer, so `all` and
# `single-pass` leave it out; name it with --claims. `sample_support` is put in the claim's view by
# `uq score --claims`: for each sample, the judge's highest similarity of the claim to one of the
# sample's sentences.
CLAIM_SUPPORT = Estimator(
    "claim_support", lambda r: None, JUDGED, level="claim", claims=True, claim_compute=_unsupported_share,
    reference="Sampling support (LUQ, Zhang et al. 2024; SelfCheckGPT, Manakul et al. 2023): how many samples support the claim",
    formula="1 - (1/K) sum_i max_(s in sentences(s_i)) sim(claim, s), sim the equivalence judge's",
)  # fmt: skip
