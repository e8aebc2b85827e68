"""Stages: the passes that produce the statistics estimators read (entry-point group `halluc.stages`).

A stage declares the statistics it `provides` and those it `requires` (another stage's); an
estimator declares the ones it `needs`. `resolve` runs only the stages the chosen estimators need,
each after the stages it requires, and refuses a need no installed stage provides before any work
(LM-Polygraph's stat calculators and their resolver are the model). The built-in stages of `halluc
uq score` are the greedy decode (token log-probs, distributions, RAUQ's attention), the greedy
answers' extras (a second prompt, token relevance, alternatives) and the K samples with their
judge and hidden states; they register like a third party's:

    [project.entry-points."halluc.stages"]
    my_statistic = "my_pkg.uq:MY_STAGE"

A stage's `run(run)` adds its fields to `run.records` (one dict per question, in order; the decode
makes them); a slow stage journals beside `run.journal_path` so a killed run resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halluc_signals.estimators import Estimator
from ucli.errors import BadInput


@dataclass
class StageRun:
    """What a stage reads and writes: the model, the questions, their records (a stage adds its
    fields), the chosen estimators and the run's knobs (`options`: what the built-in stages take)."""

    lm: Any
    pairs: list[Any]
    estimators: list[Estimator]
    journal_path: Path
    resume: bool = False
    force: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def needs(self) -> frozenset[str]:
        return frozenset().union(*(e.needs for e in self.estimators))


@dataclass(frozen=True)
class Stage:
    """A computation that produces statistics. `serves(estimator)` says whether an estimator needs
    this stage (default: it needs one of `provides`); a stage whose statistic also comes from
    another stage in another sense (token relevance of the greedy answer or of the samples) says so."""

    name: str
    provides: frozenset[str]
    run: Callable[[StageRun], None]
    requires: frozenset[str] = frozenset()
    serves: Callable[[Estimator], bool] | None = None

    def wanted_by(self, estimator: Estimator) -> bool:
        return self.serves(estimator) if self.serves is not None else bool(estimator.needs & self.provides)


def stage_registry() -> dict[str, Stage]:
    """Every stage that loaded, by name (entry points `halluc.stages`)."""
    from ucli import plugins

    return {info.name: info.obj for info in plugins.discover("stages") if info.status == "ok"}


def resolve(estimators: list[Estimator], available: dict[str, Stage] | None = None) -> list[Stage]:
    """The stages `estimators` need, each after the ones providing what it requires; a statistic no
    stage provides is one line naming the estimator, before any work."""
    from graphlib import TopologicalSorter

    available = available if available is not None else stage_registry()
    provider = {stat: s for s in available.values() for stat in s.provides}
    for e in estimators:
        missing = sorted(e.needs - provider.keys())
        if missing:
            raise BadInput(f"estimator '{e.name}' needs {', '.join(missing)}, which no installed stage provides "
                           f"(known: {', '.join(sorted(provider))})")  # fmt: skip
    chosen = {s.name: s for s in available.values() if any(s.wanted_by(e) for e in estimators)}
    todo = list(chosen.values())
    while todo:  # what the chosen stages require, transitively
        stage = todo.pop()
        for stat in stage.requires:
            if stat not in provider:
                raise BadInput(f"stage '{stage.name}' requires {stat}, which no installed stage provides")
            if provider[stat].name not in chosen:
                chosen[provider[stat].name] = provider[stat]
                todo.append(provider[stat])
    graph = {s.name: {provider[stat].name for stat in s.requires} - {s.name} for s in chosen.values()}
    ordered = TopologicalSorter(graph).static_order()
    rank = {name: i for i, name in enumerate(available)}  # ties keep the registry's order
    return [chosen[name] for name in sorted(ordered, key=_order_key(graph, rank))]


def _order_key(graph: dict[str, set[str]], rank: dict[str, int]) -> Callable[[str], tuple[int, int]]:
    """Sort by dependency depth, then by registry order: deterministic, and requirements first."""

    def depth(name: str) -> int:
        return 1 + max((depth(p) for p in graph[name]), default=-1)

    return lambda name: (depth(name), rank[name])
