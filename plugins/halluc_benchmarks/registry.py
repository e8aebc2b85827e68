"""Find benchmarks by name through `ucli.plugins`, and build them with only the options they take."""

from __future__ import annotations

import inspect
from typing import Any

from halluc_benchmarks.base import Benchmark
from ucli import plugins
from ucli.errors import BadInput


def get_benchmark(name: str, **options: Any) -> Benchmark:
    """An instance of the benchmark registered as `name`; unknown names and options are bad input."""
    cls = plugins.load("benchmarks", name)
    if not (isinstance(cls, type) and issubclass(cls, Benchmark)):
        raise BadInput(f"benchmark '{name}' ({cls!r}) is not a halluc_benchmarks.Benchmark subclass")
    given = {k: v for k, v in options.items() if v is not None}
    # the options its own constructor names (object's `*args, **kwargs` are no options)
    params = (
        list(inspect.signature(cls.__init__).parameters.values())
        if cls.__init__ is not object.__init__
        else []
    )
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = {p.name for p in params if p.kind in named} - {"self"}
    any_option = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    extra = [] if any_option else sorted(set(given) - accepted)
    if extra:
        takes = ", ".join(f"--{a.replace('_', '-')}" for a in sorted(accepted)) or "no options"
        raise BadInput(
            f"benchmark '{name}' does not take {', '.join('--' + e.replace('_', '-') for e in extra)} (it takes: {takes})"
        )
    return cls(**given)


def judged_pairs(bench: Benchmark, samples: list) -> tuple[list, Any]:
    """The samples as prompt/reference pairs, prompted as the benchmark prompts a chat model, and
    a judge `(pair, answer) -> correct` by the benchmark's own rules (what calibration and
    scoring read)."""
    from ucli.data import PromptPair

    by_id = {s.id: s for s in samples}
    pairs = [PromptPair(id=s.id, prompt=bench.chat_message(s), reference=s.reference) for s in samples]
    return pairs, lambda pair, answer: bench.score(by_id[pair.id], answer).correct
