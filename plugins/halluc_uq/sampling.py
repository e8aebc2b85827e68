"""K sampled answers per question, and the equivalence judge on them, for the estimators that
need them (`samples`, `judge`). Batches are fixed slices of the question list seeded by their
start, and a batch with any unfinished question is sampled again whole, so a resumed run samples
exactly what an unbroken one does (the rule of `probe generate`). Each question's samples, their
clusters and similarity matrix are journaled as the batch finishes.

Per question the record gains:
- `samples`: [{"answer", "token_ids", "logprobs"}] (K answers, raw-logit log-probabilities);
- with a judge, `sample_clusters` (the greedy clustering of `probe entropy`) and
  `sample_similarity` (K x K in [0, 1], the judge's soft similarity, diagonal 1), and for CoCoA
  `greedy_similarity` (K: the judge's similarity of the greedy answer to each sample);
- for SAR, each sample's token `relevance`; for EigenScore, `sample_gram` (K x K, hidden states).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ucli.data import PromptPair
from ucli.errors import BadInput


@dataclass(frozen=True)
class SamplingConfig:
    samples: int = 5  # K answers per question
    temperature: float = 0.5  # measured on facts/train (docs/uq.md): 1.0 was worse
    top_p: float = 0.9
    equivalence: str = "embedding"  # the judge: nli, embedding or exact
    nli_model: str | None = None
    bidirectional: bool = False  # nli: both directions must entail
    min_similarity: float = 0.9  # embedding: the cosine that makes two answers one
    embedding_model: str | None = None

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise BadInput(f"--temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise BadInput(f"--top-p must be in (0, 1], got {self.top_p}")

    def check(self, *, sampled: bool, judged: bool) -> None:
        """What sampling and the judge need, checked before any work, and only when a chosen
        estimator samples (K) or judges (the judge's options)."""
        from halluc_judges import check_judge

        if sampled and self.samples < 2:
            raise BadInput(f"--samples: at least 2 sampled answers are needed to compare, got {self.samples}")
        if judged:
            check_judge(self.equivalence, self.nli_model)


def samples_journal(journal_path: Path) -> Path:
    """Where the sampling stage journals, beside the decode's journal."""
    return journal_path.with_name(journal_path.name + ".samples")


def make_sample_judge(config: SamplingConfig, device: str) -> Any:
    """The equivalence judge of `config` (`halluc_judges.make_judge`), loaded once per run."""
    from halluc_judges import make_judge

    return make_judge(config.equivalence, config.nli_model, config.bidirectional, config.min_similarity,
                      config.embedding_model, device)  # fmt: skip


def sample_and_judge(
    lm: Any,
    pairs: list[PromptPair],
    *,
    config: SamplingConfig,
    judge: Any,
    clusters: bool,
    relevance: bool,
    hidden: bool,
    journal_path: Path,
    resume: bool,
    seed: int,
    greedy: dict[str, str] | None = None,
    batch_size: int,
    max_new_tokens: int,
    progress: Callable[[int], None] = lambda n: None,
    replicas: Any = None,
    force: bool = False,
) -> dict[str, dict[str, Any]]:
    """Each question's `samples` and, as asked, `sample_clusters` and `sample_similarity` (`clusters`,
    by `judge`), `greedy_similarity` (`greedy`: the greedy answers by id, by `judge`), each sample's `relevance` (`relevance`, by `judge`) and `sample_gram` (`hidden`), by id.
    The batches are sampled here or on `replicas` (`ucli.executor.Replicas`); this process judges
    and journals."""
    from ucli.executor import Executor, Replicas
    from ucli.journal import Journal

    journal = Journal(journal_path, config={**asdict(config), "clusters": clusters, "relevance": relevance,
                                            "hidden": hidden, "consistency": greedy is not None,
                                            "seed": seed, "batch_size": batch_size,
                                            "max_new_tokens": max_new_tokens}, resume=resume, force=force)  # fmt: skip
    done = journal.done
    shards = journal.todo_batches(pairs, batch_size)
    by_id = {p.id: p for p in pairs}
    try:
        progress(len(done))
        replicas = replicas or Replicas(Executor(), lm)
        for sampled in replicas.map(sample_batch, shards, config, hidden, max_new_tokens, seed):
            for rec in sampled:
                if rec["id"] in done:
                    continue
                pair = by_id[rec["id"]]
                rec.update(judged_samples(judge, pair.prompt, [s["answer"] for s in rec["samples"]], clusters=clusters,
                                          greedy=None if greedy is None else greedy[rec["id"]]))  # fmt: skip
                if relevance:
                    for s in rec["samples"]:
                        s["relevance"] = token_relevance(judge, lm.tokenizer, pair.prompt, s["token_ids"])
                journal.append(rec)
                progress(1)
        return {r["id"]: {key: v for key, v in r.items() if key != "id"} for r in journal.records()}
    finally:
        journal.close()


def sample_batch(
    lm: Any, shard: tuple[int, list[PromptPair]], config: SamplingConfig, hidden: bool, max_new_tokens: int, seed: int
) -> list[dict[str, Any]]:  # fmt: skip
    """One batch's K samples per question (and their `sample_gram`), wherever it runs: seeded by
    `seed` plus the batch's start, so the samples do not depend on where or when it ran."""
    import torch

    from ucli.generation import generate
    from ucli.models import chat_prompt

    start, batch = shard
    k = config.samples
    torch.manual_seed(seed + start)
    prompts = [chat_prompt(lm.tokenizer, p.prompt) for p in batch for _ in range(k)]
    with last_token_states(lm, active=hidden) as states:
        gens = generate(lm, prompts, max_new_tokens, config.temperature, config.top_p)
    grams = _hidden_grams(states, gens, k) if hidden else None
    records = []
    for j, pair in enumerate(batch):
        rec: dict[str, Any] = {"id": pair.id, "samples": [
            {"answer": g["answer"], "token_ids": g["token_ids"], "logprobs": g["logprobs"]}
            for g in gens[j * k : (j + 1) * k]]}  # fmt: skip
        if grams is not None:
            rec["sample_gram"] = grams[j].tolist()
        records.append(rec)
    return records


def judged_samples(judge: Any, question: str, answers: list[str], *, clusters: bool = True,
                   greedy: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One question's clusters (as `probe entropy` forms them) and soft similarity matrix (`clusters`),
    and the greedy answer's similarity to each sample (`greedy` given)."""
    from halluc_judges import cluster_ids

    out: dict[str, Any] = {}
    if clusters:
        same = judge.matrix(question, answers)
        out["sample_clusters"] = cluster_ids(len(answers), lambda a, b: same[a][b])
        out["sample_similarity"] = judge.similarity(question, answers).round(6).tolist()
    if greedy is not None:
        out["greedy_similarity"] = judge.similarity_to(question, greedy, answers).round(6).tolist()
    return out


def token_relevance(judge: Any, tokenizer: Any, question: str, token_ids: list[int]) -> list[float]:
    """Each token's relevance to the answer (Duan et al. 2024): 1 - the judge's similarity between the
    answer and the answer without that token. A one-token answer's token carries it all (1)."""
    if len(token_ids) < 2:
        return [1.0] * len(token_ids)
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True).strip()  # noqa: E731
    without = [decode(token_ids[:t] + token_ids[t + 1 :]) for t in range(len(token_ids))]
    return (1.0 - judge.similarity_to(question, decode(token_ids), without)).round(6).tolist()


@contextmanager
def last_token_states(lm: Any, active: bool = True) -> Iterator[list[Any]]:
    """Yield a list that gains, per forward call of the model, the state at the last position of each
    row [B, d] at transformers' `hidden_states[L // 2]` (the output of decoder layer L // 2 - 1): in
    a KV-cached decode, the state of the token each step reads. A forward hook, no extra pass."""
    states: list[Any] = []
    if not active:
        yield states
        return
    layer = lm.model.get_decoder().layers[lm.fingerprint.num_layers // 2 - 1]

    def hook(_module: Any, _args: Any, output: Any) -> None:
        hidden = output[0] if isinstance(output, tuple) else output
        states.append(hidden[:, -1, :].double().cpu())

    handle = layer.register_forward_hook(hook)
    try:
        yield states
    finally:
        handle.remove()


def _hidden_grams(states: list[Any], gens: list[dict[str, Any]], k: int) -> list[Any]:
    """Per question, the K x K Gram matrix Z J_d Z^T of its samples' middle-layer states (INSIDE, Chen
    et al. 2024), J_d centring each row over its d features. Row i of Z is the state of the last token
    sample i was read at while sampling: its last token, or the one before when it was cut at the
    token budget (its last token was never read back), or the prompt's last for an empty sample;
    LM-Polygraph's reading of `generate`'s hidden states."""
    import numpy as np

    z = np.stack([states[min(len(g["token_ids"]), len(states) - 1)][i].numpy() for i, g in enumerate(gens)])
    z = z - z.mean(axis=1, keepdims=True)  # Z J_d: J_d = I - 11^T / d is idempotent
    return [z[i : i + k] @ z[i : i + k].T for i in range(0, len(z), k)]
