"""What some estimators need of the greedy answer beyond its decode, journaled per question beside
the decode's journal (`extras_journal`), in batches of the decode's size:

- `p_true`, `p_false` (need `second-prompt`): log p("True") and log p("False") as the reply's
  first token when the model is asked, in a second prompt, whether its own answer is true
  (Kadavath et al. 2022; LM-Polygraph's prompt);
- `token_relevance` (need `relevance`): each answer token's relevance, 1 - the judge's similarity
  between the answer and the answer without that token (Duan et al. 2024);
- `token_alternatives` (need `alternatives`): per answer token, the chosen token and the most likely
  others, each [id, log p, verdict(chosen word, it), verdict(it, chosen word)] by the judge on the
  bare words (punctuation and spaces stripped), for CCP (Fadeeva et al. 2024).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ucli.data import PromptPair

ALTERNATIVES = 10  # LM-Polygraph's n_alternatives: the chosen token and the 9 most likely others
P_TRUE_PROMPT = (
    "Question: {question}\nPossible answer: {answer}\nIs the possible answer:\n (A) True\n (B) False\n"
    "The possible answer is:"
)


def verbalized_journal(journal_path: Path) -> Path:
    """Where the verbalized confidences journal, beside the decode's journal."""
    return journal_path.with_name(journal_path.name + ".verbalized")


def verbalized_confidences(
    lm: Any, pairs: list[PromptPair], records: list[dict[str, Any]], *, journal_path: Path, resume: bool,
    batch_size: int, progress: Callable[[int], None] = lambda n: None, force: bool = False,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each greedy answer's `verbalized_confidence` (0-100, None when the reply states none) and the
    `verbalized_reply`, by id: the model's greedy reply to `halluc_signals.verbalized`'s prompt."""
    from halluc_signals import CONFIDENCE_TOKENS, confidence_prompt, parse_confidence
    from ucli.generation import generate
    from ucli.journal import Journal
    from ucli.models import chat_prompt

    with Journal(journal_path, config={"verbalized": CONFIDENCE_TOKENS, "batch_size": batch_size}, resume=resume,
                 force=force) as journal:  # fmt: skip
        done = journal.done
        progress(len(done))
        todo = [(p, r) for p, r in zip(pairs, records, strict=True) if p.id not in done]
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            prompts = [
                chat_prompt(lm.tokenizer, confidence_prompt(p.prompt, r["completion"])) for p, r in batch
            ]
            for (pair, _), reply in zip(batch, generate(lm, prompts, CONFIDENCE_TOKENS), strict=True):
                journal.append({"id": pair.id, "verbalized_confidence": parse_confidence(reply["answer"]),
                                "verbalized_reply": reply["answer"]})  # fmt: skip
                progress(1)
        return {r["id"]: {key: v for key, v in r.items() if key != "id"} for r in journal.records()}


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
    relevance: bool,
    alternatives: bool,
    journal_path: Path,
    resume: bool,
    batch_size: int,
    progress: Callable[[int], None] = lambda n: None,
    force: bool = False,
) -> dict[str, dict[str, Any]]:
    """Each answer's `p_true`, `token_relevance` and `token_alternatives`, as asked, by id; `records`
    are the decode's, in the pairs' order."""
    from halluc_uq.sampling import token_relevance
    from ucli.journal import Journal

    with Journal(journal_path, config={"p_true": p_true, "relevance": relevance, "alternatives": alternatives,
                                       "batch_size": batch_size}, resume=resume, force=force) as journal:  # fmt: skip
        done = journal.done
        progress(len(done))
        for start in range(0, len(pairs), batch_size):
            batch = [(p, r) for p, r in zip(pairs[start : start + batch_size], records[start : start + batch_size],
                                            strict=True) if p.id not in done]  # fmt: skip
            if not batch:
                continue
            truth = true_logprobs(lm, [(p.prompt, r["completion"]) for p, r in batch]) if p_true else None
            others = (
                top_alternatives(lm, [(p.prompt, r["token_ids"]) for p, r in batch]) if alternatives else None
            )
            for i, (pair, record) in enumerate(batch):
                rec: dict[str, Any] = {"id": pair.id}
                if truth is not None:
                    rec["p_true"], rec["p_false"] = truth[i]
                if relevance:
                    rec["token_relevance"] = token_relevance(
                        judge, lm.tokenizer, pair.prompt, record["token_ids"]
                    )
                if others is not None:
                    rec["token_alternatives"] = judged_alternatives(judge, lm.tokenizer, others[i])
                journal.append(rec)
                progress(1)
        return {r["id"]: {key: v for key, v in r.items() if key != "id"} for r in journal.records()}


def forced_pass(lm: Any, seqs: list[list[int]], **kwargs: Any) -> Any:
    """One forward pass, without gradients or KV cache, over right-padded `seqs` (exact for causal
    attention: every row's positions read as they would alone)."""
    import torch

    from ucli.models import right_padded

    ids, mask = right_padded(seqs, lm.tokenizer.pad_token_id)
    with torch.no_grad():
        return lm.model(
            input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), use_cache=False, **kwargs
        )


def true_logprobs(lm: Any, items: list[tuple[str, str]]) -> list[tuple[float, float]]:
    """(log p("True"), log p("False")) as the first token of the model's reply to `P_TRUE_PROMPT` for
    each (question, answer), from raw logits; the prompt goes through the chat template like every
    other prompt. Each word is its tokenizer's first token."""
    import torch

    from ucli.models import chat_prompt

    words = [lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("True", "False")]
    seqs = [
        lm.prompt_ids(chat_prompt(lm.tokenizer, P_TRUE_PROMPT.format(question=q, answer=a))) for q, a in items
    ]
    logits = forced_pass(lm, seqs).logits
    last = torch.tensor([len(s) - 1 for s in seqs], device=lm.device)
    rows = torch.log_softmax(logits[torch.arange(len(seqs)), last].float(), dim=-1)
    return [tuple(row) for row in rows[:, words].double().cpu().tolist()]


def top_alternatives(lm: Any, items: list[tuple[str, list[int]]]) -> list[list[list[tuple[int, float]]]]:
    """Per answer and token, (id, log p) of the chosen token then the `ALTERNATIVES` - 1 most likely
    others, from one teacher-forced pass over prompt + answer (raw logits)."""
    import torch

    from ucli.models import chat_prompt

    prompts = [lm.prompt_ids(chat_prompt(lm.tokenizer, q)) for q, _ in items]
    out: list[list[list[tuple[int, float]]]] = [[] for _ in items]
    if not any(ids for _, ids in items):
        return out
    logits = forced_pass(lm, [p + ids for p, (_, ids) in zip(prompts, items, strict=True)]).logits
    for b, (p, (_, answer)) in enumerate(zip(prompts, items, strict=True)):
        logp = torch.log_softmax(logits[b, len(p) - 1 : len(p) + len(answer) - 1].float(), dim=-1)
        top = logp.topk(ALTERNATIVES, dim=-1)
        for t, chosen in enumerate(answer):
            rest = [
                (i, v)
                for i, v in zip(top.indices[t].tolist(), top.values[t].tolist(), strict=True)
                if i != chosen
            ]
            out[b].append([(chosen, logp[t, chosen].item()), *rest[: ALTERNATIVES - 1]])
    return out


def judged_alternatives(judge: Any, tokenizer: Any, steps: list[list[tuple[int, float]]]) -> list[list[Any]]:
    """Each step's alternatives with the judge's verdict against the chosen word, both directions."""
    import string

    bare = lambda i: tokenizer.decode([i]).strip(string.punctuation + " \n")  # noqa: E731
    pairs = [(bare(alts[0][0]), bare(i)) for alts in steps for i, _ in alts]
    forward, backward = judge.verdicts(pairs), judge.verdicts([(b, a) for a, b in pairs])
    flat = iter(zip(forward, backward, strict=True))
    return [[[i, round(lp, 6), *next(flat)] for i, lp in alts] for alts in steps]
