"""The shared observed decode: greedy answers (or given ones, teacher-forced) with every per-token
statistic the estimators read and RAUQ from attention captured in the same pass, one journal
record per answer (`score`). `calibrate score`, `uq score` and the demo all run this."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from halluc_signals.attention import capture_previous_token_attention
from halluc_signals.heads import parse_layers
from halluc_signals.rauq import check_alpha, default_alpha, entropy_log_confidence, rauq_scores
from ucli.data import PromptPair
from ucli.errors import BadInput
from ucli.executor import Executor, Replicas
from ucli.generation import generate
from ucli.journal import Journal
from ucli.models import LoadedModel, chat_prompt

Judge = Callable[[PromptPair, str], bool]  # is this answer to this pair right?


def torch_stack(tensors: list) -> Any:
    """Captured per-step [B, H] tensors as one numpy array [steps, B, H]."""
    import torch

    return torch.stack(tensors).double().cpu().numpy()


def score_pairs(
    lm: LoadedModel,
    pairs: list[PromptPair],
    journal: Journal,
    layers: list[int],
    alpha: float,
    heads: dict[int, int] | None,
    judge: Judge | None,
    max_new_tokens: int = 32,
    batch_size: int = 8,
    advance: Callable[[int], None] = lambda n: None,
    replicas: Any = None,
) -> None:
    """Greedy-decode every pair not yet in the journal and append its scored record, batch by batch
    (`score_batch`), here or on `replicas` (`ucli.executor.Replicas`). Batches are fixed slices of
    `pairs`, and one with any unfinished pair runs again whole, so a resumed run decodes exactly
    the batches an unbroken one does, wherever they run; only this process journals."""
    advance(len(journal.done & {p.id for p in pairs}))
    batches = [batch for _, batch in journal.todo_batches(pairs, batch_size)]
    replicas = replicas or Replicas(Executor(), lm)
    for records in replicas.map(score_batch, batches, layers, alpha, heads, judge, max_new_tokens):
        advance(journal.append_new(records))


def score_batch(
    lm: LoadedModel, batch: list[PromptPair], layers: list[int], alpha: float, heads: dict[int, int] | None,
    judge: Judge | None, max_new_tokens: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """One batch's scored records. The previous-token attention is captured during the KV-cached
    decode itself (the last entry of each step's row, on the selected layers only), so scoring
    needs no second pass."""
    import numpy as np

    with capture_previous_token_attention(lm.model, layers, "last") as captured:
        gens = generate(lm, [chat_prompt(lm.tokenizer, p.prompt) for p in batch], max_new_tokens)
    # Step k >= 1 fed token y_k and produced y_{k+1}: its last entry is a(k+1). Step 0 is the prefill.
    steps = {layer: torch_stack(captured[layer]) for layer in layers}  # [steps, B, H]
    records = []
    for b, (pair, gen) in enumerate(zip(batch, gens, strict=True)):
        n = len(gen["token_ids"])
        attn = None  # previous-token attention [layers, H, n]; none for an empty answer
        if n:
            attn = np.zeros((len(layers), steps[layers[0]].shape[2], n))
            for j, layer in enumerate(layers):
                attn[j, :, 1:] = steps[layer][1:n, b, :].T
        view = TokenView(gen["token_ids"], gen["logprobs"], gen["entropies"], gen["margins"], attn)
        record = scored_record(lm, pair, gen["answer"], view, layers, alpha, heads, judge)
        records.append({**record, "finish_reason": gen["finish_reason"]})
    return records


@dataclass
class TokenView:
    """What one answer's tokens give a scorer, from a decode or from teacher forcing."""

    token_ids: list[int]
    logprobs: list[float]
    entropies: list[float]
    margins: list[float]
    attn: Any  # previous-token attention [layers, H, n]; None for an empty answer


def scored_record(
    lm: LoadedModel, pair: PromptPair, answer: str, view: TokenView, layers: list[int], alpha: float,
    heads: dict[int, int] | None, judge: Judge | None,
) -> dict[str, Any]:  # fmt: skip
    """The record `calibrate score` and `uq score` write for one answer: its tokens and their
    statistics, RAUQ and its entropy variant (same heads and attention), and the verdict."""
    record: dict[str, Any] = {
        "id": pair.id, "prompt": pair.prompt, "completion": answer, "token_ids": list(view.token_ids),
        "token_probs": [math.exp(lp) for lp in view.logprobs], "alpha": alpha,
        "token_logprobs": list(view.logprobs), "token_entropy": list(view.entropies), "token_margin": list(view.margins),
    }  # fmt: skip
    if view.attn is not None and len(view.token_ids):
        r = rauq_scores(view.logprobs, view.attn, layers, alpha, heads)
        # the entropy variant: log(log|V| - H_i) in place of log p(y_i), same heads and attention
        confidence = entropy_log_confidence(view.entropies, lm.fingerprint.vocab_size).tolist()
        record.update(
            rauq_entropy=rauq_scores(confidence, view.attn, layers, alpha, heads).sequence,
            rauq=r.sequence,
            rauq_layers={str(k): v for k, v in r.layers.items()},
            token_rauq=r.tokens,
            heads={str(k): v for k, v in r.heads.items()},
            **attention_score(view.attn, layers, lm.fingerprint.num_layers),
        )
    else:  # an empty answer has no tokens to score
        record.update(
            rauq=None, rauq_entropy=None, rauq_layers={}, token_rauq=[], heads={}, attention_score=None
        )
    if pair.reference is not None and judge is not None:
        record.update(reference=pair.reference, **judged(judge, pair, answer))
    return record


def judged(judge: Judge, pair: PromptPair, answer: str) -> dict[str, Any]:
    """`correct`, and where the judge scores on a continuous quality measure (a benchmark judge
    with a `--correct-if` rule: ROUGE-L, F1, a judge panel) its `quality` and `quality_measure`,
    what `uq report` ranks PRR by."""
    measure = getattr(judge, "quality_measure", None)
    if measure is None:
        return {"correct": int(judge(pair, answer))}
    verdict = judge.verdict(pair, answer)  # type: ignore[attr-defined]
    value = verdict.value if verdict.value == verdict.value else None  # a failed judge gives none
    return {"correct": int(verdict.correct), "quality": value, "quality_measure": measure}


def attention_score(attn: Any, layers: list[int], num_layers: int) -> dict[str, Any]:
    """The attention score of Sriramanan et al. 2024 on the answer's tokens (LM-Polygraph's gen_only):
    -(1/H) sum_h sum_i log(A_h(i, i) + 1e-12) over every head of the captured layer nearest L // 2,
    from the own-key weights the decode already captured (token 1 has none: column 0)."""
    import numpy as np

    j = min(range(len(layers)), key=lambda i: (abs(layers[i] - num_layers // 2), layers[i]))
    weights = np.asarray(attn[j][:, 1:], dtype=np.float64)
    return {
        "attention_score": float(-np.log(weights + 1e-12).sum(axis=1).mean()),
        "attention_score_layer": layers[j],
    }


def score_given(
    lm: LoadedModel,
    items: list[tuple[PromptPair, str, list[int] | None]],
    journal: Journal,
    layers: list[int],
    alpha: float,
    heads: dict[int, int] | None,
    judge: Judge | None,
    batch_size: int = 8,
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    """Answers that already exist (pair, answer text, its token ids or None to tokenize it), scored
    by one teacher-forced pass each: the same record as a decode's, `finish_reason` "given"."""
    from halluc_signals.teacher_forced import teacher_force

    vocab = lm.fingerprint.vocab_size
    # every answer's ids are checked before the first record: a bad id found late would strand a journal
    for pair, _, tokens in items:
        outside = [t for t in tokens or [] if t >= vocab]
        if outside:
            raise BadInput(f"answer '{pair.id}': field 'token_ids': id {outside[0]} is outside the model's "
                           f"vocabulary (0-{vocab - 1})")  # fmt: skip
    todo = [item for item in items if item[0].id not in journal.done]
    advance(len(items) - len(todo))
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        ids = [tokens if tokens is not None else lm.tokenizer(answer, add_special_tokens=False)["input_ids"]
               for _, answer, tokens in batch]  # fmt: skip
        forced = teacher_force(lm, [(lm.prompt_ids(lm.chat_prompt(p.prompt)), c) for (p, _, _), c in zip(batch, ids, strict=True) if c],
                               layers, batch_size)  # fmt: skip
        views = iter(forced)
        for (pair, answer, _), c in zip(batch, ids, strict=True):
            f = next(views) if c else None
            view = (
                TokenView(c, f.token_logprobs.tolist(), f.entropy.tolist(), f.margin.tolist(), f.attn)
                if f
                else TokenView([], [], [], [], None)
            )
            journal.append(
                {
                    **scored_record(lm, pair, answer, view, layers, alpha, heads, judge),
                    "finish_reason": "given",
                }
            )
        advance(len(batch))


def model_alpha(lm: LoadedModel, alpha: float | None) -> float:
    """The alpha to run with: the one given, else the paper's default for the model (0.5 for
    instruct models, which have a chat template; 0.2 for base models)."""
    if alpha is not None:
        return check_alpha(alpha)
    return default_alpha(bool(getattr(lm.tokenizer, "chat_template", None)))


@dataclass(frozen=True)
class ScoreConfig:
    alpha: float | None = None  # None: the model's default
    layers: str | None = None  # without fixed heads; None: the middle third
    max_new_tokens: int = 32
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.alpha is not None:
            check_alpha(self.alpha)


@dataclass
class ScoreResult:
    records: list[dict[str, Any]]  # one per pair, in the pairs' order
    alpha: float
    layers: list[int]


def score(
    lm: LoadedModel,
    pairs: list[PromptPair],
    *,
    journal_path: Path,
    resume: bool = False,
    force: bool = False,
    config: ScoreConfig = ScoreConfig(),
    heads: dict[int, int] | None = None,
    judge: Judge | None = None,
    run_config: dict[str, Any] | None = None,
    given: dict[str, tuple[str, list[int] | None]] | None = None,
    progress: Callable[[int], None] = lambda n: None,
    replicas: Any = None,
) -> ScoreResult:
    """Greedy-decode every pair and score it with RAUQ (fixed `heads`, else per-sequence heads on
    `config.layers`), one journal record per pair, so a killed run resumes where it stopped. The
    journal stays: the caller removes it once the records are safely written elsewhere. `force`
    resumes a journal of another configuration (a warning).

    With `given` (pair id -> answer text and its token ids, or None to tokenize the text), the
    answers are not decoded but scored as they are, by teacher forcing: the same record.

    With `replicas` (`ucli.executor.Replicas`), the decode's batches run there (Ray model
    replicas), and this process alone journals: the same records as a run in one process."""
    from halluc_signals.decode import score_given, score_pairs
    from ucli.journal import Journal

    alpha = model_alpha(lm, config.alpha)
    layers = list(heads) if heads is not None else parse_layers(config.layers, lm.fingerprint.num_layers)
    journal_config = {**(run_config or {}), "alpha": alpha, "layers": layers,
                      "max_new_tokens": config.max_new_tokens, "fingerprint": lm.fingerprint.model_dump()}  # fmt: skip
    with Journal(journal_path, config=journal_config, resume=resume, force=force) as journal:
        if given is not None:
            items = [(p, *given[p.id]) for p in pairs]
            score_given(lm, items, journal, layers, alpha, heads, judge, config.batch_size, progress)
        else:
            score_pairs(lm, pairs, journal, layers, alpha, heads, judge, config.max_new_tokens, config.batch_size,
                        progress, replicas)  # fmt: skip
        by_id = {r["id"]: r for r in journal.records()}
    return ScoreResult([by_id[p.id] for p in pairs], alpha, layers)
