"""Explore one `halluc probe analyze` Parquet: which questions the probes flag, how semantic entropy
relates to errors, and where answers sit in the hidden-state projection.

    marimo edit examples/probe_explore.py -- --path runs/probe/analysis.parquet
    python examples/probe_explore.py --path runs/probe/analysis.parquet     # runs every cell, headless
"""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import marimo as mo
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    return mo, pd, plt, roc_auc_score


@app.cell
def _(mo, pd):
    path = mo.cli_args().get("path") or "analysis.parquet"
    df = pd.read_parquet(path)
    mo.md(
        f"**{path}**: {len(df)} questions, greedy accuracy {df['correct'].mean():.1%}, "
        f"{df['high_se'].mean():.1%} with high semantic entropy"
    )
    return (df,)


@app.cell
def _(df, pd, roc_auc_score):
    methods = ["accuracy_probe", "se_probe", "entropy_baseline", "semantic_entropy",
               "discrete_semantic_entropy", "naive_entropy"]  # fmt: skip
    rows = []
    for split, part in df.groupby("split"):
        errors = ~part["correct"]
        for m in methods:
            auc = roc_auc_score(errors, part[m]) if 0 < errors.sum() < len(part) else float("nan")
            rows.append({"split": split, "score": m, "AUROC vs errors": round(auc, 3),
                         "mean if right": part.loc[~errors, m].mean(), "mean if wrong": part.loc[errors, m].mean()})  # fmt: skip
    table = pd.DataFrame(rows)
    table
    return methods, table


@app.cell
def _(methods, mo):
    colour = mo.ui.dropdown(options=["correct", "high_se", *methods], value="se_probe", label="colour by")
    colour
    return (colour,)


@app.cell
def _(colour, df, plt):
    fig, ax = plt.subplots(figsize=(6, 4.5))
    values = df[colour.value].astype(float)
    points = ax.scatter(df["pca_x"], df["pca_y"], c=values, cmap="viridis", s=18)
    wrong = ~df["correct"]
    ax.scatter(df.loc[wrong, "pca_x"], df.loc[wrong, "pca_y"], facecolors="none", edgecolors="red", s=40,
               linewidths=0.8, label="wrong answer")  # fmt: skip
    fig.colorbar(points, ax=ax, label=colour.value)
    ax.set(xlabel="PC 1", ylabel="PC 2", title="hidden state at the probe's layer")
    ax.legend(loc="best", fontsize=8)
    fig
    return


@app.cell
def _(df, plt):
    fig2, ax2 = plt.subplots(figsize=(6, 3.5))
    ax2.hist([df.loc[df["correct"], "semantic_entropy"], df.loc[~df["correct"], "semantic_entropy"]], bins=15,
             label=["right", "wrong"], stacked=True)  # fmt: skip
    ax2.set(xlabel="semantic entropy (nats)", ylabel="questions", title="semantic entropy by correctness")
    ax2.legend()
    fig2
    return


@app.cell
def _(df):
    flagged = df.sort_values("se_probe", ascending=False).head(15)[
        ["id", "split", "correct", "se_probe", "accuracy_probe", "semantic_entropy"]
    ]
    flagged
    return


if __name__ == "__main__":
    app.run()
