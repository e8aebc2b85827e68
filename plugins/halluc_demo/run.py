"""Answer benchmark questions greedily, keep each token's log-probability, and judge the answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ucli import console, plugins
from ucli.artifacts import require_fresh_dir, run_id, staged_dir, write_artifact, write_jsonl
from ucli.generation import generate_greedy
from ucli.models import DEFAULT_MODEL, load_model

SCHEMA = "halluc.demo.run"


@dataclass
class DemoResult:
    run_dir: Path
    summary: dict[str, Any]
    answers: list[dict[str, Any]] = field(default_factory=list)


def run_demo(
    model: str = DEFAULT_MODEL,
    benchmark: str = "facts",
    split: str = "test",
    questions: str | Path | None = None,
    limit: int | None = 12,
    max_new_tokens: int = 24,
    batch_size: int = 8,
    output: str | Path | None = None,
    device: str = "auto",
    seed: int = 0,
    adapter: str | Path | None = None,
) -> DemoResult:
    """Answer `limit` questions (shuffled with `seed`), judge them, write answers.jsonl + run.json.

    Questions come from a registered benchmark (default `facts`), or from a prompt/reference file
    through the `local` benchmark when `questions` is given.
    """
    import torch

    if questions:
        bench, split = plugins.load("benchmarks", "local")(data_file=questions), "test"
    else:
        bench = plugins.load("benchmarks", benchmark)()
    samples = bench.load(split, limit=limit, seed=seed)
    final = require_fresh_dir(output or Path("runs") / run_id("demo"))
    torch.manual_seed(seed)
    lm = load_model(model, device=device, adapter=str(adapter) if adapter else None)
    answers: list[dict[str, Any]] = []
    with console.progress("answering", total=len(samples)) as advance:
        for start in range(0, len(samples), batch_size):
            batch = samples[start : start + batch_size]
            prompts = [bench.format_prompt(s, lm.tokenizer) for s in batch]
            for sample, gen in zip(batch, generate_greedy(lm, prompts, max_new_tokens), strict=True):
                verdict = bench.score(sample, gen["answer"])
                lps = gen["logprobs"]
                answers.append(
                    {
                        "id": sample.id,
                        "question": sample.prompt,
                        "expected": sample.reference,
                        "aliases": list(sample.aliases),
                        "category": sample.metadata.get("category"),
                        "correct": verdict.correct,
                        "rule": verdict.rule,
                        "extracted": verdict.extracted,
                        "mean_logprob": sum(lps) / len(lps) if lps else None,
                        **gen,
                    }
                )
            advance(len(batch))
    n_correct = sum(a["correct"] for a in answers)
    summary = {
        "model": lm.fingerprint.name,
        "benchmark": bench.name,
        "split": split,
        "n": len(answers),
        "correct": n_correct,
        "accuracy": n_correct / len(answers),
    }
    config = {"model": model, "adapter": lm.fingerprint.adapter, "benchmark": bench.name, "split": split}
    config.update(questions=str(questions) if questions else None, limit=limit, max_new_tokens=max_new_tokens)
    config.update(batch_size=batch_size, device=lm.device)
    with staged_dir(final) as stage:
        write_jsonl(stage / "answers.jsonl", answers)
        write_artifact(
            stage / "run.json",
            SCHEMA,
            1,
            {"summary": summary, "files": {"answers": "answers.jsonl"}},
            model=lm.fingerprint,
            inputs=[questions] if questions else [],
            seed=seed,
            config=config,
        )
    return DemoResult(final, summary, answers)
