"""`arith`: seeded multi-step arithmetic word problems with exact integer answers, any size."""

from __future__ import annotations

import random

from halluc_benchmarks.base import Benchmark, Sample
from ucli.errors import BadInput

NAMES = ("Ava", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam")
ITEMS = ("apples", "marbles", "stickers", "coins", "books", "pencils", "shells", "cards")
FRACTIONS = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth"}


class Arith(Benchmark):
    name = "arith"
    description = (
        "Seeded multi-step arithmetic word problems with exact integer answers (-B steps=N, -B size=N)."
    )
    splits = ("train", "test")
    answer_type = "final-number"
    instruction = "Give the final number."

    def __init__(self, steps: int = 3, size: int = 200):
        if not 1 <= steps <= 12:
            raise BadInput(f"arith: -B steps must be between 1 and 12, got {steps}")
        if size < 1:
            raise BadInput(f"arith: -B size must be at least 1, got {size}")
        self.steps, self.size = steps, size

    def problem(self, split: str, index: int) -> Sample:
        """Problem `index` of a split: the same text and answer whatever the size asked for."""
        rng = random.Random(f"arith:{split}:{self.steps}:{index}")
        who, what = rng.choice(NAMES), rng.choice(ITEMS)
        value = rng.randint(5, 40)
        parts = [f"{who} has {value} {what}."]
        for _ in range(self.steps):
            op = rng.choice(("add", "sub", "mul", "div") if value > 1 else ("add", "mul"))
            if op == "add":
                k = rng.randint(2, 30)
                value += k
                parts.append(f"Then {who} gets {k} more.")
            elif op == "sub":
                k = rng.randint(1, max(1, value - 1))
                value -= k
                parts.append(f"Then {who} gives away {k}.")
            elif op == "mul":
                k = rng.randint(2, 4)
                value *= k
                parts.append(f"Then the number of {what} is multiplied by {k}.")
            else:
                divisors = [d for d in (2, 3, 4, 5) if value % d == 0]
                if not divisors:
                    k = rng.randint(2, 30)
                    value += k
                    parts.append(f"Then {who} gets {k} more.")
                    continue
                k = rng.choice(divisors)
                value //= k
                parts.append(f"Then {who} keeps only {FRACTIONS[k]} of them.")
        parts.append(f"How many {what} does {who} have now?")
        return Sample(
            id=f"arith-s{self.steps}-{split}-{index}",
            prompt=" ".join(parts),
            reference=str(value),
            metadata={"steps": self.steps, "split": split},
        )

    def _load(self, split: str) -> list[Sample]:
        return [self.problem(split, i) for i in range(self.size)]
