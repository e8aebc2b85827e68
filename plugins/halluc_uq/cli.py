"""`halluc uq`: score answers with every uncertainty estimator in one decode, then compare them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from ucli import console, options

SAMPLING_TEMPERATURE = 0.5  # = halluc_uq.SamplingConfig's default, measured on facts/train (docs/uq.md)

app = typer.Typer(help="Uncertainty estimators: score once, compare every method with paired statistics.",
                  no_args_is_help=True)  # fmt: skip


@app.command("list")
def list_(json_out: bool = options.JSON) -> None:
    """The installed estimators: what each needs, its trigger signal if it has one, and its reference."""
    from halluc_signals import registry

    rows = [{"name": e.name, "needs": sorted(e.needs), "level": e.level, "signal": e.signal or None,
             "fires": e.fires if e.step else None, "reference": e.reference, "formula": e.formula}
            for e in registry().values()]  # fmt: skip
    if json_out:
        console.print_json({"estimators": rows})
        return
    table = [(r["name"], f"{r['signal']} ({r['fires']})" if r["signal"] else "-", ", ".join(r["needs"]), r["reference"])
             for r in rows]  # fmt: skip
    console.out.print(console.table("uncertainty estimators", ["name", "--signal", "needs", "reference"], table,
                                    caption="--signal: the per-token step that `calibrate threshold` and `control` "
                                    "trigger on (fires above or below theta)"))  # fmt: skip


@app.command()
@options.bundled
def score(
    benchmark: str | None = typer.Option(
        None, "--benchmark", "-b", help="Registered benchmark (see `halluc benchmarks list`)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Your prompt/reference file instead of a benchmark."
    ),
    generations: Path | None = typer.Option(
        None,
        "--generations",
        help="Score answers that exist (prompt, completion[, reference, correct, token_ids]) instead of decoding.",
    ),
    split: str = typer.Option("test", "--split", help="Benchmark split."),
    estimators: str = typer.Option(
        "single-pass",
        "--estimators",
        help="Comma list of estimator names (`halluc uq list`), single-pass (one greedy decode feeds them) "
        "or all (adds the sampling ones: K samples and the judge).",
    ),
    output: Path = options.output("scores.jsonl to write (journal beside it while running).", required=True),
    model: str = options.MODEL,
    api: dict[str, Any] = options.API,
    ensemble: Path | None = typer.Option(
        None, "--ensemble", help="Also score with a saved ensemble (`uq ensemble fit`): one more estimator."
    ),
    claims: str | None = typer.Option(
        None,
        "--claims",
        metavar="<splitter>",
        help="Also split each answer into claims and score each claim's tokens with the chosen estimators that "
        "score claims: sentences (offline), llm,model=BACKEND:MODEL, or a plugin's splitter; options as ,key=value.",
    ),
    claim_judge: str | None = typer.Option(
        None,
        "--claim-judge",
        help="Each claim's verdict: reference (an offline rule against the prompt's reference facts; the default "
        "when prompts carry some), BACKEND:MODEL (an LLM fact check, given the facts when there are some), or none.",
    ),
    claim_labels: Path | None = typer.Option(
        None, "--claim-labels", help="Claim verdicts from a labels file (JSONL: id, claim, verdict) instead."
    ),
    from_pilot: Path | None = typer.Option(
        None,
        "--from-pilot",
        help="Score the answers a `halluc pilot run` has (with its --samples): the run folder (one variant) "
        "or one results/VARIANT.jsonl. No request is sent.",
    ),
    heads_file: Path | None = typer.Option(
        None, "--heads", help="Fixed RAUQ heads (heads.json); default: per-sequence heads."
    ),
    alpha: float | None = typer.Option(
        None, "--alpha", help="RAUQ alpha in [0, 1] (default: 0.5 instruct, 0.2 base)."
    ),
    layers: str | None = typer.Option(
        None, "--layers", help="RAUQ layers without --heads, e.g. 10-20 (default: middle third)."
    ),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", min=1, help="Tokens per answer."),
    batch_size: int = options.batch_size(8, "Sequences per forward pass."),
    limit: int | None = options.limit("N questions, drawn with --seed (default: all)."),
    samples: int = options.samples(5, "Sampled answers per question (K), for the estimators that need them."),
    temperature: float = options.temperature(SAMPLING_TEMPERATURE),
    top_p: float = options.TOP_P,
    equivalence: str = options.EQUIVALENCE,
    nli_model: str | None = options.NLI_MODEL,
    bidirectional: bool = options.BIDIRECTIONAL,
    min_similarity: float = options.MIN_SIMILARITY,
    embedding_model: str | None = options.EMBEDDING_MODEL,
    resume: bool = options.RESUME,
    force: bool = options.FORCE,
    load: Any = options.LOAD,
    seed: int = options.SEED,
    bench_options: dict[str, Any] = options.BENCHMARK,
    runner: Any = options.SCALE_OUT,
    json_out: bool = options.JSON,
) -> None:
    """Greedy-decode every question once (batched) and score each answer with every chosen estimator
    (sampling K answers and judging them only when a chosen estimator needs it)."""
    from halluc_uq.sampling import SamplingConfig

    sampling = SamplingConfig(samples=samples, temperature=temperature, top_p=top_p, equivalence=equivalence,
                              nli_model=nli_model, bidirectional=bidirectional, min_similarity=min_similarity,
                              embedding_model=embedding_model)  # fmt: skip
    _check_claim_verdicts(claims, claim_judge, claim_labels)
    run = _Run(benchmark=benchmark, data=data, generations=generations, split=split, limit=limit, seed=seed,
               bench_options=bench_options, estimators=estimators, model=model, load=load, sampling=sampling,
               max_new_tokens=max_new_tokens, batch_size=batch_size, output=output, resume=resume, force=force,
               json_out=json_out, ensemble=ensemble, claims=_splitter(claims), claim_judge=claim_judge,
               claim_labels=claim_labels)  # fmt: skip
    if api["backend"] or from_pilot:
        white_box = {"--heads": heads_file, "--alpha": alpha, "--layers": layers, "--generations": generations,
                     "--executor": None if runner.kind == "local" else runner.kind}  # fmt: skip
        return _score_black_box(run, api=api, from_pilot=from_pilot, white_box=white_box)
    _score_local(run, heads_file=heads_file, alpha=alpha, layers=layers, runner=runner)


@dataclass(frozen=True)
class _Run:
    """The options of `uq score` that every way of scoring shares."""

    benchmark: str | None
    data: Path | None
    generations: Path | None
    split: str
    limit: int | None
    seed: int
    bench_options: dict[str, Any]
    estimators: str
    model: str
    load: Any
    sampling: Any
    max_new_tokens: int
    batch_size: int
    output: Path
    resume: bool
    force: bool
    json_out: bool
    ensemble: Path | None
    claims: Any  # the claim splitter of --claims, or None
    claim_judge: str | None = None
    claim_labels: Path | None = None
    facts: dict[str, list[str]] = field(default_factory=dict)  # each prompt's reference facts, once read

    def questions(self, generations: Path | None = None) -> tuple:
        from halluc_uq.claims import prompt_facts

        found = _inputs(
            self.benchmark, self.data, generations, self.split, self.limit, self.seed, self.bench_options
        )
        self.facts.update(prompt_facts(found[0]))
        return found

    def journal(self) -> Path | None:
        """The journal to write, or None (with the message) when the output is complete already."""
        from ucli.journal import preflight

        journal_path = preflight(self.output, self.resume, folder=False, force=self.force)
        if journal_path is None:
            console.result({"output": str(self.output), "complete": True}, self.json_out,
                           lambda: f"{self.output}: already complete")  # fmt: skip
        return journal_path

    def finish(self, records: list[dict[str, Any]], verdicts: dict[str, bool], journal_path: Path,
               ensemble_doc: Any, chosen: list[Any], source: str, inputs: list[Any], pieces: Any,
               device: str = "cpu", truth: Any = None, **prov: Any) -> None:  # fmt: skip
        """Split the answers into claims where asked, write the scores and say what was scored."""
        if self.claims is not None:
            from halluc_uq.claims import claim_records, claim_verdicts
            from halluc_uq.sampling import make_sample_judge

            sampled = any(e.claims and "samples" in e.needs for e in chosen)
            judge = (
                make_sample_judge(self.sampling, device) if sampled else None
            )  # the rule reuses an embedding one
            claim_records(
                records, splitter=self.claims, estimators=chosen, pieces=pieces, judge=judge, truth=truth
            )
            verdicts_by = claim_verdicts(records, facts=self.facts, judge=self.claim_judge, labels=self.claim_labels,
                                         embedding_model=self.sampling.embedding_model,
                                         embedder=judge if hasattr(judge, "embed") else None)  # fmt: skip
            prov["config"].update(claims=self.claims.name, claim_verdicts=verdicts_by)
        _write_scores(self.output, records, verdicts, journal_path, ensemble_doc, seed=self.seed,
                      inputs=[*inputs, *([self.ensemble] if self.ensemble else [])], **prov)  # fmt: skip
        judged = [r for r in records if "correct" in r]
        accuracy = sum(r["correct"] for r in judged) / len(judged) if judged else None
        said = f", accuracy {accuracy:.3f}" if accuracy is not None else ", no verdicts"
        console.result({"output": str(self.output), "n": len(records), "accuracy": accuracy,
                        "estimators": [e.name for e in chosen]}, self.json_out,
                       lambda: f"{len(records)} answers from {source}{said}, {len(chosen)} estimators -> {self.output}\n"
                       f"{console.next_step('uq', 'report', self.output)}")  # fmt: skip


def _score_local(
    run: _Run, *, heads_file: Path | None, alpha: float | None, layers: str | None, runner: Any
) -> None:
    """`uq score -m MODEL`: one batched decode of a loaded model, and the passes the estimators need."""
    from halluc_signals import ScoreConfig, check_heads_file, choose, load_heads
    from halluc_uq.scoring import score_estimators, stages, uses_judge
    from ucli.executor import model_replicas
    from ucli.models import load_model

    chosen = choose(run.estimators)
    ensemble_doc = _ensemble(run.ensemble, chosen)
    config = ScoreConfig(
        alpha=alpha, layers=layers, max_new_tokens=run.max_new_tokens, batch_size=run.batch_size
    )
    passes = stages(chosen)
    run.sampling.check(sampled="samples" in passes, judged=uses_judge(chosen))
    heads_doc = check_heads_file(heads_file) if heads_file else None  # read once, before any model
    journal_path = run.journal()
    if journal_path is None:
        return
    pairs, judge, source, given, verdicts = run.questions(run.generations)
    _unseen(ensemble_doc, source, pairs)
    lm = load_model(run.model, run.load, weights=runner.kind == "local" or "extras" in passes or given is not None)  # fmt: skip
    heads = load_heads(heads_file, lm.fingerprint, heads_doc)[0] if heads_file else None
    run_config = {"model": run.model, "source": source, "limit": run.limit, "seed": run.seed,
                  "heads": str(heads_file) if heads_file else None,
                  "sampling": vars(run.sampling) if len(passes) > 1 else None}  # fmt: skip
    with console.progress(", ".join(passes), total=len(pairs) * len(passes)) as advance, \
            model_replicas(runner, lm, run.model, run.load) as replicas:  # fmt: skip
        records = score_estimators(lm, pairs, estimators=chosen, journal_path=journal_path, resume=run.resume,
                                   config=config, heads=heads, judge=judge, run_config=run_config, given=given,
                                   sampling=run.sampling, seed=run.seed, progress=advance, replicas=replicas,
                                   force=run.force)  # fmt: skip
    inputs = [p for p in (run.data, run.generations, run.bench_options.get("data_file"), heads_file) if p]
    from halluc_uq.claims import local_pieces
    from halluc_uq.extras import true_logprobs

    run.finish(records, verdicts, journal_path, ensemble_doc, chosen, source, inputs, local_pieces(lm.tokenizer),
               device=str(lm.device), truth=lambda items: true_logprobs(lm, items), model=lm.fingerprint,
               config={**run_config, "estimators": [e.name for e in chosen], **_judged_by(judge)})  # fmt: skip


def _score_black_box(
    run: _Run, *, api: dict[str, Any], from_pilot: Path | None, white_box: dict[str, Any]
) -> None:
    """`uq score --backend` (requests through a backend) or `--from-pilot` (a pilot run's answers)."""
    from halluc_signals import choose
    from halluc_uq import blackbox

    source_of, config = _black_box_source(run, api, from_pilot, white_box)
    chosen = choose(run.estimators.strip())
    if run.estimators.strip() in ("all", "single-pass"):  # what this source can serve of them
        chosen = blackbox.servable(chosen, source_of)
        if not chosen:
            from ucli.errors import BadInput

            raise BadInput(f"--estimators {run.estimators.strip()}: {source_of.name} serves none of them (it gives "
                           f"{source_of.capabilities.describe()}); try --estimators all")  # fmt: skip
    blackbox.check_servable(chosen, source_of)
    ensemble_doc = _ensemble(run.ensemble, chosen)
    journal_path = run.journal()
    if journal_path is None:
        return
    if from_pilot:
        _unseen(ensemble_doc, str(from_pilot), [r["prompt"] for r in source_of.records])
        records = blackbox.score_pilot(source_of, estimators=chosen, sampling=run.sampling)
        source, run_config, inputs, verdicts = (
            str(from_pilot),
            {"source": str(from_pilot)},
            [source_of.path],
            {},
        )
    else:
        records, source, run_config, verdicts = _ask_backend(
            run, source_of, config, chosen, ensemble_doc, journal_path
        )
        inputs = [p for p in (run.data, run.bench_options.get("data_file")) if p]
    from halluc_uq.claims import api_pieces

    truth = None if from_pilot else blackbox.claim_truth(source_of, config)  # a pilot run sends nothing
    run.finish(records, verdicts, journal_path, ensemble_doc, chosen, source, inputs, api_pieces, truth=truth,
               model=blackbox.model_doc(source_of), config={**run_config, "estimators": [e.name for e in chosen]})  # fmt: skip


def _black_box_source(
    run: _Run, api: dict[str, Any], from_pilot: Path | None, white_box: dict[str, Any]
) -> tuple:
    """The pilot run's answers, or the backend (checked ready) with its config; options that read a
    loaded model, or name another source of answers, are refused."""
    from halluc_uq import blackbox
    from ucli.errors import BadInput

    given = [k for k, v in white_box.items() if v is not None]
    if from_pilot:
        given += [
            k
            for k, v in (("--backend", api["backend"]), ("--benchmark", run.benchmark), ("--data", run.data))
            if v
        ]
    if given:
        raise BadInput(f"{given[0]}: not with {'--from-pilot' if from_pilot else '--backend'} (it reads a model's "
                       "internals, scales a loaded model out, or names another source of answers)")  # fmt: skip
    if from_pilot:
        return blackbox.read_pilot(from_pilot), None
    config = blackbox.BackendConfig(
        backend=api["backend"], model=run.model, base_url=api["base_url"], timeout=api["timeout"],
        requests_per_minute=api["rpm"], concurrency=api["concurrency"], max_retries=api["max_retries"],
        max_new_tokens=run.max_new_tokens, batch_size=run.batch_size, load=run.load.model_dump(exclude_none=True),
    )  # fmt: skip
    backend = config.make()
    problems = [f"{c.check} {c.detail}" for c in backend.checks() if not c.ok]
    if problems:
        raise BadInput(f"--backend {api['backend']}: " + "; ".join(problems))
    return backend, config


def _ask_backend(run: _Run, backend: Any, config: Any, chosen: list[Any], ensemble_doc: Any,
                 journal_path: Path) -> tuple:  # fmt: skip
    """The questions' records through the backend, with the run's config for the provenance."""
    from halluc_uq import blackbox

    pairs, judge, source, _, verdicts = run.questions()
    _unseen(ensemble_doc, source, pairs)
    plan = blackbox.Plan(chosen, backend, config, run.sampling, run.seed)
    run_config = {"model": run.model, "source": source, "limit": run.limit, "seed": run.seed,
                  "backend": config.recorded(), "sampling": vars(run.sampling) if plan.samples else None,
                  **_judged_by(judge)}  # fmt: skip
    if plan.greedy.top_logprobs > 1 and not backend.capabilities.distribution:
        run_config["entropy"] = (
            f"approximated: the entropy of the top {plan.greedy.top_logprobs} renormalised"
        )
    with console.progress(
        f"requests to {config.backend}:{config.model}", total=len(pairs) * plan.per_question()
    ) as advance:
        records = blackbox.score_backend(backend, pairs, estimators=chosen, config=config, sampling=run.sampling,
                                         journal_path=journal_path, resume=run.resume, force=run.force, judge=judge,
                                         seed=run.seed, progress=advance)  # fmt: skip
    return records, source, run_config, verdicts


def _splitter(name: str | None) -> Any:
    """The claim splitter of --claims (an unknown name is one line, before any work)."""
    from halluc_claims import get_splitter, parse_splitter

    if name is None:
        return None
    splitter, given = parse_splitter(name)
    return get_splitter(splitter, **given)


def _check_claim_verdicts(claims: str | None, judge: str | None, labels: Path | None) -> None:
    """--claim-judge and --claim-labels checked before any work (a bad labels file is one line)."""
    from ucli.errors import BadInput

    if (judge or labels) and claims is None:
        raise BadInput(
            f"{'--claim-judge' if judge else '--claim-labels'} judges claims: add --claims SPLITTER"
        )
    if labels is not None:
        from halluc_claims import read_labels

        read_labels(labels)
    elif judge not in (None, "reference", "none"):
        from halluc_judges import parse_spec

        parse_spec(judge)


def _ensemble(path: Path | None, chosen: list[Any]) -> dict[str, Any] | None:
    """The saved ensemble of --ensemble, checked against the chosen estimators before any work."""
    from halluc_uq.ensemble import load_ensemble

    return None if path is None else load_ensemble(path, [e.name for e in chosen])


def _unseen(doc: dict[str, Any] | None, source: str, pairs: list[Any]) -> None:
    """--ensemble is not applied to the answers it was fit on (refused before any work)."""
    from halluc_uq.ensemble import check_unseen

    if doc is not None:
        check_unseen(doc, source, [p if isinstance(p, str) else p.prompt for p in pairs], "--ensemble")


def _write_scores(
    output: Path, records: list[dict[str, Any]], verdicts: dict[str, bool], journal_path: Path,
    ensemble: dict[str, Any] | None = None, **prov: Any,
) -> None:  # fmt: skip
    """scores.jsonl with its sidecar (a verdict in the generations file wins over the judge; a saved
    `ensemble` scores as one more estimator), then the journals go."""
    from halluc_uq.scoring import UQ_SCHEMA, stage_journals
    from ucli.artifacts import write_table

    for r in records:
        if r["id"] in verdicts:
            r["correct"] = int(verdicts[r["id"]])
    if ensemble is not None:
        from halluc_uq.ensemble import apply_ensemble

        records = apply_ensemble(ensemble, records, source=prov["config"].get("source"), where="--ensemble")
    write_table(output, records, UQ_SCHEMA, **prov)
    for journal in stage_journals(journal_path):
        journal.unlink(missing_ok=True)


def _judged_by(judge: Any) -> dict[str, Any]:
    """How the answers were judged, for the scores' provenance, where a rule other than the answer
    rules judged them: the benchmark's options (its --correct-if rule, its judges by name)."""
    from halluc_benchmarks import recorded_options

    bench = getattr(judge, "bench", None)
    return {"benchmark_options": recorded_options(bench)} if getattr(bench, "correct_if", None) else {}


def _inputs(benchmark, data, generations, split, limit, seed, benchmark_options):
    """Questions to decode (a benchmark or --data), or existing answers (--generations) with their verdicts."""
    from halluc_uq.scoring import questions, read_generations
    from ucli.errors import BadInput

    if generations is None:
        pairs, judge, source = questions(benchmark=benchmark, data=data, split=split, limit=limit, seed=seed,
                                         benchmark_options=benchmark_options)  # fmt: skip
        return pairs, judge, source, None, {}
    if benchmark is not None or data is not None:
        raise BadInput("--generations scores answers that exist: drop --benchmark and --data")
    from ucli.data import select

    pairs, given, judge, verdicts = read_generations(generations, benchmark_options.get("metric"))
    return select(pairs, limit, seed), judge, str(generations), given, verdicts


@app.command()
def report(
    scores: Path = typer.Argument(..., help="`halluc uq score` output."),
    reference: str | None = typer.Option(
        None,
        "--reference",
        help="Estimator every other one is tested against (default: rauq; ccp for claims).",
    ),
    only_estimators: str | None = typer.Option(
        None,
        "--estimators",
        help="Comma list of the estimators to report (default: all in the file). Answers an estimator has no "
        "value for are left out of every row, so leave out one that is often None.",
    ),
    level: str = typer.Option(
        "answer",
        "--level",
        help="answer (each answer against its verdict) or claim (each claim against its verdict).",
    ),
    claim_labels: Path | None = typer.Option(
        None,
        "--claim-labels",
        help="--level claim: claim verdicts from a labels file (JSONL: id, claim, verdict) in place of the scores' own.",
    ),
    n_resamples: int = typer.Option(
        1000, "--n-resamples", min=100, help="Bootstrap resamples (shared by every estimator)."
    ),
    seed: int = options.SEED,
    plot: Path | None = typer.Option(
        None, "--plot", help="ROC and accuracy-coverage curves of every estimator (PNG)."
    ),
    output: Path | None = options.output("report.json to write (with provenance)."),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """AUROC, AUPRC, PRR, ECE and Brier per estimator, paired tests against --reference, Spearman matrix."""
    from halluc_uq.report import plot_report, read_scores
    from ucli.artifacts import check_output_file, write_artifact
    from ucli.errors import BadInput

    if level not in ("answer", "claim"):
        raise BadInput(f"--level {level}: expected answer or claim")
    if level == "claim" and plot is not None:
        raise BadInput("--plot draws answers' curves: not with --level claim")
    if claim_labels is not None and level != "claim":
        raise BadInput("--claim-labels gives claim verdicts: add --level claim")
    check_output_file(output, force=force)
    check_output_file(plot, force=force, option="--plot")
    records = read_scores(scores)
    if only_estimators:
        from halluc_uq.report import only

        records = only(
            records, [n.strip() for n in only_estimators.split(",") if n.strip()], str(scores), level
        )
    result = _report(records, level, claim_labels, reference, n_resamples, seed, str(scores))
    if output is not None:
        write_artifact(output, "halluc.uq.report", 1, result, inputs=[scores, *([claim_labels] if claim_labels else [])], seed=seed,
                       config={"reference": result["reference"], "n_resamples": n_resamples,
                               "estimators": only_estimators, "level": level})  # fmt: skip
    if plot is not None:
        plot_report(records, plot, f"{scores.name}: {result['n']} answers, {result['n_wrong']} wrong")
    if json_out:
        console.print_json(result)
        return
    _show(result)


@app.command()
@options.bundled
def judges(
    scores: Path = typer.Argument(..., help="`halluc uq score` output whose answers the judges grade."),
    benchmark: str = typer.Option(
        ..., "--benchmark", "-b", help="The benchmark the answers came from (their references)."
    ),
    split: str | None = typer.Option(
        None, "--split", help="Look ids up in this split only (default: every split)."
    ),
    bench_options: dict[str, Any] = options.BENCHMARK,
    n_resamples: int = typer.Option(
        200, "--n-resamples", min=1, help="Bootstrap resamples of each judge's report."
    ),
    seed: int = options.SEED,
    output: Path | None = options.output("judges.json to write (with provenance)."),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Grade the same answers with two or more --judge: their agreement, and each estimator's AUROC and rank under each."""
    from halluc_benchmarks import get_benchmark, recorded_options
    from halluc_uq.judges import compare_judges
    from halluc_uq.report import read_scores
    from ucli.artifacts import check_output_file, write_artifact

    check_output_file(output, force=force)
    bench = get_benchmark(benchmark, **bench_options)
    result = compare_judges(read_scores(scores), bench, [split] if split else list(bench.splits),
                            n_resamples=n_resamples, seed=seed, source=str(scores))  # fmt: skip
    if output is not None:
        write_artifact(output, "halluc.uq.judges", 1, result, inputs=[scores], seed=seed,
                       config={"benchmark": benchmark, "split": split, **recorded_options(bench)})  # fmt: skip
    if json_out:
        console.print_json(result)
        return
    names = list(result["judges"])
    estimators = list(result["judges"][names[0]]["auroc"])
    rows = [(e, *(f"{result['judges'][j]['auroc'][e]:.3f} (#{result['judges'][j]['ranking'].index(e) + 1})" for j in names))
            for e in estimators]  # fmt: skip
    rows.append(("accuracy", *(f"{result['judges'][j]['accuracy']:.1%}" for j in names)))
    console.out.print(console.table(f"{result['n']} answers judged by {len(names)} judges ({result['prompt']})",
                                    ["estimator: AUROC (rank)", *names], rows))  # fmt: skip
    kappa = result["agreement"].get("fleiss_kappa")
    console.out.print(f"Fleiss' kappa {kappa:.3f} over {result['agreement']['items_all_graded']} answers every judge graded; "
                      + "; ".join(f"{' vs '.join(p['judges'])}: Kendall tau {p['kendall_tau']:.2f}, "
                                  f"{'same' if p['same_best'] else 'another'} best estimator" for p in result["ranking_changes"]),
                      highlight=False)  # fmt: skip


@app.command("normalize")
def normalize_(
    scores: Path = typer.Argument(..., help="`halluc uq score` output to fit the maps on."),
    method: str = typer.Option(
        "isotonic", "--method", help="isotonic (to P(wrong); needs verdicts) or minmax."
    ),
    output: Path = options.output("normalization.json to write (one map per estimator).", required=True),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Fit a map from each estimator's raw score to [0, 1] and save it, to apply to new scores."""
    from halluc_uq.normalize import NORMALIZATION_SCHEMA, fit_normalization
    from halluc_uq.report import read_scores
    from ucli.artifacts import check_output_file, write_artifact

    check_output_file(output, force=force)
    doc = fit_normalization(read_scores(scores), method, source=str(scores))
    write_artifact(output, NORMALIZATION_SCHEMA, 1, doc, inputs=[scores], config={"method": method})
    console.result({"output": str(output), "method": method, "n": doc["n"], "estimators": list(doc["maps"])},
                   json_out, lambda: f"{method} maps of {len(doc['maps'])} estimators from {doc['n']} answers -> {output}")  # fmt: skip


@app.command("apply")
def apply_(
    scores: Path = typer.Argument(..., help="`halluc uq score` output with new answers."),
    normalization: Path = typer.Option(..., "--normalization", help="`halluc uq normalize` output."),
    output: Path = options.output("Scores with `uq_normalized` (JSONL, or CSV or Parquet by suffix).", True),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Put new scores through saved maps: each record gains `uq_normalized`, in [0, 1]."""
    from halluc_uq.normalize import NORMALIZATION_SCHEMA, apply_normalization
    from halluc_uq.report import read_scores
    from halluc_uq.scoring import UQ_SCHEMA
    from ucli.artifacts import check_output_file, load_artifact, write_table

    check_output_file(output, force=force)
    doc = load_artifact(normalization, NORMALIZATION_SCHEMA)
    records = apply_normalization(doc, read_scores(scores))
    write_table(
        output,
        records,
        UQ_SCHEMA,
        inputs=[scores, normalization],
        config={"normalization": str(normalization)},
    )
    console.result({"output": str(output), "n": len(records), "method": doc["method"]}, json_out,
                   lambda: f"{len(records)} records through {doc['method']} maps -> {output}")  # fmt: skip


ensemble_app = typer.Typer(help="Tuned ensembles: one score learned from several estimators on a train split.",
                           no_args_is_help=True)  # fmt: skip
app.add_typer(ensemble_app, name="ensemble")
ENSEMBLE_FILE = typer.Option(..., "--ensemble", help="`halluc uq ensemble fit` output.")


@ensemble_app.command("fit")
def ensemble_fit(
    scores: Path = typer.Argument(..., help="`halluc uq score` output on a train split (with verdicts)."),
    estimators: str | None = typer.Option(
        None,
        "--estimators",
        help="Comma list of members (default: every estimator with a value on every answer).",
    ),
    method: str = typer.Option(
        "logistic",
        "--method",
        help="logistic (regression on normalised scores) or auroc (UQLM's AUROC-tuned weights).",
    ),
    name: str | None = typer.Option(
        None, "--name", help="The ensemble's estimator name (default ensemble_METHOD)."
    ),
    seed: int = options.SEED,
    output: Path = options.output("ensemble.json to write (with provenance).", required=True),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Learn one score from several estimators on these answers' verdicts, and save it."""
    from halluc_uq.ensemble import ENSEMBLE_SCHEMA, fit_ensemble, scores_source
    from halluc_uq.report import read_scores
    from ucli.artifacts import check_output_file, write_artifact

    check_output_file(output, force=force)
    members = [e.strip() for e in estimators.split(",") if e.strip()] if estimators else None
    doc = fit_ensemble(read_scores(scores), estimators=members, method=method, name=name, seed=seed,
                       source=scores_source(scores))  # fmt: skip
    write_artifact(output, ENSEMBLE_SCHEMA, 1, doc, inputs=[scores], seed=seed,
                   config={"method": method, "estimators": doc["members"]})  # fmt: skip
    train = doc["train"]
    console.result({"output": str(output), "name": doc["name"], "members": doc["members"], "auroc_train": train["auroc"]},
                   json_out, lambda: f"{doc['name']} of {len(doc['members'])} estimators on {train['n']} answers "
                   f"({train['n_wrong']} wrong): train AUROC {train['auroc'][doc['name']]:.3f}, best member "
                   f"{max(train['auroc'][e] for e in doc['members']):.3f} -> {output}")  # fmt: skip


@ensemble_app.command("apply")
def ensemble_apply(
    scores: Path = typer.Argument(
        ..., help="`halluc uq score` output with the members' values, not the train split."
    ),
    ensemble: Path = ENSEMBLE_FILE,
    output: Path = options.output(
        "Scores with the ensemble as one more estimator (JSONL, CSV or Parquet).", True
    ),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Score answers with a saved ensemble: each record's `uq` gains its value, for `uq report`."""
    from halluc_uq.ensemble import apply_ensemble, load_ensemble, scores_source
    from halluc_uq.report import read_scores
    from halluc_uq.scoring import UQ_SCHEMA
    from ucli.artifacts import check_output_file, write_table

    check_output_file(output, force=force)
    doc = load_ensemble(ensemble)
    records = apply_ensemble(doc, read_scores(scores), source=scores_source(scores), where=str(scores))
    write_table(output, records, UQ_SCHEMA, inputs=[scores, ensemble],
                config={"ensemble": str(ensemble), "source": scores_source(scores)})  # fmt: skip
    console.result({"output": str(output), "n": len(records), "ensemble": doc["name"]}, json_out,
                   lambda: f"{len(records)} answers scored by {doc['name']} -> {output}")  # fmt: skip


def _with_ci(row: dict[str, Any], key: str) -> str:
    return "{:.2f} ({:.2f}-{:.2f})".format(row[key], *row[f"{key}_ci"])


def _report(records: list[dict[str, Any]], level: str, claim_labels: Path | None, reference: str | None,
            n_resamples: int, seed: int, source: str) -> dict[str, Any]:  # fmt: skip
    """The answer report, or the claim report (with the labels' verdicts where given)."""
    from halluc_uq.report import build_report

    if level == "answer":
        return build_report(
            records, reference=reference or "rauq", n_resamples=n_resamples, seed=seed, source=source
        )
    from halluc_uq.claim_report import build_claim_report

    if claim_labels is not None:
        from halluc_claims import label_verdicts, read_labels

        label_verdicts(records, read_labels(claim_labels), f"labels:{claim_labels.name}")
    return build_claim_report(records, reference=reference, n_resamples=n_resamples, seed=seed, source=source)


def _show(result: dict[str, Any]) -> None:
    rows = [(r["estimator"], f"{r['auroc']:.3f}", "{:.2f}-{:.2f}".format(*r["auroc_ci"]), f"{r['auprc']:.2f}",
             _with_ci(r, "prr_50"), _with_ci(r, "prr_100"), f"{r['ece']:.2f}", f"{r['brier']:.2f}",
             "-" if r["p_holm"] is None else f"{r['delta_auroc']:+.3f}", "-" if r["p_holm"] is None else f"{r['p_holm']:.2g}")
            for r in sorted(result["estimators"], key=lambda r: -r["auroc"])]  # fmt: skip
    claims = result.get("level") == "claim"
    what, bad = ("verified claims", "unsupported") if claims else ("answers", "wrong")
    title = f"{result['n']} {what}, {result['n_wrong']} {bad}; paired against {result['reference']}"
    resampled = " of answers (an answer's claims together)" if claims else ""
    legend = (f"AUROC and AUPRC: {bad} {what} as positives, {result['confidence']:.0%} bootstrap CI over "
              f"{result['n_resamples']} shared resamples{resampled}; PRR against {result['prr_against']} at 50% and 100% rejection (its CI on the same resamples); ECE, Brier after "
              f"cross-fitted isotonic calibration; dAUROC against {result['reference']}, p paired bootstrap, Holm")  # fmt: skip
    console.out.print(console.table(title, ["estimator", "AUROC", "CI", "AUPRC", "PRR50", "PRR100", "ECE", "Brier",
                                            "dAUROC", "p Holm"], rows, caption=legend))  # fmt: skip
    names, matrix = result["spearman"]["names"], result["spearman"]["matrix"]
    corr = [
        (f"{i} {n}", *(f"{v:.2f}" for v in row))
        for i, (n, row) in enumerate(zip(names, matrix, strict=True), 1)
    ]
    console.out.print(
        console.table(
            "Spearman correlation between estimators", ["", *map(str, range(1, len(names) + 1))], corr
        )
    )
    if claims:
        counts, answers = result["counts"], result["answers"]
        console.out.print(f"claims: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}")
        if answers["mean_precision"] is not None:
            console.out.print(f"answers: {answers['answers']}, {answers['claims_per_answer']:.1f} claims each; mean "
                              f"precision (supported / verified claims, FActScore-style) {answers['mean_precision']:.3f} "
                              f"over the {answers['answers_verified']} with a verified claim")  # fmt: skip
    elif result["left_out"]:
        console.warn(f"{result['left_out']} answer(s) left out (empty, or no verdict)")


options.renamed("uq score", options.BENCH_RENAMED)
