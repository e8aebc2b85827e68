"""Find benchmarks by name through `ucli.plugins`, and build them with only the options they take."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from halluc_benchmarks.base import Benchmark
from halluc_benchmarks.quality import CorrectIf, get_measure
from ucli import plugins
from ucli.errors import BadInput


def get_benchmark(name: str, **options: Any) -> Benchmark:
    """An instance of the benchmark registered as `name`, built with `options` (`--data-file` and
    the `-B key=value` pairs: a string is typed by the constructor's annotation) and `correct_if`
    (`--correct-if`: the verdict rule every benchmark takes); an unknown name, an option it does
    not take, a value of the wrong type or an unknown quality measure is bad input."""
    cls = plugins.load("benchmarks", name)
    if not (isinstance(cls, type) and issubclass(cls, Benchmark)):
        raise BadInput(f"benchmark '{name}' ({cls!r}) is not a halluc_benchmarks.Benchmark subclass")
    rule = options.pop("correct_if", None)
    judges = {k: options.pop(k) for k in JUDGE_OPTIONS if k in options}
    typed = benchmark_options(name, cls, options)
    bench = cls(**typed)
    recorded = dict(typed)
    if judges.get("judge"):  # a panel of LLM judges, the `judge` measure of this run
        panel = get_measure("judge")(judges["judge"], judges.get("judge_prompt") or "semantic-entropy",
                                     judges.get("judge_combine") or "majority", rpm=float(judges.get("judge_rpm") or 60))  # fmt: skip
        bench.measures = {"judge": panel}
        bench.correct_if = "judge>0.5"
        recorded["judge"] = panel.describe()
    if rule is not None:
        bench.correct_if = recorded["correct_if"] = str(CorrectIf.parse(rule))
    if bench.correct_if and isinstance(bench.measure(CorrectIf.parse(bench.correct_if).measure), type):
        raise BadInput(
            f"--correct-if {bench.correct_if}: that measure is a judge; name it with --judge BACKEND:MODEL"
        )
    bench.options = recorded
    return bench


# how every command names its judges (`ucli.options.BENCHMARK`)
JUDGE_OPTIONS = ("judge", "judge_prompt", "judge_combine", "judge_rpm")


def verdict_options(given: dict[str, Any]) -> dict[str, Any]:
    """The options of `given` that set how answers are judged (the rule, the judges), which a
    command's own questions file (`local`) takes as much as a named benchmark."""
    return {k: given[k] for k in ("correct_if", *JUDGE_OPTIONS) if given.get(k) is not None}


# the benchmark options every run recorded before -B (so a run of then resumes and compares)
RECORDED = ("metric", "steps", "size")


def recorded_options(bench: Benchmark) -> dict[str, Any]:
    """A benchmark's options as run provenance records them: the three keys runs always recorded,
    then any other option it was given (--data-file is recorded as an input)."""
    given = getattr(bench, "options", {})
    return {
        **{k: given.get(k) for k in RECORDED},
        **{k: v for k, v in given.items() if k not in (*RECORDED, "data_file")},
    }


def option_types(cls: type[Benchmark]) -> tuple[dict[str, Any], bool]:
    """The options a benchmark's constructor names with their types, and whether it takes any
    (`**kwargs`); object's `*args, **kwargs` are no options."""
    if cls.__init__ is object.__init__:
        return {}, False
    params = list(inspect.signature(cls.__init__).parameters.values())
    hints = typing.get_type_hints(cls.__init__)
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    types = {p.name: hints.get(p.name, Any) for p in params if p.kind in named and p.name != "self"}
    return types, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def option_table(cls: type[Benchmark]) -> list[dict[str, Any]]:
    """What `benchmarks show` lists: each -B option's name, type and default (--data-file is its own option)."""
    types, _ = option_types(cls)
    params = inspect.signature(cls.__init__).parameters
    return [{"name": k, "type": getattr(t, "__name__", str(t)).replace("typing.", ""),
             "default": params[k].default if params[k].default is not inspect.Parameter.empty else None}
            for k, t in types.items() if k != "data_file"]  # fmt: skip


def benchmark_options(name: str, cls: type[Benchmark], options: dict[str, Any]) -> dict[str, Any]:
    """`options` as the benchmark's constructor takes them: None dropped, each typed, each checked."""
    from pydantic import TypeAdapter, ValidationError

    types, any_option = option_types(cls)
    given = {k: v for k, v in options.items() if v is not None}
    extra = [] if any_option else sorted(set(given) - set(types))
    if extra:
        takes = ", ".join(sorted(types)) or "no options"
        raise BadInput(f"benchmark '{name}' does not take -B {', '.join(extra)} (it takes: {takes})")
    typed = {}
    for key, value in given.items():
        try:
            typed[key] = TypeAdapter(types.get(key, Any)).validate_python(value)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise BadInput(
                f"benchmark '{name}': -B {key}={value}: {reason[:1].lower() + reason[1:]}"
            ) from None
    return typed


def judged_pairs(bench: Benchmark, samples: list) -> tuple[list, BenchmarkJudge]:
    """The samples as prompt/reference pairs, prompted as the benchmark prompts a chat model, and
    a judge `(pair, answer) -> correct` by the benchmark's own rules (what calibration and
    scoring read)."""
    from ucli.data import PromptPair

    # a sample without an answer is judged all the same where a measure reads "no answer" (SQuAD v2)
    unanswerable = "" if bench.correct_if else None
    pairs = [PromptPair(id=s.id, prompt=bench.chat_message(s), reference=s.reference if s.references else unanswerable,
                        metadata=dict(s.metadata)) for s in samples]  # fmt: skip
    return pairs, BenchmarkJudge(bench, {s.id: s for s in samples})


class BenchmarkJudge:
    """`(pair, answer) -> correct` by a benchmark's rules; `verdict` is the whole Score, and
    `quality_measure` names the continuous measure behind it (None: the answer rules' 0/1)."""

    def __init__(self, bench: Benchmark, samples: dict[str, Any]):
        self.bench, self.samples = bench, samples
        self.quality_measure = CorrectIf.parse(bench.correct_if).measure if bench.correct_if else None

    def verdict(self, pair: Any, answer: str) -> Any:
        return self.bench.score(self.samples[pair.id], answer)

    def __call__(self, pair: Any, answer: str) -> bool:
        return self.verdict(pair, answer).correct
