"""The built-in stages of `halluc uq score` (entry points `halluc.stages`): the greedy decode, the
greedy answers' extras and the K samples with their judgments, each journaled beside the score's
journal. `halluc_signals.resolve` picks the ones the chosen estimators need."""

from __future__ import annotations

from halluc_signals import SINGLE_PASS, Estimator, Stage, StageRun


def _decode(run: StageRun) -> None:
    """The one greedy decode (or, with `given` answers, teacher forcing): the records."""
    from halluc_signals import score

    o = run.options
    scored = score(run.lm, run.pairs, journal_path=run.journal_path, resume=run.resume, force=run.force,
                   config=o["config"], heads=o.get("heads"), judge=o.get("judge"), run_config=o.get("run_config"),
                   given=o.get("given"), progress=o["progress"], replicas=o.get("replicas"))  # fmt: skip
    run.records[:] = scored.records


def _extras(run: StageRun) -> None:
    from halluc_uq.extras import extras_journal, greedy_extras

    o = run.options
    found = greedy_extras(run.lm, run.pairs, run.records, p_true="second-prompt" in run.needs, judge=o["equivalence"],
                          relevance=needs_relevance(run.estimators, sampled=False),
                          alternatives="alternatives" in run.needs, journal_path=extras_journal(run.journal_path),
                          resume=run.resume, batch_size=o["config"].batch_size, progress=o["progress"],
                          force=run.force)  # fmt: skip
    for record in run.records:
        record.update(found[record["id"]])


def _samples(run: StageRun) -> None:
    from halluc_uq.sampling import sample_and_judge, samples_journal

    o = run.options
    found = sample_and_judge(run.lm, run.pairs, config=o["sampling"], judge=o["equivalence"],
                             clusters=any(e.needs >= {"samples", "judge"} for e in run.estimators),
                             relevance=needs_relevance(run.estimators, sampled=True), hidden="hidden" in run.needs,
                             greedy={r["id"]: r["completion"] for r in run.records} if "consistency" in run.needs else None,
                             journal_path=samples_journal(run.journal_path), resume=run.resume, seed=o["seed"],
                             batch_size=o["config"].batch_size, max_new_tokens=o["config"].max_new_tokens,
                             progress=o["progress"], replicas=o.get("replicas"), force=run.force)  # fmt: skip
    for record in run.records:
        record.update(found[record["id"]])


def needs_relevance(estimators: list[Estimator], *, sampled: bool) -> bool:
    """Token relevance of the samples (SAR) or of the greedy answer (TokenSAR)."""
    return any("relevance" in e.needs and ("samples" in e.needs) == sampled for e in estimators)


DECODE = Stage("decode", SINGLE_PASS, _decode, serves=lambda e: True)
EXTRAS = Stage("extras", frozenset({"second-prompt", "alternatives", "relevance", "judge"}), _extras,
               requires=frozenset({"logprobs"}),
               serves=lambda e: bool(e.needs & {"second-prompt", "alternatives"}) or needs_relevance([e], sampled=False))  # fmt: skip
SAMPLES = Stage("samples", frozenset({"samples", "sample-logprobs", "hidden", "judge", "relevance", "consistency"}),
                _samples, requires=frozenset({"logprobs"}), serves=lambda e: "samples" in e.needs)  # fmt: skip


def _verbalized(run: StageRun) -> None:
    from halluc_uq.extras import verbalized_confidences, verbalized_journal

    found = verbalized_confidences(run.lm, run.pairs, run.records, journal_path=verbalized_journal(run.journal_path),
                                   resume=run.resume, batch_size=run.options["config"].batch_size,
                                   progress=run.options["progress"], force=run.force)  # fmt: skip
    for record in run.records:
        record.update(found[record["id"]])


VERBALIZED = Stage("verbalized", frozenset({"verbalized"}), _verbalized, requires=frozenset({"logprobs"}))
