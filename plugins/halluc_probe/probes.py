"""`halluc probe train | eval`: linear probes on one hidden state, and how well they flag errors.

Train (on the train split, choosing on validation):
- an accuracy probe per layer: standardised features, logistic regression, P(the greedy answer is
  correct);
- a semantic-entropy probe per layer (Kossen et al., 2024): P(high semantic entropy);
- an entropy baseline: logistic regression of correctness on (semantic entropy, naive entropy), the
  expensive K-sample signal the probes try to replace.
For each probe kind the best contiguous block of layers is the one whose averaged per-layer
probabilities have the highest validation AUROC (ties go to the shorter, earlier block).

Probes are saved as plain arrays (`probes.npz`: scaler mean/scale, coefficients, intercepts per
layer) with `probes.json` (provenance, position, blocks, per-layer validation AUROCs): no pickles.

Eval: AUROC and AUPRC of each score (the probes, the entropies, and every registry estimator the
data set holds, `uq_<name>`) against answer errors (positive = incorrect), with bootstrap
confidence intervals and permutation p-values from `halluc_stats.auroc`, on the test split and on
every question of `--ood` data sets; mean P(correct) of the accuracy probe for correct and for
incorrect answers; a JSON report and a ROC plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from halluc_probe.dataset import load_dataset
from ucli import console
from ucli.errors import BadInput

PROBES_SCHEMA = "halluc.probe.probes"
REPORT_SCHEMA = "halluc.probe.report"
KINDS = ("accuracy", "se")


def _fit(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> dict[str, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit((x - mean) / scale, y)
    return {"mean": mean, "scale": scale, "coef": model.coef_[0], "intercept": model.intercept_}


def predict(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """P(y = 1) of a saved probe (the logistic function of the standardised features)."""
    z = ((x - params["mean"]) / params["scale"]) @ params["coef"] + params["intercept"][0]
    return 1.0 / (1.0 + np.exp(-z))


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if 0 < y.sum() < y.size else float("nan")


def best_block(per_layer_probs: np.ndarray, y: np.ndarray) -> tuple[int, int, float]:
    """(first, last, AUROC) of the contiguous layer block whose mean probability separates `y` best."""
    n_layers = per_layer_probs.shape[0]
    csum = np.vstack([np.zeros(per_layer_probs.shape[1]), np.cumsum(per_layer_probs, axis=0)])
    best = (0, 0, -1.0)
    for length in range(1, n_layers + 1):
        for first in range(n_layers - length + 1):
            auc = _auc(y, (csum[first + length] - csum[first]) / length)
            if auc > best[2] + 1e-12:
                best = (first, first + length - 1, auc)
    return best


def _targets(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"accuracy": data["correct"].astype(int), "se": data["high_se"].astype(int)}


def _baseline_features(data: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([data["semantic_entropy"], data["naive_entropy"]], axis=1)


def _layer_probes(kind: str, x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, c: float,
                  seed: int, saved: dict[str, np.ndarray], advance: Any) -> dict[str, Any]:  # fmt: skip
    """One probe per layer for a target (its parameters into `saved`), the best block of layers on
    the validation split."""
    probs = []
    for layer in range(x.shape[1]):
        params = _fit(x[train, layer], y[train], c, seed)
        for name, value in params.items():
            saved[f"{kind}/{layer}/{name}"] = value
        probs.append(predict(params, x[val, layer]))
        advance()
    first, last, auc = best_block(np.array(probs), y[val])
    return {"validation_auroc_per_layer": [_auc(y[val], p) for p in probs], "block": [first, last],
            "validation_auroc": auc}  # fmt: skip


def train_probes(dataset: str | Path, output: str | Path, position: str = "slt", c: float = 1.0,
                 seed: int = 0) -> dict[str, Any]:  # fmt: skip
    from halluc_probe.hidden import array_name
    from ucli.artifacts import staged_dir, write_artifact

    meta, data = load_dataset(dataset)
    key = "X_" + array_name(position)
    if key not in data:
        raise BadInput(f"{dataset}: no '{position}' hidden states (it has: {', '.join(meta['positions'])})")
    x, split = data[key], data["split"]
    train, val = split == 0, split == 1
    saved: dict[str, np.ndarray] = {}
    report: dict[str, Any] = {"position": position, "C": c, "layers": int(x.shape[1])}
    targets = _targets(data)
    for kind, y in targets.items():
        if len(np.unique(y[train])) < 2 or len(np.unique(y[val])) < 2:
            raise BadInput(f"the train or validation split has one class only for the {kind} probe; "
                           "use more questions")  # fmt: skip
    with console.progress("probes", len(targets) * x.shape[1]) as advance:
        for kind, y in targets.items():
            report[kind] = _layer_probes(kind, x, y, train, val, c, seed, saved, advance)
    base = _fit(_baseline_features(data)[train], data["correct"][train].astype(int), c, seed)
    for name, value in base.items():
        saved[f"baseline/{name}"] = value
    report["baseline"] = {"features": ["semantic_entropy", "naive_entropy"],
                          "validation_auroc": _auc(data["correct"][val].astype(int),
                                                   predict(base, _baseline_features(data)[val]))}  # fmt: skip
    with staged_dir(output) as stage:
        np.savez(stage / "probes.npz", **saved)
        write_artifact(stage / "probes.json", PROBES_SCHEMA, 1, report, model=meta["provenance"].get("model"),
                       inputs=[Path(dataset) / "data.npz"], seed=seed, config={"position": position, "C": c})  # fmt: skip
    return {"output": str(output), **report}


def load_probes(folder: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from ucli.artifacts import load_artifact

    p = Path(folder)
    meta = load_artifact(p / "probes.json", PROBES_SCHEMA)
    with np.load(p / "probes.npz") as z:
        return meta, {k: z[k] for k in z.files}


def _params(saved: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {name: saved[f"{prefix}/{name}"] for name in ("mean", "scale", "coef", "intercept")}


def scores(
    meta: dict[str, Any], saved: dict[str, np.ndarray], data: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Error scores (higher = more likely wrong) of every method for every row of `data`."""
    from halluc_probe.hidden import array_name

    key = "X_" + array_name(meta["position"])
    if key not in data:
        raise BadInput(f"the data set has no '{meta['position']}' hidden states, which these probes read")
    x = data[key]
    if x.shape[1] != meta["layers"]:
        raise BadInput(f"the probes read {meta['layers']} hidden layers, the data set has {x.shape[1]}")
    out = {}
    for kind in KINDS:
        first, last = meta[kind]["block"]
        probs = np.mean([predict(_params(saved, f"{kind}/{layer}"), x[:, layer]) for layer in range(first, last + 1)],
                        axis=0)  # fmt: skip
        out[f"{kind}_probe"] = 1 - probs if kind == "accuracy" else probs
    out["entropy_baseline"] = 1 - predict(_params(saved, "baseline"), _baseline_features(data))
    out["semantic_entropy"] = data["semantic_entropy"]
    out["discrete_semantic_entropy"] = data["discrete_semantic_entropy"]
    out["naive_entropy"] = data["naive_entropy"]
    out.update(
        {key.removeprefix("uq_"): data[key] for key in data if key.startswith("uq_")}
    )  # registry baselines
    return out


def _evaluate(meta: dict[str, Any], saved: dict[str, np.ndarray], data: dict[str, np.ndarray], rows: np.ndarray,
              n_resamples: int, seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray]:  # fmt: skip
    from dataclasses import asdict

    from halluc_stats import auroc

    errors = (~data["correct"][rows]).astype(int)
    if errors.sum() in (0, errors.size):
        raise BadInput(f"the evaluated questions are all {'wrong' if errors.sum() else 'right'}: no AUROC")
    all_scores = {name: s[rows] for name, s in scores(meta, saved, data).items()}
    methods = {}
    with console.progress("bootstrap", len(all_scores)) as advance:
        for name, s in all_scores.items():
            ok = np.isfinite(s)  # a baseline has no value on an empty answer
            res = asdict(
                auroc(s[ok], errors[ok], n_resamples=n_resamples, n_permutations=n_resamples, seed=seed)
            )
            methods[name] = {k: res[k] for k in ("auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "auprc_ci_low",
                                                 "auprc_ci_high", "p_value")}  # fmt: skip
            methods[name]["n"] = int(ok.sum())
            advance()
    p_correct = 1 - all_scores["accuracy_probe"]
    confidence = {
        "correct": float(p_correct[errors == 0].mean()),
        "incorrect": float(p_correct[errors == 1].mean()),
    }
    return {"n": int(rows.size), "errors": int(errors.sum()), "methods": methods,
            "mean_confidence": confidence}, all_scores, errors  # fmt: skip


def evaluate_probes(probes: str | Path, dataset: str | Path, ood: list[str | Path], output: str | Path,
                    plot: str | Path | None = None, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    from ucli.artifacts import write_artifact

    meta, saved = load_probes(probes)
    data_meta, data = load_dataset(dataset)
    model = meta["provenance"].get("model") or {}
    sets = {"in_distribution": (data_meta, data, np.flatnonzero(data["split"] == 2))}
    for path in ood:
        o_meta, o_data = load_dataset(path)
        theirs = o_meta["provenance"].get("model") or {}
        if theirs.get("architecture") != model.get("architecture") or theirs.get("hidden_size") != model.get(
            "hidden_size"
        ):
            raise BadInput(
                f"{path}: hidden states of model {theirs.get('name')!r}, the probes read {model.get('name')!r}"
            )
        sets[f"ood:{Path(path).name}"] = (o_meta, o_data, np.arange(o_data["correct"].size))
    report: dict[str, Any] = {"position": meta["position"], "positive": "incorrect answer", "sets": {}}
    curves = {}
    for name, (_, d, rows) in sets.items():
        report["sets"][name], s, errors = _evaluate(meta, saved, d, rows, n_resamples, seed)
        curves[name] = (s, errors)
    write_artifact(output, REPORT_SCHEMA, 1, report, model=model, inputs=[Path(probes) / "probes.npz",
                   Path(dataset) / "data.npz"], seed=seed, config={"ood": [str(p) for p in ood],
                   "n_resamples": n_resamples})  # fmt: skip
    if plot is not None:
        _plot_rocs(curves, report, plot)
    return report


def _plot_rocs(curves: dict[str, Any], report: dict[str, Any], plot: str | Path) -> None:
    """One ROC panel per evaluated set, every method's curve with its AUROC."""
    from sklearn.metrics import roc_curve

    from ucli.artifacts import new_figure, write_figure

    fig, axes = new_figure(ncols=len(curves), figsize=(5.2 * len(curves), 4.8), squeeze=False)
    for ax, (name, (s, errors)) in zip(axes[0], curves.items(), strict=True):
        for method, values in s.items():
            ok = np.isfinite(values)
            fpr, tpr, _ = roc_curve(errors[ok], values[ok])
            auc = report["sets"][name]["methods"][method]["auroc"]
            ax.plot(fpr, tpr, label=f"{method} ({auc:.2f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{name}: flagging errors")
        ax.legend(fontsize=7, loc="lower right")
    write_figure(fig, plot)
