"""K sampled answers per question, and the equivalence judge on them, for the estimators that
need them (`samples`, `judge`). Batches are fixed slices of the question list seeded by their
start, and a batch with any unfinished question is sampled again whole, so a resumed run samples
exactly what an unbroken one does (the rule of `probe generate`). Each question's samples, their
clusters and similarity matrix are journaled as the batch finishes.

Per question the record gains:
- `samples`: [{"answer", "token_ids", "logprobs"}] (K answers, raw-logit log-probabilities);
- with a judge, `sample_clusters` (the greedy clustering of `probe entropy`) and
  `sample_similarity` (K x K in [0, 1], the judge's soft similarity, diagonal 1).
"""

from __future__ import annotations

from collections.abc import Callable
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
        from halluc_probe import JUDGE_KINDS

        if self.samples < 2:
            raise BadInput(f"--samples: at least 2 answers are needed to compare, got {self.samples}")
        if self.temperature <= 0:
            raise BadInput(f"--temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise BadInput(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.equivalence not in JUDGE_KINDS:
            raise BadInput(f"--equivalence: unknown judge '{self.equivalence}' (expected one of: {', '.join(JUDGE_KINDS)})")  # fmt: skip


def samples_journal(journal_path: Path) -> Path:
    """Where the sampling stage journals, beside the decode's journal."""
    return journal_path.with_name(journal_path.name + ".samples")


def sample_and_judge(
    lm: Any,
    pairs: list[PromptPair],
    *,
    config: SamplingConfig,
    judged: bool,
    journal_path: Path,
    resume: bool,
    seed: int,
    batch_size: int,
    max_new_tokens: int,
    progress: Callable[[int], None] = lambda n: None,
) -> dict[str, dict[str, Any]]:
    """Each question's `samples` (and, when `judged`, `sample_clusters` and `sample_similarity`), by id."""
    import torch

    from halluc_probe import make_judge
    from ucli.generation import generate
    from ucli.journal import Journal
    from ucli.models import chat_prompt

    k = config.samples
    journal = Journal(journal_path, config={**asdict(config), "judged": judged, "seed": seed,
                                            "batch_size": batch_size, "max_new_tokens": max_new_tokens},
                      resume=resume)  # fmt: skip
    done = journal.done
    judge = None
    if judged:
        judge = make_judge(config.equivalence, config.nli_model, config.bidirectional, config.min_similarity,
                           config.embedding_model, str(lm.device))  # fmt: skip
    try:
        progress(len(done))
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            if all(p.id in done for p in batch):
                continue
            torch.manual_seed(seed + start)
            prompts = [chat_prompt(lm.tokenizer, p.prompt) for p in batch for _ in range(k)]
            gens = generate(lm, prompts, max_new_tokens, config.temperature, config.top_p)
            for j, pair in enumerate(batch):
                if pair.id in done:
                    continue
                rec: dict[str, Any] = {"id": pair.id, "samples": [
                    {"answer": g["answer"], "token_ids": g["token_ids"], "logprobs": g["logprobs"]}
                    for g in gens[j * k : (j + 1) * k]]}  # fmt: skip
                if judge is not None:
                    rec.update(_judged(judge, pair.prompt, [s["answer"] for s in rec["samples"]]))
                journal.append(rec)
                progress(1)
        return {r["id"]: {key: v for key, v in r.items() if key != "id"} for r in journal.records()}
    finally:
        journal.close()


def _judged(judge: Any, question: str, answers: list[str]) -> dict[str, Any]:
    """One question's clusters (as `probe entropy` forms them) and soft similarity matrix."""
    from halluc_probe import cluster_ids

    same = judge.matrix(question, answers)
    return {
        "sample_clusters": cluster_ids(len(answers), lambda a, b: same[a][b]),
        "sample_similarity": judge.similarity(question, answers).round(6).tolist(),
    }
