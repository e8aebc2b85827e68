"""`halluc probe generate`: K sampled answers per question plus one greedy answer whose correctness
(the benchmark's own metric) is the accuracy label.

One JSONL record per question, in question order:

    {"id", "question", "message" (the user turn sent), "reference",
     "greedy":  {"answer", "token_ids", "logprobs", "loglik", "finish_reason", "correct"[, "entropies",
                 "margins": each step's entropy and top-2 margin, from a local backend that gives them]},
     "samples": [{"answer", "token_ids", "logprobs", "loglik", "finish_reason"}, ...],
     "correct": bool}

`loglik` is the length-normalised log-likelihood: the mean log-probability of the answer's tokens
(None for an empty answer). `<output>.meta.json` carries the provenance. Questions are journaled as
they finish, so `--resume` continues an interrupted run; the output appears whole at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from ucli import console
from ucli.errors import BadInput
from ucli.models import DEFAULT_MODEL, Device, Dtype

RUNS_SCHEMA = "halluc.probe.runs"


class GenerateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = DEFAULT_MODEL
    benchmark: str | None = None
    data: str | None = None
    split: str = "test"
    limit: int | None = Field(default=None, ge=1)
    k: int = Field(default=10, ge=1)
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=0.9, gt=0, le=1)
    max_new_tokens: int = Field(default=32, ge=1)
    backend: str = "hf"  # a registered local backend (hf, vllm, or a third-party one)
    batch_size: int = Field(default=4, ge=1)  # questions per step (each brings K + 1 sequences)
    seed: int = 0
    # the load knobs, handed to the backend as they are (`LoadOptions` checks them for hf)
    device: Device = "auto"
    dtype: Dtype = "auto"
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    adapter: str | None = None
    # the benchmark's options (`halluc_benchmarks.get_benchmark` types them and refuses one it does
    # not take): --data-file and the -B keys runs always recorded, then any other -B key, recorded
    # only when given so that earlier runs resume
    data_file: str | None = None
    metric: str | None = None
    steps: int | None = None
    size: int | None = None
    benchmark_options: dict[str, str] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _recorded(self, handler: Any) -> dict[str, Any]:
        dumped = handler(self)
        if not dumped.get("benchmark_options"):
            dumped.pop("benchmark_options", None)
        return dumped

    @classmethod
    def benchmark_fields(cls, given: dict[str, Any]) -> dict[str, Any]:
        """The command's --data-file and -B options as this config's fields."""
        own = ("data_file", "metric", "steps", "size")
        fields = {k: str(v) if k == "data_file" else v for k, v in given.items() if k in own}
        return {**fields, "benchmark_options": {k: v for k, v in given.items() if k not in own}}


def _answer(gen: Any) -> dict[str, Any]:
    steps = gen.token_logprobs or []
    logprobs = [s["logprob"] for s in steps]
    answer = {
        "answer": gen.text.strip(),
        "token_ids": [s.get("id") for s in steps],
        "logprobs": logprobs,
        "loglik": sum(logprobs) / len(logprobs) if logprobs else None,
        "finish_reason": gen.finish_reason,
    }
    for key, field in (("entropies", "entropy"), ("margins", "margin")):  # where the backend gives them
        if steps and all(field in s for s in steps):
            answer[key] = [s[field] for s in steps]
    return answer


def _record(bench: Any, sample: Any, greedy: Any, sampled: list[Any]) -> dict[str, Any]:
    """One question's line: its greedy answer judged by the benchmark, and its K samples."""
    best = _answer(greedy)
    best["correct"] = bool(bench.score(sample, best["answer"]).correct)
    return {"id": sample.id, "question": sample.prompt, "message": bench.chat_message(sample),
            "reference": sample.reference, "greedy": best, "samples": [_answer(g) for g in sampled],
            "correct": best["correct"]}  # fmt: skip


def load_questions(cfg: GenerateConfig) -> tuple[Any, list[Any]]:
    from halluc_benchmarks import get_benchmark

    if (cfg.benchmark is None) == (cfg.data is None):
        raise BadInput("pass exactly one of --benchmark NAME and --data FILE")
    options = {"data_file": cfg.data_file, "metric": cfg.metric, "steps": cfg.steps, "size": cfg.size,
               **cfg.benchmark_options}  # fmt: skip
    if cfg.data is not None:
        bench, split = get_benchmark("local", **{**options, "data_file": cfg.data}), "test"
    else:
        bench, split = get_benchmark(cfg.benchmark, **options), cfg.split
    samples = bench.load(split, limit=cfg.limit, seed=cfg.seed)
    missing = [s.id for s in samples if not s.references]
    if missing:
        raise BadInput(f"question '{missing[0]}' has no reference: the greedy answer cannot be labelled")
    return bench, samples


def generate_runs(
    cfg: GenerateConfig, output: str | Path, resume: bool = False, executor: Any = None, force: bool = False
) -> dict[str, Any]:
    """Sample, judge and write `output` (+ `.meta.json`); returns a summary. With `executor`
    (`ucli.executor.Executor`, e.g. Ray), the batches are generated on model replicas and judged
    and journaled here: the same records as one process. `force`: replace an existing output, or
    with `resume` go on with a journal of another configuration."""
    from ucli.artifacts import write_table
    from ucli.executor import Executor, Replicas
    from ucli.journal import Journal, preflight

    out = Path(output)
    journal_path = preflight(out, resume, folder=False, force=force)
    if journal_path is None:
        return {"output": str(out), "complete": True}
    bench, samples = load_questions(cfg)
    backend = local_backend(cfg)
    journal = Journal(journal_path, config=cfg.model_dump(mode="json"), resume=resume, force=force)
    done = journal.done
    # seeded by their start: a resumed run samples exactly as an unbroken one
    batches = [(start, [bench.chat_message(s) for s in batch])
               for start, batch in journal.todo_batches(samples, cfg.batch_size)]  # fmt: skip
    try:
        with console.progress("questions", len(samples)) as advance, \
                Replicas(executor or Executor(), backend, local_backend, cfg) as replicas:  # fmt: skip
            advance(len(done))
            for start, greedy, sampled in replicas.map(sample_batch, batches, cfg):
                for j, sample in enumerate(samples[start : start + cfg.batch_size]):
                    if sample.id not in done:
                        journal.append(
                            _record(bench, sample, greedy[j], sampled[j * cfg.k : (j + 1) * cfg.k])
                        )
                        advance()
            fingerprint = replicas.fingerprint()  # the model that generated, where it ran
        records = {r["id"]: r for r in journal.records()}
    finally:
        journal.close()
    ordered = [records[s.id] for s in samples]
    summary = {"questions": len(ordered), "accuracy": sum(r["correct"] for r in ordered) / len(ordered)}
    write_table(out, ordered, RUNS_SCHEMA, summary=summary, model=fingerprint, inputs=[cfg.data] if cfg.data else [],
                seed=cfg.seed, config=cfg.model_dump(mode="json"))  # fmt: skip
    journal_path.unlink(missing_ok=True)
    return {"output": str(out), "samples_per_question": cfg.k, **summary}


def local_backend(cfg: GenerateConfig) -> Any:
    """The generating backend `cfg` names, loaded (here, or on each replica)."""
    from halluc_backends import backend_class

    knobs = ("device", "dtype", "load_in_4bit", "load_in_8bit", "adapter")
    backend = backend_class(cfg.backend)(cfg.model, **{k: getattr(cfg, k) for k in knobs})
    if not backend.local:
        raise BadInput(
            f"--backend {cfg.backend}: probe generate needs a local backend (its log-probs and ids)"
        )
    for check in backend.checks():  # its SDK, before anything loads or is written
        if not check.ok:
            raise BadInput(f"--backend {cfg.backend}: {check.detail}")
    return backend


def sample_batch(backend: Any, batch: tuple[int, list[Any]], cfg: GenerateConfig) -> tuple[int, list, list]:
    """One batch (its start and chat messages): the greedy answers, then K samples each, seeded by
    `cfg.seed` plus the batch's start."""
    from halluc_backends import SamplingParams

    start, messages = batch
    greedy = backend.generate_batch(messages, SamplingParams(temperature=0.0, max_tokens=cfg.max_new_tokens,
                                                             top_logprobs=0))  # fmt: skip
    params = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens,
                            seed=cfg.seed + start, top_logprobs=0)  # fmt: skip
    return start, greedy, backend.generate_batch([m for m in messages for _ in range(cfg.k)], params)


def read_runs(path: str | Path) -> list[dict[str, Any]]:
    """Records of a `probe generate` output, each checked for the fields later steps need."""
    from ucli.data import read_records

    records = []
    for rec in read_records(path, RUNS_SCHEMA):
        d = rec.data
        for key in ("id", "question", "samples", "greedy", "correct"):
            if key not in d:
                raise BadInput(f"{rec.loc}: field '{key}' is missing (not a `halluc probe generate` output?)")
        if not isinstance(d["samples"], list):
            raise BadInput(f"{rec.loc}: field 'samples': expected a list")
        records.append(d)
    return records
