"""`halluc uq score --backend NAME`: every estimator that can run on a model reached through a
backend (an API, a vLLM server, a local model through `hf`), from what that backend gives.

Per question, only what a chosen estimator needs is asked, one request each, journaled as it
returns (keyed `ID/KIND/I`), so a killed run resumes and sends only what is missing:
- `greedy`: the answer at temperature 0, with the top-k log-probs where the backend gives them;
- `sample` 0..K-1: at --temperature and --top-p, with seed + i where the backend takes a seed;
- `p_true`: the P(True) prompt about the greedy answer (`halluc_uq.extras.P_TRUE_PROMPT`), one
  token with its top-k log-probs;
- `verbalized`: the confidence prompt about the greedy answer (`halluc_signals.verbalized`).
The samples go out beside the greedy answer; the two follow-ups after it. Every request of one
model spends one rate limit (`halluc_backends.Budget`), which an LLM correctness judge of the same
model shares. The equivalence judge and the correctness verdicts run here, after the requests.

From top-k log-probs (approximations, stated in docs/uq.md): a token's entropy is that of the top-k
renormalised; the margin (top-1 minus top-2) is exact; p(True) reads "True" and "False" among the
first reply token's top-k, an absent one bounded by the least returned log-prob (neither: None).
A local backend (`hf`) gives each step's whole distribution: its entropy and margin are exact.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from halluc_backends import Capabilities
from halluc_signals import Estimator, answer_scores
from ucli.data import PromptPair
from ucli.errors import BadInput, HallucError


@dataclass(frozen=True)
class BackendConfig:
    """Which model, through which backend, and how fast it may be asked (the pilot's knobs)."""

    backend: str
    model: str
    base_url: str | None = None
    timeout: float | None = None
    requests_per_minute: float = 60.0
    tokens_per_minute: float | None = None
    concurrency: int = 4
    max_retries: int = 3
    max_new_tokens: int = 32
    batch_size: int = 8  # a local backend's prompts per batch
    load: dict[str, Any] | None = None  # a local backend's load knobs (device, dtype, ...)

    def make(self) -> Any:
        from halluc_backends import backend_class

        cls = backend_class(self.backend)
        options = {k: v for k, v in (("base_url", self.base_url), ("timeout", self.timeout)) if v is not None}
        return cls(self.model, **options, **((self.load or {}) if cls.local else {}))

    def limits(self) -> Any:
        from halluc_backends import Limits

        return Limits(requests_per_minute=self.requests_per_minute, tokens_per_minute=self.tokens_per_minute,
                      concurrency=self.concurrency, max_retries=self.max_retries)  # fmt: skip

    def recorded(self) -> dict[str, Any]:
        """What the scores' provenance keeps (the base URL's host may be private: kept, a key never is)."""
        return {k: v for k, v in asdict(self).items() if k != "load"}


def servable(estimators: list[Estimator], backend: Any) -> list[Estimator]:
    """The estimators `backend` can serve, from its declared capabilities."""
    gives = backend.capabilities.statistics()
    return [e for e in estimators if e.needs <= gives]


def check_servable(estimators: list[Estimator], backend: Any) -> None:
    """One line, before any request, for the first estimator the backend cannot serve: what it
    needs and what the backend gives."""
    gives = backend.capabilities.statistics()
    for e in estimators:
        missing = sorted(e.needs - gives)
        if missing:
            raise BadInput(f"--estimators: '{e.name}' needs {', '.join(missing)}, which backend '{backend.name}' "
                           f"does not give (it gives {backend.capabilities.describe()}); `halluc uq list` "
                           "says what each estimator needs")  # fmt: skip


@dataclass(frozen=True)
class Ask:
    """One request: its journal key, prompt and sampling parameters."""

    key: str
    prompt: str
    params: Any


class Plan:
    """What to ask of each question, from the chosen estimators' needs and the backend's capabilities."""

    def __init__(
        self, estimators: list[Estimator], backend: Any, config: BackendConfig, sampling: Any, seed: int
    ):
        from halluc_backends import SamplingParams

        needs = frozenset().union(*(e.needs for e in estimators))
        caps = backend.capabilities
        self.samples = sampling.samples if "samples" in needs else 0
        self.p_true, self.verbalized = "second-prompt" in needs, "verbalized" in needs
        self.clusters, self.consistency = "judge" in needs, "consistency" in needs
        k = caps.top_logprobs if needs & {"logprobs", "distributions"} else 0
        if needs & {"logprobs", "distributions"} and not k:
            k = 1 if caps.logprobs else 0
        seeded = lambda i: seed + i if caps.seed else None  # noqa: E731
        self.greedy = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=config.max_new_tokens, seed=seeded(0),
                                     top_logprobs=k)  # fmt: skip
        sample_k = 1 if "sample-logprobs" in needs else 0
        self.sampled = [SamplingParams(temperature=sampling.temperature, top_p=sampling.top_p,
                                       max_tokens=config.max_new_tokens, seed=seeded(i), top_logprobs=sample_k)
                        for i in range(self.samples)]  # fmt: skip
        self.truth = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=1, seed=seeded(0),
                                    top_logprobs=max(caps.top_logprobs, 2))  # fmt: skip
        from halluc_signals import CONFIDENCE_TOKENS

        self.stated = SamplingParams(
            temperature=0.0, top_p=1.0, max_tokens=CONFIDENCE_TOKENS, seed=seeded(0), top_logprobs=0
        )

    def per_question(self) -> int:
        return 1 + self.samples + self.p_true + self.verbalized

    def first(self, pair: PromptPair) -> list[Ask]:
        """The requests that need nothing else: the greedy answer and the samples."""
        return [Ask(f"{pair.id}/greedy/0", pair.prompt, self.greedy),
                *(Ask(f"{pair.id}/sample/{i}", pair.prompt, p) for i, p in enumerate(self.sampled))]  # fmt: skip

    def then(self, pair: PromptPair, answer: str) -> list[Ask]:
        """The follow-ups about the greedy answer."""
        from halluc_signals import confidence_prompt
        from halluc_uq.extras import P_TRUE_PROMPT

        asks = []
        if self.p_true:
            asks.append(Ask(f"{pair.id}/p_true/0", P_TRUE_PROMPT.format(question=pair.prompt, answer=answer),
                            self.truth))  # fmt: skip
        if self.verbalized:
            asks.append(Ask(f"{pair.id}/verbalized/0", confidence_prompt(pair.prompt, answer), self.stated))
        return asks


def score_backend(
    backend: Any,
    pairs: list[PromptPair],
    *,
    estimators: list[Estimator],
    config: BackendConfig,
    sampling: Any,
    journal_path: Path,
    resume: bool = False,
    force: bool = False,
    judge: Callable[[PromptPair, str], bool] | None = None,
    seed: int = 0,
    progress: Callable[[int], None] = lambda n: None,
) -> list[dict[str, Any]]:
    """Each question's record (the fields a local decode writes where the backend gives them:
    `completion`, `tokens`, `token_logprobs`, `token_entropy`, `token_margin`; `samples`, their
    clusters and similarities, `p_true`/`p_false`, `verbalized_confidence`, the verdict) with `uq`,
    in the pairs' order. Requests that failed after their retries are not kept: the run stops with
    one line after the rest are journaled, and --resume sends only those."""
    from halluc_uq.sampling import make_sample_judge
    from ucli.journal import Journal

    check_servable(estimators, backend)
    plan = Plan(estimators, backend, config, sampling, seed)
    # the equivalence judge loads before any request: one that cannot load must not strand a journal
    equivalence = make_sample_judge(sampling, "cpu") if plan.clusters or plan.consistency else None
    journal_config = {"backend": config.backend, "model": config.model, "max_new_tokens": config.max_new_tokens,
                      "samples": plan.samples, "temperature": sampling.temperature, "top_p": sampling.top_p,
                      "seed": seed, "top_logprobs": plan.greedy.top_logprobs, "p_true": plan.p_true,
                      "verbalized": plan.verbalized}  # fmt: skip
    from halluc_backends import one_budget

    # one rate limit for the model while it is asked, a judge of the same model included
    with one_budget(backend, config.limits()), \
            Journal(journal_path, config=journal_config, resume=resume, force=force) as journal:  # fmt: skip
        got = {r["id"]: r for r in journal.records()}
        progress(len(got))
        failures = (_LocalAsker if backend.local else _APIAsker)(backend, config, journal, got, progress).run(
            plan, pairs
        )
        if failures:
            key, error = failures[0]
            raise HallucError(f"{len(failures)} request(s) failed after their retries (first: {key}: {error}); "
                              f"the {len(got)} answered are kept in {journal_path}: rerun with --resume "
                              "to send only the rest")  # fmt: skip
        records = [assemble(pair, got, plan, equivalence, judge) for pair in pairs]
    for record in records:
        record["uq"] = answer_scores(record, estimators)
    return records


def _kept(ask: Ask, gen: Any) -> dict[str, Any]:
    return {"id": ask.key, "text": gen.text, "finish_reason": gen.finish_reason, "positions": gen.token_logprobs,
            "input_tokens": gen.input_tokens, "output_tokens": gen.output_tokens}  # fmt: skip


class _APIAsker:
    """Requests to an API model: concurrent under one `Caller` (rate limit, retries). An
    authentication or transport failure stops the model; the rest are recorded as failures."""

    def __init__(self, backend: Any, config: BackendConfig, journal: Any, got: dict[str, Any],
                 progress: Callable[[int], None]) -> None:  # fmt: skip
        self.backend, self.config, self.journal, self.got, self.progress = (
            backend,
            config,
            journal,
            got,
            progress,
        )
        self.failures: list[tuple[str, str]] = []

    def run(self, plan: Plan, pairs: list[PromptPair]) -> list[tuple[str, str]]:
        asyncio.run(self._all(plan, pairs))
        return self.failures

    async def _all(self, plan: Plan, pairs: list[PromptPair]) -> None:
        from halluc_backends import Caller

        self.caller, self.stop = Caller(self.backend, self.config.limits()), asyncio.Event()
        try:
            await asyncio.gather(*(self._question(plan, p) for p in pairs))
        finally:
            await self.backend.aclose()

    async def _question(self, plan: Plan, pair: PromptPair) -> None:
        greedy, *samples = plan.first(pair)

        async def greedy_then_follow_ups() -> None:
            await self._one(greedy)
            if greedy.key in self.got:
                await asyncio.gather(*(self._one(a) for a in plan.then(pair, self.got[greedy.key]["text"])))

        await asyncio.gather(greedy_then_follow_ups(), *(self._one(a) for a in samples))

    async def _one(self, ask: Ask) -> None:
        from halluc_backends import BackendError

        if ask.key in self.got:
            return
        async with self.caller.gate:
            if self.stop.is_set():
                return
            try:
                gen = await self.caller.answer(ask.prompt, ask.params, [0])
            except BackendError as exc:
                self.failures.append((ask.key, str(exc)))
                if exc.auth or exc.transport:
                    self.stop.set()
                return
        self.got[ask.key] = _kept(ask, gen)
        self.journal.append(self.got[ask.key])
        self.progress(1)


class _LocalAsker(_APIAsker):
    """Requests to a model in this process, in batches of one kind (the same sampling parameters):
    the greedy answers, each sample index, then the follow-ups."""

    def run(self, plan: Plan, pairs: list[PromptPair]) -> list[tuple[str, str]]:
        firsts = [plan.first(p) for p in pairs]
        for column in range(1 + plan.samples):
            self._batches([asks[column] for asks in firsts])
        follow_ups = [a for p in pairs if f"{p.id}/greedy/0" in self.got
                      for a in plan.then(p, self.got[f"{p.id}/greedy/0"]["text"])]  # fmt: skip
        for kind in ("p_true", "verbalized"):
            self._batches([a for a in follow_ups if f"/{kind}/" in a.key])
        return self.failures

    def _batches(self, asks: list[Ask]) -> None:
        todo = [a for a in asks if a.key not in self.got]
        size = self.config.batch_size
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            for ask, gen in zip(batch, self.backend.generate_batch([a.prompt for a in batch], batch[0].params),
                                strict=True):  # fmt: skip
                self.got[ask.key] = _kept(ask, gen)
                self.journal.append(self.got[ask.key])
                self.progress(1)


def assemble(
    pair: PromptPair, got: dict[str, Any], plan: Plan, equivalence: Any, judge: Any
) -> dict[str, Any]:
    """One question's record from its journaled requests."""
    from halluc_signals import judged
    from halluc_uq.sampling import judged_samples

    greedy = got[f"{pair.id}/greedy/0"]
    record: dict[str, Any] = {"id": pair.id, "prompt": pair.prompt, "completion": greedy["text"],
                              "finish_reason": greedy["finish_reason"]}  # fmt: skip
    record.update(token_statistics(greedy["positions"]))
    if plan.samples:
        sampled = [got[f"{pair.id}/sample/{i}"] for i in range(plan.samples)]
        record["samples"] = [{"answer": s["text"], "logprobs": _logprobs(s["positions"]),
                              **({"tokens": [p["token"] for p in s["positions"]]} if s["positions"] else {})}
                             for s in sampled]  # fmt: skip
        if equivalence is not None:
            record.update(judged_samples(equivalence, pair.prompt, [s["text"] for s in sampled],
                                         clusters=plan.clusters, greedy=greedy["text"] if plan.consistency else None))  # fmt: skip
    if plan.p_true:
        record["p_true"], record["p_false"] = true_false(got[f"{pair.id}/p_true/0"]["positions"])
    if plan.verbalized:
        from halluc_signals import parse_confidence

        reply = got[f"{pair.id}/verbalized/0"]["text"]
        record.update(verbalized_confidence=parse_confidence(reply), verbalized_reply=reply)
    if pair.reference is not None and judge is not None:
        record.update(reference=pair.reference, **judged(judge, pair, greedy["text"]))
    return record


def _logprobs(positions: list[dict[str, Any]] | None) -> list[float] | None:
    return None if positions is None else [float(p["logprob"]) for p in positions]


def token_statistics(positions: list[dict[str, Any]] | None) -> dict[str, Any]:
    """`tokens` and `token_logprobs` of an answer with log-probs, and each step's `token_entropy` and
    `token_margin`: a local backend's exact values, else from the returned top-k (entropy of the
    top-k renormalised; margin top-1 minus top-2). Nothing without log-probs."""
    if positions is None:
        return {}
    out: dict[str, Any] = {"tokens": [p["token"] for p in positions], "token_logprobs": _logprobs(positions)}
    if positions and all("entropy" in p and "margin" in p for p in positions):
        out.update(
            token_entropy=[p["entropy"] for p in positions], token_margin=[p["margin"] for p in positions]
        )
    elif positions and all(len(p.get("top") or []) >= 2 for p in positions):
        out.update(token_entropy=[top_k_entropy(p["top"]) for p in positions],
                   token_margin=[math.exp(p["top"][0]["logprob"]) - math.exp(p["top"][1]["logprob"])
                                 for p in positions])  # fmt: skip
    return out


def top_k_entropy(top: list[dict[str, Any]]) -> float:
    """The entropy (nats) of the top-k log-probs renormalised to one distribution."""
    import numpy as np

    logp = np.array([t["logprob"] for t in top], dtype=np.float64)
    logp = logp - np.logaddexp.reduce(logp)
    return float(-(np.exp(logp) * logp).sum())


def true_false(positions: list[dict[str, Any]] | None) -> tuple[float | None, float | None]:
    """(log p("True"), log p("False")) as the reply's first token, read among its top-k (the token
    stripped of spaces); an absent word is bounded by the least returned log-prob; neither: None."""
    if not positions or not positions[0].get("top"):
        return None, None
    top = positions[0]["top"]
    found = {t["token"].strip(): float(t["logprob"]) for t in reversed(top)}
    if "True" not in found and "False" not in found:
        return None, None
    floor = min(float(t["logprob"]) for t in top)
    return found.get("True", floor), found.get("False", floor)


def claim_truth(backend: Any, config: BackendConfig) -> Callable[[list[tuple[str, str]]], list[tuple]]:
    """(log p("True"), log p("False")) of (question, claim) items through the backend: the P(True)
    prompt with the claim as the answer (`P_TRUE_PROMPT`), one request each under the run's limits,
    read as the answers' are (`true_false`). Not journaled: a resumed run asks these again."""
    from halluc_backends import LocalBackend, SamplingParams
    from halluc_uq.extras import P_TRUE_PROMPT

    params = SamplingParams(
        temperature=0.0, top_p=1.0, max_tokens=1, top_logprobs=max(backend.capabilities.top_logprobs, 2)
    )

    def ask(items: list[tuple[str, str]]) -> list[tuple]:
        prompts = [P_TRUE_PROMPT.format(question=q, answer=claim) for q, claim in items]
        if isinstance(backend, LocalBackend):
            return [true_false(g.token_logprobs) for g in backend.generate_batch(prompts, params)]
        return asyncio.run(_asked(backend, config, prompts, params))

    return ask


async def _asked(backend: Any, config: BackendConfig, prompts: list[str], params: Any) -> list[tuple]:
    from halluc_backends import Caller

    caller = Caller(backend, config.limits())

    async def one(prompt: str) -> tuple:
        async with caller.gate:
            return true_false((await caller.answer(prompt, params, [0])).token_logprobs)

    try:
        return list(await asyncio.gather(*(one(p) for p in prompts)))
    finally:
        await backend.aclose()


def model_doc(source: Any) -> dict[str, Any]:
    """The scores' model provenance for a model reached through a backend or read from a pilot run."""
    return {"name": source.model, "backend": source.name}


@dataclass
class PilotAnswers:
    """One pilot variant's results (`halluc pilot run`, with `--samples K` for the sampled
    estimators): what they can serve is what they recorded."""

    path: Path
    records: list[dict[str, Any]]
    model: str
    name: str = "pilot run"

    @property
    def samples(self) -> int:
        return min((len(r.get("samples") or []) for r in self.records), default=0)

    @property
    def capabilities(self) -> Any:
        """Log-probs where every answer has them (the top-k the pilot asked for); no follow-up
        requests (p(True), a verbalized confidence) and no samples unless the run drew them."""

        positions = [r.get("token_logprobs") for r in self.records]
        logprobs = bool(self.records) and all(p is not None for p in positions)
        top = (
            min((len(step.get("top") or []) for p in positions if p for step in p), default=0)
            if logprobs
            else 0
        )
        return Recorded(logprobs=logprobs, top_logprobs=top, sampled=self.samples >= 2)

    def describe(self) -> str:
        return f"pilot run {self.path} ({self.model})"


@dataclass(frozen=True)
class Recorded(Capabilities):
    """What a finished run's records hold, in a backend's terms: no follow-up requests, and no
    samples unless the run drew them."""

    sampled: bool = False

    def statistics(self) -> frozenset[str]:
        gives = super().statistics() - {"second-prompt", "verbalized"}  # each would need another request
        return gives if self.sampled else gives - {"samples", "sample-logprobs", "judge", "consistency"}

    def describe(self) -> str:
        return super().describe() + (", samples" if self.sampled else ", no samples (pilot run --samples K)")


def read_pilot(path: Path) -> PilotAnswers:
    """A pilot run folder with one variant, or one `results/VARIANT.jsonl`; answers that failed are
    left out (a warning says how many)."""
    from ucli import console
    from ucli.data import read_records

    path = Path(path)
    if path.is_dir():
        found = sorted((path / "results").glob("*.jsonl"))
        if len(found) != 1:
            names = ", ".join(f.name for f in found) or "none"
            raise BadInput(f"--from-pilot {path}: expected a run folder with one variant's results/*.jsonl "
                           f"(found {names}); name one file")  # fmt: skip
        path = found[0]
    if not path.is_file():
        raise BadInput(f"--from-pilot {path}: no such pilot run folder or results file")
    rows = [r.data for r in read_records(path)]
    if not rows or not {"prompt_id", "full_response"} <= rows[0].keys():
        raise BadInput(
            f"--from-pilot {path}: not a pilot results file (expected prompt_id, full_response, ...)"
        )
    kept = [r for r in rows if r.get("error") is None and r.get("full_response") is not None]
    if len(kept) < len(rows):
        console.warn(f"{path}: {len(rows) - len(kept)} failed answer(s) left out")
    if len({r["model"] for r in rows}) > 1:
        raise BadInput(
            f"--from-pilot {path}: answers of more than one model; name one variant's results file"
        )
    return PilotAnswers(path, kept, str(rows[0]["model"]))


def score_pilot(pilot: PilotAnswers, *, estimators: list[Estimator], sampling: Any) -> list[dict[str, Any]]:
    """The pilot's answers scored as `score_backend` scores its own (the same records), with a
    verdict where a prompt carried a `reference` (the `local` benchmark's rules) or a `correct`."""
    from dataclasses import replace

    from halluc_uq.sampling import make_sample_judge
    from halluc_uq.scoring import reference_judge
    from ucli.data import parse_verdict

    plan = Plan(estimators, pilot, BackendConfig(backend="pilot", model=pilot.model),
                replace(sampling, samples=pilot.samples), 0)  # fmt: skip
    equivalence = make_sample_judge(sampling, "cpu") if plan.clusters or plan.consistency else None
    judge = reference_judge(pilot.path)
    records = []
    for r in pilot.records:
        meta = r.get("prompt_metadata") or {}
        pair = PromptPair(id=str(r["prompt_id"]), prompt=r["prompt"], reference=meta.get("reference"))
        got = {f"{pair.id}/greedy/0": {"text": r["full_response"], "positions": r.get("token_logprobs"),
                                       "finish_reason": r.get("finish_reason")}}  # fmt: skip
        for i, s in enumerate((r.get("samples") or [])[: plan.samples]):
            got[f"{pair.id}/sample/{i}"] = {"text": s["text"], "positions": s.get("token_logprobs")}
        record = assemble(pair, got, plan, equivalence, judge if pair.reference is not None else None)
        if meta.get("correct") not in (None, ""):
            record["correct"] = int(parse_verdict(meta["correct"], f"{pilot.path}: prompt {pair.id}"))
        record["uq"] = answer_scores(record, estimators)
        records.append(record)
    return records
