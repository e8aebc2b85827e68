"""`uq score --claims SPLITTER`: each answer's claims, with the answer tokens each rests on and the
value of every chosen estimator that scores claims (`Estimator.claims`) over those tokens.

Per record, `claims`: [{"text", "sentence", "start", "end", "tokens" (aligned token indices, None
when the alignment rule finds none: recorded, never dropped), "uq" ({estimator: value}; None for
an unaligned claim)}]. A local model's token texts come from its tokenizer (`token_pieces`); an
API's are the token strings it returned; an API that returns no tokens leaves every claim
unaligned (its text and span still recorded).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from halluc_signals import Estimator


def claim_records(records: list[dict[str, Any]], *, splitter: Any, estimators: list[Estimator],
                  pieces: Callable[[dict[str, Any]], list[str] | None], judge: Any = None,
                  truth: Callable[[list[tuple[str, str]]], list[tuple[float, float]]] | None = None) -> None:  # fmt: skip
    """Add `claims` to each record in place (see the module); `pieces(record)` gives the answer's
    token texts, or None when it has no tokens; `judge` (the equivalence judge) measures how the
    samples support each claim when a chosen estimator reads that (`claim_support`); `truth` gives
    (log p True, log p False) of (question, claim) items, for `p_true` of each claim."""
    from halluc_signals import claim_view

    scoring = [e for e in estimators if e.claims]
    supported = judge is not None and any("samples" in e.needs for e in scoring)
    asked = truth is not None and any("second-prompt" in e.needs for e in scoring)
    answers = [r.get("completion") or "" for r in records]
    questions = [r.get("prompt", "") for r in records]
    many = getattr(
        splitter, "split_many", None
    )  # a splitter that asks a model asks for the whole run at once
    split = (
        many(answers, questions)
        if many
        else [(splitter.split(a, q), []) for a, q in zip(answers, questions, strict=True)]
    )
    for record, answer, (claims, failures) in zip(records, answers, split, strict=True):
        aligned = _aligned(claims, answer, pieces(record))
        if failures:
            record["claims_failed"] = failures
        truths = _truths(truth, record.get("prompt", ""), [c.text for c in claims]) if asked else {}
        sample_sentences = _sample_sentences(record) if supported else None
        record["claims"] = []
        for claim, tokens in zip(claims, aligned, strict=True):
            support = (
                _support(judge, record.get("prompt", ""), sample_sentences, claim.text) if supported else None
            )
            own = {"p_true": None, "p_false": None, **truths.get(claim.text, {})}  # never the answer's
            view = {**claim_view(record, tokens or [], claim.text), "sample_support": support, **own}
            record["claims"].append(
                {"text": claim.text, "sentence": claim.sentence, "start": claim.start, "end": claim.end,
                 "tokens": tokens, **({"sample_support": support} if supported else {}), **(own if asked else {}),
                 "uq": {e.name: (e.claim_value(view) if tokens or e.claim_compute else None) for e in scoring}}
            )  # fmt: skip


TRUTH_BATCH = 8  # claims per forward pass of the P(True) prompt


def _truths(truth: Callable, question: str, texts: list[str]) -> dict[str, dict[str, float]]:
    """Each distinct claim text's P(True) log-probs, the claim taking the answer's place in the prompt."""
    distinct = list(dict.fromkeys(texts))
    out = {}
    for start in range(0, len(distinct), TRUTH_BATCH):
        chunk = distinct[start : start + TRUTH_BATCH]
        for text, (yes, no) in zip(chunk, truth([(question, t) for t in chunk]), strict=True):
            out[text] = {"p_true": yes, "p_false": no}
    return out


def _sample_sentences(record: dict[str, Any]) -> list[list[str]]:
    """Each sample's sentences (cut once per answer, read by each of its claims)."""
    from halluc_claims import Sentences

    return [
        [c.text for c in Sentences(clauses=False).split(s["answer"])] for s in record.get("samples") or []
    ]


def _support(judge: Any, question: str, cut: list[list[str]] | None, claim: str) -> list[float] | None:
    """Per sample, the judge's highest similarity of the claim to one of the sample's sentences
    (a sample with no sentence supports nothing)."""
    if not cut:
        return None
    flat = [t for sentences in cut for t in sentences]
    sims = list(judge.similarity_to(question, claim, flat)) if flat else []
    out, at = [], 0
    for sentences in cut:
        out.append(float(max(sims[at : at + len(sentences)], default=0.0)))
        at += len(sentences)
    return out


def _aligned(claims: list[Any], answer: str, texts: list[str] | None) -> list[list[int] | None]:
    """The claims' tokens; the answer may be the tokens' text trimmed (a local decode strips it), so
    spans are moved to where the answer starts in that text. No tokens: every claim unaligned."""
    from dataclasses import replace

    from halluc_claims import align_claims

    joined = "".join(texts or [])
    shift = joined.find(answer) if texts and answer else -1
    if shift < 0:
        return [None] * len(claims)
    moved = [c if c.start is None else replace(c, start=c.start + shift, end=c.end + shift) for c in claims]
    starts = None
    if any(c.start is None for c in claims):  # rewritten claims are searched from their sentence's start
        from halluc_claims import Sentences

        starts = [s.start + shift for s in Sentences(clauses=False).split(answer)]
    return align_claims(moved, joined, texts, starts)


def local_pieces(tokenizer: Any) -> Callable[[dict[str, Any]], list[str] | None]:
    """A local record's token texts, from the model's tokenizer."""
    from halluc_claims import token_pieces

    return lambda record: (
        token_pieces(tokenizer, record["token_ids"]) if record.get("token_ids") is not None else None
    )


def api_pieces(record: dict[str, Any]) -> list[str] | None:
    """An API record's token strings (None when the API returned no tokens)."""
    return record.get("tokens")


def claim_verdicts(records: list[dict[str, Any]], *, facts: dict[str, list[str]], judge: str | None,
                   labels: Path | None, embedding_model: str | None = None, embedder: Any = None) -> str | None:  # fmt: skip
    """Each claim's verdict (`halluc_claims.verify`): from `labels`, else by `judge` (`reference`: the
    offline rule; `BACKEND:MODEL`: an LLM fact check; `none`), where `judge` None means the rule when
    any prompt carries reference facts. `embedder`: an embedding judge of `embedding_model` the run
    already loaded, for the rule to reuse. Returns who gave the verdicts (None: nobody)."""
    from halluc_claims import (
        REFERENCE_THRESHOLD,
        ReferenceRule,
        judge_verdicts,
        label_verdicts,
        read_labels,
        reference_verdicts,
    )

    if labels is not None:
        label_verdicts(records, read_labels(labels), f"labels:{labels.name}")
        return f"labels:{labels}"
    judge = judge or ("reference" if any(facts.values()) else "none")
    if judge == "none":
        return None
    if judge == "reference":
        reference_verdicts(records, facts, ReferenceRule(embedding_model=embedding_model, judge=embedder))
        return f"reference rule (threshold {REFERENCE_THRESHOLD})"
    from halluc_judges import FACT_CHECK, Judge

    fact_judge = Judge(judge, FACT_CHECK)
    judge_verdicts(records, facts, fact_judge)
    return fact_judge.name


def prompt_facts(pairs: list[Any]) -> dict[str, list[str]]:
    """Each prompt's reference facts (`facts` in its metadata: a list, or a text cut into sentences)."""
    from halluc_claims import Sentences

    out = {}
    for pair in pairs:
        given = (getattr(pair, "metadata", None) or {}).get("facts")
        if isinstance(given, str):
            given = [c.text for c in Sentences(clauses=False).split(given)]
        if given:
            out[pair.id] = [str(f) for f in given]
    return out
