"""`halluc probe analyze`: one compact Parquet per run for exploring (one row per question).

Columns: id, split, correct, high_se, semantic_entropy, discrete_semantic_entropy, naive_entropy,
each method's error score (accuracy_probe, se_probe, entropy_baseline) and a 2-D projection (pca_x,
pca_y) of the probe position's hidden state at the middle layer of the accuracy probe's block, the
PCA fitted on the train split. `examples/probe_explore.py` (marimo) reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from halluc_probe.dataset import SPLITS, load_dataset
from halluc_probe.hidden import array_name
from halluc_probe.probes import load_probes, scores

ANALYSIS_SCHEMA = "halluc.probe.analysis"


def analyze(dataset: str | Path, probes: str | Path, output: str | Path, seed: int = 0, force: bool = False) -> dict[str, Any]:  # fmt: skip
    from sklearn.decomposition import PCA

    from ucli.artifacts import check_output_file, write_table

    out = check_output_file(output, force=force)
    meta, saved = load_probes(probes)
    _, data = load_dataset(dataset)
    first, last = meta["accuracy"]["block"]
    layer = (first + last) // 2
    x = data["X_" + array_name(meta["position"])][:, layer]
    pca = PCA(n_components=2, random_state=seed).fit(x[data["split"] == 0])
    xy = pca.transform(x)
    method_scores = scores(meta, saved, data)
    rows = []
    for i, qid in enumerate(data["ids"].tolist()):
        rows.append({
            "id": qid, "split": SPLITS[int(data["split"][i])], "correct": bool(data["correct"][i]),
            "high_se": bool(data["high_se"][i]),
            **{k: float(data[k][i]) for k in ("semantic_entropy", "discrete_semantic_entropy", "naive_entropy")},
            **{k: float(method_scores[k][i]) for k in ("accuracy_probe", "se_probe", "entropy_baseline")},
            "pca_x": float(xy[i, 0]), "pca_y": float(xy[i, 1]),
        })  # fmt: skip
    write_table(out, rows, ANALYSIS_SCHEMA, inputs=[Path(probes) / "probes.json", Path(dataset) / "dataset.json"],
                seed=seed, config={"dataset": str(dataset), "probes": str(probes), "projection_layer": layer})  # fmt: skip
    return {"output": str(out), "rows": len(rows), "projection_layer": layer,
            "explained_variance": [float(v) for v in np.round(pca.explained_variance_ratio_, 4)]}  # fmt: skip
