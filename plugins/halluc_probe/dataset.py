"""`halluc probe build`: join runs, semantic entropies and hidden states into one probe data set.

Labels per question: `correct` (the greedy answer, by the benchmark's metric) and `high_se`,
semantic entropy binarised with the best-split rule (the threshold minimising the within-group
squared error; it is recorded). Questions flagged `few_samples`, or missing a hidden-state position,
are left out and counted. Splits are seeded and stratified on `correct` (when both classes have at
least two members per split) into train / validation / test.

Output folder: `data.npz` (ids, split, labels, entropies, `uq_<estimator>`: the registry's
single-pass estimators on the greedy answer, X_<position> [n, L+1, D]) and `dataset.json`
(provenance, threshold, sizes, positions, baselines, the model the hidden states came from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from halluc_judges import best_split_threshold
from halluc_probe.entropy import ENTROPY_SCHEMA
from halluc_probe.hidden import array_name, read_hidden
from halluc_probe.runs import read_runs
from ucli.errors import BadInput

DATASET_SCHEMA = "halluc.probe.dataset"
SPLITS = ("train", "validation", "test")


def stratified_splits(labels: np.ndarray, fractions: tuple[float, float, float], seed: int) -> np.ndarray:
    """0/1/2 (train/validation/test) per row: seeded, stratified on `labels` where both classes allow."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(labels.size)
    stratify = labels if np.bincount(labels.astype(int), minlength=2).min() >= 4 else None
    rest = fractions[1] + fractions[2]
    train, hold = train_test_split(rows, test_size=rest, random_state=seed, stratify=stratify)
    hold_labels = labels[hold]
    strat2 = (
        hold_labels
        if stratify is not None and np.bincount(hold_labels.astype(int), minlength=2).min() >= 2
        else None
    )
    val, test = train_test_split(hold, test_size=fractions[2] / rest, random_state=seed, stratify=strat2)
    split = np.empty(labels.size, dtype=np.int8)
    split[train], split[val], split[test] = 0, 1, 2
    return split


def registry_baselines(greedy: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Every installed estimator that the greedy answers' own statistics feed (log-probs, and each
    step's entropy and margin where the backend gave them): the probes' single-pass baselines, by
    name (NaN for an empty answer)."""
    from halluc_signals import registry

    def every(key: str) -> bool:  # one value per answer token in every greedy answer
        return all(len(g.get(key) or []) == len(g.get("token_ids") or []) for g in greedy)

    has = {need for need, keys in (("logprobs", ("logprobs",)), ("distributions", ("entropies", "margins")))
           if all(map(every, keys))}  # fmt: skip
    records = [{"token_ids": g.get("token_ids") or [], "token_logprobs": g.get("logprobs") or [],
                "token_entropy": g.get("entropies"), "token_margin": g.get("margins")} for g in greedy]  # fmt: skip
    return {
        e.name: np.array([np.nan if (v := e(r)) is None else v for r in records], dtype=float)
        for e in registry().values()
        if e.needs <= has
    }


def _read_entropy(entropy: str | Path) -> dict[str, dict[str, Any]]:
    """`probe entropy`'s records by question id."""
    from ucli.data import read_records

    se = {}
    for rec in read_records(entropy, ENTROPY_SCHEMA):
        if "semantic_entropy" not in rec.data:
            raise BadInput(
                f"{rec.loc}: field 'semantic_entropy' is missing (not a `halluc probe entropy` output?)"
            )
        se[str(rec.data["id"])] = rec.data
    return se


def _usable(
    hidden_ids: list[str], se: dict[str, Any], attrs: dict[str, Any]
) -> tuple[list[int], dict[str, int]]:
    """The hidden-state rows a probe can learn from, and how many were dropped for what."""
    keep, dropped = [], {"not in entropy": 0, "few_samples": 0, "missing position": 0}
    for i, qid in enumerate(hidden_ids):
        if qid not in se:
            dropped["not in entropy"] += 1
        elif se[qid].get("few_samples"):
            dropped["few_samples"] += 1
        elif any(pos in attrs["missing"] and qid in attrs["missing"][pos] for pos in attrs["positions"]):
            dropped["missing position"] += 1
        else:
            keep.append(i)
    if len(keep) < 10:
        raise BadInput(f"only {len(keep)} usable questions ({dropped}); a probe needs at least 10")
    return keep, dropped


def build_dataset(runs: str | Path, entropy: str | Path, hidden: str | Path, output: str | Path,
                  fractions: tuple[float, float, float] = (0.6, 0.2, 0.2), seed: int = 0) -> dict[str, Any]:  # fmt: skip
    from ucli.artifacts import staged_dir, write_artifact

    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise BadInput(f"--split: expected three positive fractions summing to 1, got {list(fractions)}")
    run_records = {str(r["id"]): r for r in read_runs(runs)}
    se = _read_entropy(entropy)
    attrs, arrays = read_hidden(hidden)
    hidden_ids = [str(i) for i in attrs["ids"]]
    unknown = sorted(set(hidden_ids) - set(run_records))[:3]
    if unknown:
        raise BadInput(f"{hidden}: question(s) {', '.join(unknown)} are not in {runs}")
    keep, dropped = _usable(hidden_ids, se, attrs)
    ids = [hidden_ids[i] for i in keep]
    correct = np.array([bool(run_records[q]["correct"]) for q in ids])
    values = np.array([se[q]["semantic_entropy"] for q in ids], dtype=float)
    try:
        threshold = best_split_threshold(values)
    except ValueError:
        raise BadInput("every question has the same semantic entropy: no high/low split") from None
    split = stratified_splits(correct.astype(int), fractions, seed)
    data = {"ids": np.array(ids), "split": split, "correct": correct, "semantic_entropy": values,
            **{k: np.array([se[q][k] for q in ids], dtype=float) for k in ("discrete_semantic_entropy", "naive_entropy")},
            "high_se": values > threshold}  # fmt: skip
    baselines = registry_baselines([run_records[q]["greedy"] for q in ids])
    data.update({f"uq_{name}": v for name, v in baselines.items()})
    for pos, arr in arrays.items():
        data["X_" + array_name(pos)] = np.stack([arr[i] for i in keep]).astype(np.float32)
    sizes = {name: int((split == k).sum()) for k, name in enumerate(SPLITS)}
    meta = {"questions": len(ids), "dropped": dropped, "threshold": threshold, "sizes": sizes,
            "positions": attrs["positions"], "layers": int(next(iter(arrays.values())).shape[1]),
            "accuracy": float(correct.mean()), "high_se_rate": float(data["high_se"].mean()),
            "hidden_model": attrs["provenance"].get("model"), "baselines": list(baselines)}  # fmt: skip
    with staged_dir(output) as stage:
        np.savez_compressed(stage / "data.npz", **data)
        write_artifact(stage / "dataset.json", DATASET_SCHEMA, 1, meta, model=attrs["provenance"].get("model"),
                       inputs=[runs, entropy], seed=seed, config={"fractions": list(fractions)})  # fmt: skip
    return {"output": str(output), **meta}


def load_dataset(folder: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from ucli.artifacts import load_artifact

    p = Path(folder)
    meta = load_artifact(p / "dataset.json", DATASET_SCHEMA)
    if not (p / "data.npz").is_file():
        raise BadInput(f"{p}: missing data.npz")
    with np.load(p / "data.npz") as z:
        return meta, {k: z[k] for k in z.files}
