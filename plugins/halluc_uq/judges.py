"""`halluc uq judges`: the same scored answers judged by several LLM judges: how much they agree,
and how the estimators' AUROC and their ranking move with the judge."""

from __future__ import annotations

from typing import Any

from ucli.errors import BadInput


def compare_judges(records: list[dict[str, Any]], bench: Any, splits: list[str], *, n_resamples: int = 200,
                   seed: int = 0, source: str = "records") -> dict[str, Any]:  # fmt: skip
    """Each judge of `bench`'s panel grades every record's answer against its sample; per judge
    the estimators' report (`build_report`), and between judges Kendall's tau of the AUROC ranking."""
    from itertools import combinations

    from scipy.stats import kendalltau

    from halluc_uq.report import build_report

    panel = getattr(bench, "measures", {}).get("judge")
    if panel is None or len(panel.judges) < 2:
        raise BadInput("uq judges compares judges: give two or more --judge BACKEND:MODEL")
    samples = {s.id: s for split in splits for s in bench.load(split)}
    missing = [r["id"] for r in records if r["id"] not in samples]
    if missing:
        raise BadInput(f"{source}: id '{missing[0]}' is not in {bench.name} ({', '.join(splits)}); "
                       f"{len(missing)} record(s) not found")  # fmt: skip
    panel.many([(bench.answer_text(r.get("completion") or ""), samples[r["id"]]) for r in records])
    per_judge = {}
    for judge, grades in zip(panel.judges, panel.grades, strict=True):
        judged = [
            {**r, "correct": None if g["value"] is None else int(g["value"] >= 0.5)}
            for r, g in zip(records, grades, strict=True)
        ]
        report = build_report([r for r in judged if r["correct"] is not None], reference=next(iter(records[0]["uq"])),
                              n_resamples=n_resamples, seed=seed, source=f"{source} judged by {judge.name}")  # fmt: skip
        per_judge[judge.name] = {"accuracy": 1 - report["n_wrong"] / report["n"], "n": report["n"],
                                 "auroc": {e["estimator"]: e["auroc"] for e in report["estimators"]}}  # fmt: skip
    for row in per_judge.values():
        row["ranking"] = sorted(row["auroc"], key=lambda name: -row["auroc"][name])
    pairs = [{"judges": [a, b], "kendall_tau": float(kendalltau([per_judge[a]["auroc"][n] for n in per_judge[a]["auroc"]],
                                                               [per_judge[b]["auroc"][n] for n in per_judge[a]["auroc"]]).statistic),
              "same_best": per_judge[a]["ranking"][0] == per_judge[b]["ranking"][0]}
             for a, b in combinations(per_judge, 2)]  # fmt: skip
    return {
        "n": len(records),
        "prompt": panel.prompt,
        "agreement": panel.agreement(),
        "judges": per_judge,
        "ranking_changes": pairs,
    }
