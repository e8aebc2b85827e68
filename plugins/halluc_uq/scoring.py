"""`halluc uq score`: one batched greedy decode (the decoder of `calibrate score`), then every
chosen estimator on each answer, journaled per sample."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from halluc_signals import Estimator, answer_scores
from halluc_uq.extras import extras_journal, verbalized_journal
from halluc_uq.sampling import SamplingConfig, make_sample_judge, samples_journal
from ucli.data import PromptPair

UQ_SCHEMA = "halluc.uq.scores"


def questions(*, benchmark: str | None, data: Path | None, split: str, limit: int | None, seed: int,
              benchmark_options: dict[str, Any]) -> tuple[list[PromptPair], Callable[[PromptPair, str], bool], str]:  # fmt: skip
    """The prompts (as the benchmark sends them to a chat model), the benchmark's judge, and where
    they came from: a registered benchmark's split, or your prompt/reference file (judged by `local`)."""
    from halluc_benchmarks import get_benchmark, judged_pairs, verdict_options
    from ucli.errors import BadInput

    if (benchmark is None) == (data is None):
        raise BadInput("give --benchmark NAME or --data FILE (one of them)")
    given = {k: v for k, v in benchmark_options.items() if v is not None}
    if data is not None:
        bench, split, source = (
            get_benchmark("local", data_file=data, metric=given.get("metric"), **verdict_options(given)),
            "test",
            str(data),
        )
    else:
        bench, source = get_benchmark(benchmark, **given), f"{benchmark}/{split}"
    pairs, judge = judged_pairs(bench, bench.load(split, limit=limit, seed=seed))
    return pairs, judge, source


def score_estimators(
    lm: Any,
    pairs: list[PromptPair],
    *,
    estimators: list[Estimator],
    journal_path: Path,
    resume: bool = False,
    config: Any = None,
    heads: dict[int, int] | None = None,
    judge: Callable[[PromptPair, str], bool] | None = None,
    run_config: dict[str, Any] | None = None,
    given: dict[str, tuple[str, list[int] | None]] | None = None,
    sampling: SamplingConfig | None = None,
    seed: int = 0,
    progress: Callable[[int], None] = lambda n: None,
    replicas: Any = None,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Each pair's scored record (`halluc_signals.score`; with `given`, existing answers scored by
    teacher forcing) with `uq`: every estimator's value (None for an empty answer), in the pairs'
    order. Only the stages the chosen estimators need run (`halluc_signals.resolve`): the decode,
    then for the built-ins the greedy answers' extras and the samples with their judgments
    (`halluc_uq.stages`), each journaled beside `journal_path` (`stage_journals`). With `replicas`
    (`ucli.executor.Replicas`) the decode and the sampling run there; the extras, the teacher
    forcing of `given` answers and every judge run here (on the model `lm`). `force` resumes
    journals of another configuration (a warning)."""
    from halluc_signals import ScoreConfig, StageRun, resolve

    config, sampling = config or ScoreConfig(), sampling or SamplingConfig()
    plan = resolve(estimators)
    sampling.check(sampled="samples" in {s.name for s in plan}, judged=uses_judge(estimators))
    # the judge loads before the decode: a judge that cannot load must not strand a decoded journal
    equivalence = make_sample_judge(sampling, str(lm.device)) if uses_judge(estimators) else None
    run = StageRun(lm, pairs, estimators, journal_path, resume=resume, force=force, options={
        "config": config, "heads": heads, "judge": judge, "given": given, "sampling": sampling, "seed": seed,
        "equivalence": equivalence, "progress": progress, "replicas": replicas,
        "run_config": {**(run_config or {}), "estimators": [e.name for e in estimators]}})  # fmt: skip
    for stage in plan:
        stage.run(run)
    for record in run.records:
        record["uq"] = answer_scores(record, estimators)
    return run.records


def uses_judge(estimators: list[Estimator]) -> bool:
    """Whether a chosen estimator asks the equivalence judge (clusters, relevance or alternatives)."""
    return any(e.needs & {"judge", "relevance", "alternatives", "consistency"} for e in estimators)


def stages(estimators: list[Estimator]) -> list[str]:
    """The names of the stages `estimators` need, in the order they run."""
    from halluc_signals import resolve

    return [s.name for s in resolve(estimators)]


def stage_journals(journal_path: Path) -> tuple[Path, ...]:
    """The decode's journal and, beside it, those of the extras, the samples and the verbalized
    confidences."""
    return (
        journal_path,
        extras_journal(journal_path),
        samples_journal(journal_path),
        verbalized_journal(journal_path),
    )


GENERATION_FIELDS = ("completion", "generation", "output", "response")


def read_generations(
    path: Path, metric: str | None = None
) -> tuple[list[PromptPair], dict[str, tuple[str, list[int] | None]], Callable[[PromptPair, str], bool], dict[str, bool]]:  # fmt: skip
    """Answers that already exist, one record each: `prompt` (or question/input/query), the
    answer as `completion` (or generation/output/response), optional `id`, `reference` (judged
    by the `local` benchmark's rules, `metric` text or number), `correct` (your own verdict, which
    wins) and `token_ids` (the answer's ids as generated; else the text is tokenized)."""
    from ucli.data import PROMPT_FIELDS, parse_verdict, read_records, validate
    from ucli.errors import BadInput

    pairs, given, verdicts = [], {}, {}
    for i, rec in enumerate(read_records(path)):
        d = rec.data
        prompt = next((d[k] for k in PROMPT_FIELDS if k in d), None)
        answer = next((d[k] for k in GENERATION_FIELDS if k in d), None)
        if prompt is None or answer is None:
            missing, names = (
                ("prompt", PROMPT_FIELDS) if prompt is None else ("completion", GENERATION_FIELDS)
            )
            raise BadInput(f"{rec.loc}: field '{missing}' is missing (expected one of: {', '.join(names)})")
        pair = validate(
            PromptPair,
            {"id": str(d.get("id", i)), "prompt": prompt, "reference": d.get("reference")},
            rec.loc,
        )
        if pair.id in given:
            raise BadInput(f"{rec.loc}: field 'id': duplicate id '{pair.id}'")
        pairs.append(pair)
        given[pair.id] = (str(answer), _token_ids(d.get("token_ids"), rec.loc))
        if d.get("correct") not in (None, ""):  # an empty cell: no verdict of yours, the judge decides
            verdicts[pair.id] = parse_verdict(d["correct"], rec.loc)
    return pairs, given, reference_judge(path, metric), verdicts


def reference_judge(path: Path, metric: str | None = None) -> Callable[[PromptPair, str], bool]:
    """`(pair, answer) -> correct` against the pair's own reference, by the `local` benchmark's
    rules (`metric` text or number): how answers that exist are judged."""
    from halluc_benchmarks import Sample, get_benchmark

    bench = get_benchmark(
        "local", data_file=path, metric=metric
    )  # its rules only: the file is read by the caller
    return lambda pair, answer: bench.score(Sample(pair.id, pair.prompt, pair.reference), answer).correct


def _token_ids(value: Any, loc: str) -> list[int] | None:
    """An answer's token ids as generated: a list of non-negative integers (None: tokenize the text)."""
    from ucli.errors import BadInput

    if value is None or value == "":
        return None
    if not isinstance(value, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value
    ):
        raise BadInput(
            f"{loc}: field 'token_ids': expected a list of token ids (integers >= 0), found {value!r}"
        )
    return value
