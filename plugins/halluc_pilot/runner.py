"""Run a pilot: every variant's prompts through its backend, journaled per variant, exactly once.

API variants run concurrently on one event loop, each under its model's request pace (and token
bucket, aiolimiter; `halluc_backends.Budget`) and concurrency cap, with tenacity retries: exponential backoff with jitter,
`Retry-After` honoured, at most `max_retries`. Local variants (hf, vllm) run one after another in a
worker thread, in batches; with `--executor ray`, a local variant's batches run on Ray model
replicas (`ucli.executor.Replicas`) and come back here to be journaled. Every finished prompt is one
fsynced journal line, so a killed run resumes where it stopped and no prompt is answered twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from halluc_pilot.config import PilotConfig, Variant
from halluc_pilot.prompts import PilotPrompt
from ucli import console
from ucli.journal import Journal, removed_unless_started

RESULTS_SCHEMA = "halluc.pilot.results"
SUMMARY_SCHEMA = "halluc.pilot.summary"


@dataclass
class VariantStats:
    model: str
    variant: str
    backend: str
    prompts: int = 0
    done: int = 0
    errors: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0  # requests actually sent in this session (retries included)
    seconds: float = 0.0
    stopped: str | None = None  # why the variant stopped early: it cannot run, or authentication failed

    @property
    def undone(self) -> int:
        return self.prompts - self.done

    def add(self, record: dict[str, Any]) -> None:
        self.done += 1
        self.errors += record["error"] is not None
        self.retries += record["retry_count"]
        self.input_tokens += record["tokens_used"]["input"] or 0
        self.output_tokens += record["tokens_used"]["output"] or 0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["undone"] = self.undone
        out["requests_per_minute"] = (
            self.requests / self.seconds * 60 if self.requests and self.seconds else None
        )
        return out


@dataclass
class PilotRun:
    run_id: str
    output: Path
    stats: list[VariantStats] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every prompt of every variant answered (an answer may be a recorded error)."""
        return all(s.undone == 0 for s in self.stats)

    def incomplete_message(self) -> str:
        undone = [s for s in self.stats if s.undone]
        parts = [f"{s.model}/{s.variant}: {s.undone} undone" + (f" ({s.stopped})" if s.stopped else "")
                 for s in undone]  # fmt: skip
        return f"run incomplete: {'; '.join(parts)}. Fix this, then rerun with --resume: only the undone prompts are sent"


def sampling(config: PilotConfig, v: Variant) -> dict[str, Any]:
    m = v.model
    return {
        "temperature": v.temperature,
        "top_p": m.top_p if m.top_p is not None else config.top_p,
        "max_tokens": m.max_tokens or config.max_tokens,
        "seed": config.seed,
    }


def sample_params(config: PilotConfig, v: Variant) -> list[Any]:
    """The K samples' parameters beside each answer: the config's sample temperature, seed + 1 + i
    (one seed per sample, so K copies of one prompt differ), the answer's top-p, budget and top-k."""
    from halluc_backends import SamplingParams

    base = sampling(config, v)
    return [SamplingParams(temperature=config.sample_temperature, top_p=base["top_p"], max_tokens=base["max_tokens"],
                           seed=config.seed + 1 + i, top_logprobs=v.model.top_logprobs)
            for i in range(config.samples)]  # fmt: skip


def journal_sampling(config: PilotConfig, v: Variant) -> dict[str, Any]:
    """What a variant's journal is keyed by: the answer's sampling, and the samples' where drawn."""
    extra = (
        {"samples": config.samples, "sample_temperature": config.sample_temperature} if config.samples else {}
    )
    return {**sampling(config, v), **extra}


def sampled(gens: list[Any]) -> list[dict[str, Any]]:
    """A prompt's samples as its record keeps them."""
    return [
        {"text": g.text, "token_logprobs": g.token_logprobs, "finish_reason": g.finish_reason} for g in gens
    ]


def make_record(
    prompt: PilotPrompt, v: Variant, params: dict[str, Any], run_id: str, gen: Any, error: str | None,
    retries: int, elapsed: float, batch_size: int = 1, samples: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    usage = gen.usage() if gen is not None else {"input": None, "output": None, "total": None}
    extra = (
        {} if samples is None else {"samples": samples}
    )  # a run without --samples keeps its records as they were
    return {
        "id": prompt.id,
        "prompt_id": prompt.id,
        "model": v.model.name,
        "backend": v.model.type,
        "variant": v.name,
        "prompt": prompt.text,
        "full_response": gen.text if gen is not None else None,
        "tokens_used": usage,
        "token_logprobs": gen.token_logprobs if gen is not None else None,
        "sampling_params": params,
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
        "elapsed_seconds": round(elapsed, 6),  # until this answer arrived (a local batch: its wall time)
        "batch_size": batch_size,
        "run_id": run_id,
        "prompt_category": prompt.category,
        "is_synthetic_probe": prompt.is_synthetic_probe,
        "prompt_metadata": prompt.metadata,
        "retry_count": retries,
        "finish_reason": gen.finish_reason if gen is not None else None,
        "error": error,
        **extra,
    }


def backend_for(config: PilotConfig, v: Variant) -> Any:
    m = v.model
    options = {
        k: getattr(m, k)
        for k in (
            "base_url",
            "api_key",
            "device",
            "load_in_4bit",
            "load_in_8bit",
            "adapter",
            "tensor_parallel_size",
        )
    }
    options["timeout"] = m.timeout or config.timeout
    return make_backend(m.type, m.model or m.name, options)


def make_backend(kind: str, model: str, options: dict[str, Any]) -> Any:
    """A registered backend (on a Ray replica too: local backends carry no API key)."""
    from halluc_backends import backend_class

    return backend_class(kind)(model, **options)


async def _run_api_variant(
    config: PilotConfig, v: Variant, backend: Any, todo: list[PilotPrompt], journal: Journal,
    run_id: str, stats: VariantStats, advance: Callable[[int], None],
) -> None:  # fmt: skip
    run = _ApiVariant(config, v, backend, stats)
    try:
        await asyncio.gather(*(run.one(p, journal, run_id, advance) for p in todo))
    finally:
        await backend.aclose()


class _ApiVariant:
    """One API model's prompts through its `Caller` (rate limits, retries); an auth or transport
    failure stops the model and leaves its prompts undone for --resume."""

    def __init__(self, config: PilotConfig, v: Variant, backend: Any, stats: VariantStats) -> None:
        from halluc_backends import Caller, Limits, SamplingParams

        m = v.model
        self.config, self.v, self.backend, self.stats = config, v, backend, stats
        self.params = sampling(config, v)
        self.sp = SamplingParams(**self.params, top_logprobs=m.top_logprobs)
        limits = Limits(
            requests_per_minute=m.requests_per_minute or config.requests_per_minute,
            tokens_per_minute=m.tokens_per_minute or config.tokens_per_minute,
            concurrency=m.concurrency or config.concurrency,
            max_retries=config.max_retries,
            retry_initial_wait=config.retry_initial_wait,
            retry_max_wait=config.retry_max_wait,
        )
        self.caller = Caller(backend, limits, on_request=self.count)
        self.gate = self.caller.gate
        self.stop = asyncio.Event()
        self.samples = sample_params(config, v)

    def count(self) -> None:
        self.stats.requests += 1

    async def ask(self, text: str, params: Any, tries: list[int]) -> tuple[Any, str | None] | None:
        """(answer, None) or (None, error) under the gate; None when the model stopped (an auth or
        transport failure: not an answer, the prompt stays undone for --resume)."""
        from halluc_backends import BackendError

        async with self.gate:
            if self.stop.is_set():
                return None
            try:
                return await self.caller.answer(text, params, tries), None
            except BackendError as exc:
                if exc.auth or exc.transport:
                    self.stopping(exc)
                    return None
                return None, str(exc)

    async def one(
        self, prompt: PilotPrompt, journal: Journal, run_id: str, advance: Callable[[int], None]
    ) -> None:
        """The answer, then its K samples (each its own request under the gate and the model's one
        rate limit); a failed sample makes the record an error, like a failed answer."""
        start, tries = time.monotonic(), [0]
        answered = await self.ask(prompt.text, self.sp, tries)
        if answered is None:
            return
        gen, error = answered
        samples = None
        if self.samples and error is None:
            got = await asyncio.gather(*(self.ask(prompt.text, sp, [0]) for sp in self.samples))
            if any(g is None for g in got):
                return
            failed = [f"sample {i}: {e}" for i, (_, e) in enumerate(got) if e is not None]  # type: ignore[misc]
            error = failed[0] if failed else None
            samples = None if failed else sampled([g for g, _ in got])  # type: ignore[misc]
        record = make_record(prompt, self.v, self.params, run_id, gen, error, max(tries[0] - 1, 0),
                             time.monotonic() - start, samples=samples)  # fmt: skip
        journal.append(record)
        self.stats.add(record)
        advance(1)

    def stopping(self, exc: Any) -> None:
        if not self.stop.is_set():
            self.stop.set()
            why = "authentication failed" if exc.auth else "no connection"
            self.stats.stopped = f"{why}: {exc}"
            console.warn(f"{self.v.model.name}: {why} ({exc}); stopping this model, "
                         "its unanswered prompts stay undone")  # fmt: skip


def _run_local_variant(
    config: PilotConfig, v: Variant, backend: Any, todo: list[PilotPrompt], journal: Journal,
    run_id: str, stats: VariantStats, advance: Callable[[int], None], executor: Any = None,
) -> None:  # fmt: skip
    """Batches of `batch_size`; out of memory halves the batch (down to one prompt, then an error).
    With a Ray `executor` the batches run on model replicas instead (`_run_on_replicas`)."""
    from halluc_backends import SamplingParams

    params = sampling(config, v)
    sp = SamplingParams(**params, top_logprobs=v.model.top_logprobs)
    extra = sample_params(config, v)
    if executor is not None and executor.kind == "ray":

        def done(batch: list[PilotPrompt], gens: list[Any], errors: list[str | None], elapsed: float) -> None:
            stats.requests += len(batch) * (1 + len(extra))
            _journal_batch(batch, gens, errors, elapsed, v, params, run_id, journal, stats, advance)

        _run_on_replicas(v, backend, todo, sp, executor, done, extra)
        return
    size, i = v.model.batch_size, 0
    while i < len(todo):
        batch = todo[i : i + size]
        start = time.monotonic()
        stats.requests += len(batch) * (1 + len(extra))
        try:
            gens = with_samples(backend, batch, sp, extra)
            errors: list[str | None] = [None] * len(batch)
        except RuntimeError as exc:
            if "out of memory" not in str(exc).lower():
                raise
            _free_memory()
            if size > 1:
                size = max(1, size // 2)
                console.warn(f"{v.model.name}: out of memory; batch size now {size}")
                continue
            gens, errors = [None], [f"out of memory: {str(exc).splitlines()[0]}"]
        elapsed = time.monotonic() - start  # every prompt of the batch waited this long for its answer
        _journal_batch(batch, gens, errors, elapsed, v, params, run_id, journal, stats, advance)
        i += len(batch)


def _journal_batch(
    batch: list[PilotPrompt], gens: list[Any], errors: list[str | None], elapsed: float, v: Variant,
    params: dict[str, Any], run_id: str, journal: Journal, stats: VariantStats, advance: Callable[[int], None],
) -> None:  # fmt: skip
    for prompt, gen, error in zip(batch, gens, errors, strict=True):
        samples = gen.samples if gen is not None else None
        record = make_record(prompt, v, params, run_id, gen, error, 0, elapsed, len(batch), samples=samples)
        journal.append(record)
        stats.add(record)
    advance(len(batch))


def with_samples(backend: Any, batch: list[PilotPrompt], sp: Any, extra: list[Any]) -> list[Any]:
    """A local batch's answers, each carrying its K samples (`samples`, as records keep them) when
    `extra` (the samples' parameters) is not empty: one batch per sample index."""
    texts = [p.text for p in batch]
    gens = backend.generate_batch(texts, sp)
    columns = [backend.generate_batch(texts, params) for params in extra]
    for j, gen in enumerate(gens):
        if extra:
            gen.samples = sampled([column[j] for column in columns])
    return gens


def _run_on_replicas(
    v: Variant, backend: Any, todo: list[PilotPrompt], sp: Any, executor: Any, done: Callable[..., None],
    extra: list[Any] | None = None,
) -> None:  # fmt: skip
    """The variant's batches (the same slices as in one process) on Ray model replicas that each
    load the model once; `done(batch, gens, errors, elapsed)` journals each as it comes back."""
    from ucli.executor import Replicas

    size = v.model.batch_size
    shards = [todo[i : i + size] for i in range(0, len(todo), size)]
    # nothing secret leaves the driver
    options = {key: value for key, value in backend.options.items() if key != "api_key"}
    with Replicas(executor, None, make_backend, backend.name, backend.model, options) as replicas:
        for answered in replicas.map(answer_batch, shards, sp, extra or []):
            done(*answered)


def answer_batch(
    backend: Any, batch: list[PilotPrompt], sp: Any, extra: list[Any] | None = None
) -> tuple[list[PilotPrompt], list, list, float]:
    """One batch on a replica: its answers, errors and wall time. Out of memory splits it in halves
    (down to one prompt, then an error), as the local loop does."""
    start = time.monotonic()
    try:
        gens, errors = with_samples(backend, batch, sp, extra or []), [None] * len(batch)
    except RuntimeError as exc:
        if "out of memory" not in str(exc).lower():
            raise
        _free_memory()
        if len(batch) == 1:
            return batch, [None], [f"out of memory: {str(exc).splitlines()[0]}"], time.monotonic() - start
        halves = [
            answer_batch(backend, part, sp, extra)
            for part in (batch[: len(batch) // 2], batch[len(batch) // 2 :])
        ]
        gens, errors = [g for h in halves for g in h[1]], [e for h in halves for e in h[2]]
    return batch, gens, errors, time.monotonic() - start


def _free_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def run_pilot(
    config: PilotConfig,
    raw_config: dict[str, Any],
    prompts: list[PilotPrompt],
    chosen: list[Variant],
    output: str | Path,
    resume: bool = False,
    force: bool = False,
    prompts_file: str | Path | None = None,
    executor: Any = None,
) -> PilotRun:
    """Run (or resume) every variant; write per-variant JSONL, results.json and summary.json. With a
    Ray `executor` (`ucli.executor.Executor`) the local variants (hf, vllm) run on model replicas."""
    from ucli.artifacts import require_fresh_dir
    from ucli.artifacts import run_id as new_run_id

    out = Path(output)
    for v in chosen:  # a model that cannot resolve is bad input before anything is written
        backend_for(config, v).describe()
    manifest = out / "journals" / "run_id"
    if resume:
        if not manifest.is_file():
            from ucli.errors import BadInput

            raise BadInput(
                f"{out}: nothing to resume (no journals/run_id); run without --resume, into a new or empty --output"
            )
        rid = manifest.read_text().strip()
    else:
        require_fresh_dir(out, resumable=True)
        rid = new_run_id("pilot")
    run = PilotRun(rid, out)
    journals: dict[str, Journal] = {}
    started = time.monotonic()
    try:
        with removed_unless_started(out):  # a run that sent nothing leaves no folder behind
            manifest.parent.mkdir(parents=True, exist_ok=True)
            manifest.write_text(rid + "\n")
            for v in chosen:
                journal_config = {"variant": v.key, "model": v.model.model_dump(exclude={"api_key"}),
                                  "sampling": journal_sampling(config, v), "prompts": [p.id for p in prompts],
                                  "max_retries": config.max_retries}  # fmt: skip
                journals[v.key] = Journal(out / "journals" / f"{v.key}.jsonl", config=journal_config,
                                          resume=resume, force=force)  # fmt: skip
            with console.progress_many([(v.key, len(prompts)) for v in chosen]) as bars:
                asyncio.run(_run_all(config, chosen, prompts, journals, run, bars, executor))
        _write_outputs(
            config, raw_config, prompts, chosen, journals, run, prompts_file, time.monotonic() - started
        )
    finally:
        for j in journals.values():
            j.close()
    return run


async def _run_all(config, chosen, prompts, journals, run, bars, executor=None) -> None:
    api, local = [], []
    for v in chosen:
        journal = journals[v.key]
        done = {str(r["prompt_id"]) for r in journal.records()}
        stats = VariantStats(v.model.name, v.name, v.model.type, prompts=len(prompts))
        for r in journal.records():
            stats.add(r)
        run.stats.append(stats)
        todo = [p for p in prompts if p.id not in done]
        bars[v.key](len(prompts) - len(todo))
        backend = backend_for(config, v)
        problems = [f"{c.check} {c.detail}" for c in backend.checks() if not c.ok]
        if problems and todo:  # like a rejected key: stop before sending, keep its prompts undone
            stats.stopped = "cannot run: " + "; ".join(problems)
            console.warn(f"{v.model.name}/{v.name}: {stats.stopped}; its {len(todo)} prompts stay undone")
            continue
        job = (config, v, backend, todo, journal, run.run_id, stats, bars[v.key])
        (local if backend.local else api).append(job)

    async def timed(stats: VariantStats, coro) -> None:
        start = time.monotonic()
        try:
            await coro
        finally:
            stats.seconds += time.monotonic() - start

    def locals_in_turn() -> None:
        for job in local:
            start = time.monotonic()
            try:
                _run_local_variant(*job, executor)
            finally:
                job[6].seconds += time.monotonic() - start

    tasks = [timed(job[6], _run_api_variant(*job)) for job in api]
    if local:
        tasks.append(asyncio.to_thread(locals_in_turn))
    await asyncio.gather(*tasks)


def _write_outputs(
    config, raw_config, prompts, chosen, journals, run: PilotRun, prompts_file, seconds
) -> None:
    from ucli.artifacts import write_artifact, write_table
    from ucli.secrets import redact

    order = {p.id: i for i, p in enumerate(prompts)}
    runs: list[dict[str, Any]] = []
    for v in chosen:
        records = sorted(journals[v.key].records(), key=lambda r: order.get(r["prompt_id"], len(order)))
        write_table(run.output / "results" / f"{v.key}.jsonl", records, "halluc.pilot.variant-results",
                    inputs=[prompts_file] if prompts_file else [], seed=config.seed,
                    config={"run_id": run.run_id, "variant": v.key})  # fmt: skip
        runs.extend(records)
    metadata = {"run_id": run.run_id, "prompts_file": str(prompts_file) if prompts_file else None,
                "num_prompts": len(prompts), "variants": [f"{v.model.name}/{v.name}" for v in chosen],
                "config": redact(raw_config)}  # fmt: skip
    write_artifact(run.output / "results.json", RESULTS_SCHEMA, 1, {"metadata": metadata, "runs": runs},
                   inputs=[prompts_file] if prompts_file else [], seed=config.seed, config=redact(raw_config))  # fmt: skip
    summary = {
        "run_id": run.run_id,
        "seconds": seconds,
        "complete": run.complete,
        "variants": [s.as_dict() for s in run.stats],
    }
    write_artifact(run.output / "summary.json", SUMMARY_SCHEMA, 1, summary, seed=config.seed,
                   config=redact(raw_config))  # fmt: skip
