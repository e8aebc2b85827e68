"""A panel of correctness judges as one quality measure (`judge`, registered in `halluc.metrics`):
each judge grades every answer, the grades combine by majority (ties 0.5) or mean, and the panel
says how much its judges agree (Cohen's kappa for two, Fleiss' kappa for any number)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from halluc_judges.correctness import PROMPTS, Item, Judge
from ucli.errors import BadInput

COMBINE = ("majority", "mean")


class Panel:
    """`judge`: what a panel of LLM judges says of an answer, 0-1 (NaN when every judge failed)."""

    name = "judge"
    description = "LLM judges' grade against the references (--judge BACKEND:MODEL, repeated for a panel)"
    source = f"the --judge-prompt: {', '.join(f'{p.name} ({p.source})' for p in PROMPTS.values())}"

    def __init__(self, specs: list[str], prompt: str = "semantic-entropy", combine: str = "majority",
                 cache: Path | None = None, rpm: float = 60.0):  # fmt: skip
        if combine not in COMBINE:
            raise BadInput(f"--judge-combine {combine!r}: expected one of {', '.join(COMBINE)}")
        if not specs:
            raise BadInput("a judge panel needs at least one --judge BACKEND:MODEL")
        from halluc_backends import Limits

        if not rpm > 0:
            raise BadInput(f"--judge-rpm {rpm}: expected a positive number of requests per minute")
        self.judges = [Judge(s, prompt, Limits(requests_per_minute=rpm), cache=cache) for s in specs]
        self.combine, self.prompt = combine, prompt
        self.grades: list[list[dict[str, Any]]] = []  # per judge, the last `many` call's grades

    def describe(self) -> dict[str, Any]:
        """What provenance records: the judges, the prompt, the rule."""
        return {
            "judges": [j.name for j in self.judges],
            "prompt": self.prompt,
            "combine": self.combine,
            "requests_per_minute": self.judges[0].limits.requests_per_minute,
        }

    def many(self, pairs: list[tuple[str, Any]]) -> list[float]:
        items = [Item(s.prompt, tuple(s.references), answer) for answer, s in pairs]
        self.grades = [j.grade(items) for j in self.judges]
        return [self._combined([g[i]["value"] for g in self.grades]) for i in range(len(items))]

    def __call__(self, answer: str, sample: Any) -> float:
        return self.many([(answer, sample)])[0]

    def _combined(self, values: list[float | None]) -> float:
        given = [v for v in values if v is not None]
        if not given:
            return math.nan
        mean = sum(given) / len(given)
        if self.combine == "mean":
            return mean
        return 1.0 if mean > 0.5 else 0.0 if mean < 0.5 else 0.5

    def agreement(self) -> dict[str, Any]:
        """Per judge its share graded right and its failures; kappas over the answers every judge graded."""
        per = {j.name: {"right": sum(g["value"] == 1.0 for g in gs), "graded": sum(g["value"] is not None for g in gs),
                        "failed": sum(g["value"] is None for g in gs)}
               for j, gs in zip(self.judges, self.grades, strict=True)}  # fmt: skip
        both = [
            i
            for i in range(len(self.grades[0]) if self.grades else 0)
            if all(g[i]["value"] is not None for g in self.grades)
        ]
        votes = [[int(g[i]["value"] >= 0.5) for g in self.grades] for i in both]
        out: dict[str, Any] = {"judges": per, "items_all_graded": len(both)}
        if len(self.judges) >= 2 and votes:
            out["fleiss_kappa"] = fleiss_kappa(votes)
        if len(self.judges) == 2 and votes:
            from sklearn.metrics import cohen_kappa_score

            a, b = zip(*votes, strict=True)
            out["cohen_kappa"] = float(cohen_kappa_score(a, b)) if len(set(a) | set(b)) > 1 else math.nan
        return out


def fleiss_kappa(votes: list[list[int]]) -> float:
    """Fleiss' kappa of binary votes (one row per item, one column per rater); NaN when chance
    agreement is total (every vote the same)."""
    n = len(votes[0])
    counts = [(row.count(0), row.count(1)) for row in votes]
    p = [sum(c[k] for c in counts) / (len(votes) * n) for k in (0, 1)]
    agree = sum((c0 * c0 + c1 * c1 - n) / (n * (n - 1)) for c0, c1 in counts) / len(votes)
    chance = sum(x * x for x in p)
    return math.nan if chance == 1 else (agree - chance) / (1 - chance)
