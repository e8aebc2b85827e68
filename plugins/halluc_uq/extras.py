"""What some estimators need of the greedy answer beyond its decode, journaled per question beside
the decode's journal (`extras_journal`), in batches of the decode's size:

- `p_true` (need `second-prompt`): log p("True") as the next token when the model is asked, in a
  second prompt, whether its own answer is true (Kadavath et al. 2022; LM-Polygraph's prompt);
- `token_relevance` (need `relevance`): each answer token's relevance, 1 - the judge's similarity
  between the answer and the answer without that token (Duan et al. 2024).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ucli.data import PromptPair

P_TRUE_PROMPT = (
    "Question: {question}\nPossible answer: {answer}\nIs the possible answer:\n (A) True\n (B) False\n"
    "The possible answer is:"
)


def extras_journal(journal_path: Path) -> Path:
    """Where the greedy answers' extras journal, beside the decode's journal."""
    return journal_path.with_name(journal_path.name + ".extras")


def greedy_extras(
    lm: Any,
    pairs: list[PromptPair],
    records: list[dict[str, Any]],
    *,
    p_true: bool,
    judge: Any,
    journal_path: Path,
    resume: bool,
    batch_size: int,
    progress: Callable[[int], None] = lambda n: None,
) -> dict[str, dict[str, Any]]:
    """Each answer's `p_true` (when asked) and `token_relevance` (when a `judge` is given), by id;
    `records` are the decode's, in the pairs' order."""
    from halluc_uq.sampling import token_relevance
    from ucli.journal import Journal

    with Journal(journal_path, config={"p_true": p_true, "relevance": judge is not None,
                                       "batch_size": batch_size}, resume=resume) as journal:  # fmt: skip
        done = journal.done
        progress(len(done))
        for start in range(0, len(pairs), batch_size):
            batch = [(p, r) for p, r in zip(pairs[start : start + batch_size], records[start : start + batch_size],
                                            strict=True) if p.id not in done]  # fmt: skip
            if not batch:
                continue
            truth = true_logprobs(lm, [(p.prompt, r["completion"]) for p, r in batch]) if p_true else None
            for i, (pair, record) in enumerate(batch):
                rec: dict[str, Any] = {"id": pair.id}
                if truth is not None:
                    rec["p_true"] = truth[i]
                if judge is not None:
                    rec["token_relevance"] = token_relevance(
                        judge, lm.tokenizer, pair.prompt, record["token_ids"]
                    )
                journal.append(rec)
                progress(1)
        return {r["id"]: {key: v for key, v in r.items() if key != "id"} for r in journal.records()}


def true_logprobs(lm: Any, items: list[tuple[str, str]]) -> list[float]:
    """log p("True") as the first token of the model's reply to `P_TRUE_PROMPT` for each (question,
    answer), from raw logits; the prompt goes through the chat template like every other prompt."""
    import torch

    from ucli.models import chat_prompt, right_padded

    true_id = lm.tokenizer("True", add_special_tokens=False)["input_ids"][0]
    seqs = [
        lm.prompt_ids(chat_prompt(lm.tokenizer, P_TRUE_PROMPT.format(question=q, answer=a))) for q, a in items
    ]
    ids, mask = right_padded(seqs, lm.tokenizer.pad_token_id)
    with torch.no_grad():
        logits = lm.model(
            input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), use_cache=False
        ).logits
    last = torch.tensor([len(s) - 1 for s in seqs], device=lm.device)
    rows = torch.log_softmax(logits[torch.arange(len(seqs)), last].float(), dim=-1)
    return rows[:, true_id].double().cpu().tolist()
