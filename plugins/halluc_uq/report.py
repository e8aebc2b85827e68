"""`halluc uq report`: every estimator of a `uq score` file judged against answer correctness,
on the same answers, with paired statistics (built on halluc_stats).

Wrong answers are the positives; every estimator's value is "higher = more uncertain".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ucli.errors import BadInput

PRR_SHARES = (0.5, 1.0)  # maximum rejection of the two PRRs reported


def read_scores(path: str | Path) -> list[dict[str, Any]]:
    """The records of a `uq score` file, in any format it writes (JSONL, CSV, Parquet), each checked
    where it stands: `uq` maps estimator names to numbers (None: not scored), `correct` is a verdict
    (`ucli.data.parse_verdict`; an empty one is no verdict)."""
    import math

    from halluc_uq.scoring import UQ_SCHEMA
    from ucli.data import parse_verdict, read_records

    out = []
    for rec in read_records(path, UQ_SCHEMA):
        record, uq = dict(rec.data), rec.data.get("uq")
        if "uq" not in record:
            raise BadInput(
                f"{rec.loc}: field 'uq' is missing: score the answers with `halluc uq score` first"
            )
        if not isinstance(uq, dict) or not uq:
            raise BadInput(f"{rec.loc}: field 'uq': expected every estimator's value (the output of "
                           f"`halluc uq score`), found {uq!r}")  # fmt: skip
        for name, value in uq.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if value is not None and not (number and math.isfinite(value)):
                raise BadInput(
                    f"{rec.loc}: field 'uq.{name}': expected a finite number or null, found {value!r}"
                )
        if record.get("correct") in (None, ""):
            record.pop("correct", None)
        else:
            record["correct"] = int(parse_verdict(record["correct"], rec.loc))
        out.append(record)
    return out


def score_matrix(records: list[dict[str, Any]], names: list[str] | None = None, source: str = "records") -> tuple[list[str], np.ndarray, np.ndarray, int]:  # fmt: skip
    """Estimator names, values [n, E] and correctness [n] of the answers every estimator scored
    and the judge judged; also how many answers were left out (empty answers, no reference).
    `source` (the file) starts every message."""
    if not records or not isinstance(records[0].get("uq"), dict):
        raise BadInput(f"{source}: no `uq` field in the records: score them with `halluc uq score` first")
    names = names or list(records[0]["uq"])
    rows, correct = [], []
    for r in records:
        values = [(r.get("uq") or {}).get(n) for n in names]
        if r.get("correct") is not None and all(v is not None for v in values):
            rows.append(values)
            correct.append(float(r["correct"]))
    if not rows:
        raise BadInput(f"{source}: no answer has both a `correct` verdict and every estimator's value")
    return names, np.asarray(rows, dtype=np.float64), np.asarray(correct), len(records) - len(rows)


def prr_quality(
    records: list[dict[str, Any]], names: list[str], correct: np.ndarray
) -> tuple[np.ndarray, str]:
    """What PRR ranks answers by: the continuous quality the judge measured (`quality`, named by
    `quality_measure`: ROUGE-L, F1, a judge panel's mean), as LM-Polygraph's tables do, when every
    scored answer has one of the same measure; else the verdict."""
    kept = [
        r
        for r in records
        if r.get("correct") is not None and all((r.get("uq") or {}).get(n) is not None for n in names)
    ]
    measures = {r.get("quality_measure") for r in kept}
    if (
        len(measures) == 1
        and None not in measures
        and all(isinstance(r.get("quality"), int | float) for r in kept)
    ):
        return np.asarray([float(r["quality"]) for r in kept]), f"quality ({measures.pop()})"
    return correct, "correct"


def calibration_errors(u: np.ndarray, wrong: np.ndarray, seed: int, bins: int = 10) -> tuple[float, float]:
    """ECE (equal-width bins) and Brier score of P(wrong) from isotonic regression on the score,
    fitted on one half of the answers and applied to the other, both ways (2-fold cross-fitting),
    so no answer is judged by a map fitted on itself."""
    from sklearn.isotonic import IsotonicRegression

    order = np.random.default_rng(seed).permutation(u.size)
    folds = (order[: u.size // 2], order[u.size // 2 :])
    p = np.empty(u.size)
    for fit, apply in (folds, folds[::-1]):
        model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        p[apply] = model.fit(u[fit], wrong[fit]).predict(u[apply])
    which = np.minimum((p * bins).astype(int), bins - 1)
    ece = sum(abs(p[which == b].mean() - wrong[which == b].mean()) * (which == b).mean()
              for b in range(bins) if (which == b).any())  # fmt: skip
    return float(ece), float(np.mean((p - wrong) ** 2))


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    ok = values[~np.isnan(values)]
    if not ok.size:
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    lo, hi = np.percentile(ok, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def only(
    records: list[dict[str, Any]], names: list[str], source: str, level: str = "answer"
) -> list[dict[str, Any]]:
    """The records with only the estimators `names`, of the answers or of their claims (an unknown
    name is one line listing the known)."""
    units = [c for r in records for c in r.get("claims") or []] if level == "claim" else records
    known = list(dict.fromkeys(k for u in units for k in u.get("uq") or {}))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BadInput(
            f"--estimators: '{unknown[0]}' is not among the {'claim ' if level == 'claim' else ''}estimators of "
            f"{source} ({', '.join(known)})"
        )
    if level == "claim":
        return [{**r, "claims": [{**c, "uq": {n: (c.get("uq") or {}).get(n) for n in names}}
                                 for c in r.get("claims") or []]} for r in records]  # fmt: skip
    return [{**r, "uq": {n: r["uq"].get(n) for n in names}} for r in records]


def build_report(
    records: list[dict[str, Any]],
    *,
    reference: str = "rauq",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    source: str = "records",
) -> dict[str, Any]:
    """Per estimator: AUROC and AUPRC (wrong answers positive) and PRR at 50% and 100% rejection,
    each with a bootstrap CI; ECE and Brier after cross-fitted isotonic calibration; a paired
    bootstrap test of its AUROC against `reference`'s (Holm-adjusted over the family); plus the
    Spearman correlations between estimators. All on the same answers and the same resamples."""
    names, values, correct, dropped = score_matrix(records, source=source)
    quality, quality_name = prr_quality(records, names, correct)
    if reference not in names:
        raise BadInput(
            f"--reference: '{reference}' is not among the estimators of {source} ({', '.join(names)})"
        )
    wrong = 1.0 - correct
    if wrong.min() == wrong.max():
        raise BadInput(f"{source}: every one of the {wrong.size} answers is "
                       f"{'wrong' if wrong[0] else 'right'}: nothing to detect")  # fmt: skip
    rows, rho = estimator_rows(names, values, wrong, quality, reference, n_resamples, confidence, seed)
    return {"n": int(wrong.size), "n_wrong": int(wrong.sum()), "left_out": dropped, "reference": reference,
            "auroc_against": "correct (wrong answers positive)", "prr_against": quality_name,
            "n_resamples": n_resamples, "confidence": confidence, "seed": seed, "estimators": rows,
            "spearman": {"names": names, "matrix": rho}}  # fmt: skip


def estimator_rows(names: list[str], values: np.ndarray, wrong: np.ndarray, quality: np.ndarray, reference: str,
                    n_resamples: int, confidence: float, seed: int,
                    groups: np.ndarray | None = None) -> tuple[list[dict[str, Any]], list[list[float]]]:  # fmt: skip
    """Each estimator's row (areas, PRRs, calibration, the paired test against `reference`, Holm)
    and the Spearman matrix; `groups` resamples whole groups (an answer's claims)."""
    from scipy.stats import spearmanr
    from sklearn.metrics import average_precision_score, roc_auc_score

    from halluc_stats import holm, paired_areas, paired_prr, prr

    roc_b, ap_b = paired_areas(values.T, wrong, n_resamples, seed, groups=groups)
    prr_b = paired_prr(values.T, quality, PRR_SHARES, n_resamples, seed, groups=groups)  # the same resamples
    ref = names.index(reference)
    rows = []
    for j, name in enumerate(names):
        u = values[:, j]
        auc = float(roc_auc_score(wrong, u))
        row = {"estimator": name, "auroc": auc, "auroc_ci": _interval(roc_b[j], confidence),
               "auprc": float(average_precision_score(wrong, u)), "auprc_ci": _interval(ap_b[j], confidence)}  # fmt: skip
        for i, share in enumerate(PRR_SHARES):
            key = f"prr_{int(share * 100)}"
            row[key] = prr(u, quality, max_rejection=share, n_resamples=0).prr
            row[f"{key}_ci"] = _interval(prr_b[i, j], confidence)
        row["ece"], row["brier"] = calibration_errors(u, wrong, seed)
        row.update(_versus(roc_b[j], roc_b[ref], auc - float(roc_auc_score(wrong, values[:, ref])), j == ref))
        rows.append(row)
    adjusted = holm([r["p_value"] for r in rows])
    for r, p in zip(rows, adjusted, strict=True):
        r["p_holm"] = None if np.isnan(p) else float(p)
    rho = np.atleast_2d(spearmanr(values).statistic) if len(names) > 1 else np.ones((1, 1))
    return rows, np.round(rho, 6).tolist()


def _versus(own: np.ndarray, ref: np.ndarray, observed: float, is_reference: bool) -> dict[str, Any]:
    """AUROC minus the reference's, and its paired bootstrap p-value: the share of resampled
    differences at least as far from the observed one as it is from 0 (as `halluc_stats.paired_bootstrap`)."""
    if is_reference:
        return {"delta_auroc": 0.0, "p_value": float("nan")}
    d = own - ref
    d = d[~np.isnan(d)]
    far = np.count_nonzero(np.abs(d - observed) >= abs(observed) - 1e-12)
    return {"delta_auroc": observed, "p_value": float(min(1.0, (1 + far) / (d.size + 1)))}


def plot_report(records: list[dict[str, Any]], path: str | Path, title: str) -> Path:
    """ROC curves (wrong answers detected) and accuracy of the answers kept against coverage."""
    from sklearn.metrics import roc_curve

    from ucli.artifacts import fit_titles, new_figure, write_figure

    names, values, correct, _ = score_matrix(records)
    fig, (roc_ax, rc_ax) = new_figure(ncols=2, figsize=(11, 4.6), dpi=120)
    coverage = np.arange(1, correct.size + 1) / correct.size
    for j, name in enumerate(names):
        fpr, tpr, _ = roc_curve(1.0 - correct, values[:, j])
        roc_ax.plot(fpr, tpr, label=name, lw=1)
        kept = correct[np.argsort(values[:, j], kind="stable")]  # most certain first
        rc_ax.plot(coverage, np.cumsum(kept) / np.arange(1, kept.size + 1), label=name, lw=1)
    roc_ax.plot([0, 1], [0, 1], color="grey", lw=0.5, ls="--")
    roc_ax.set_xlabel("false positive rate (right answers flagged)")
    roc_ax.set_ylabel("true positive rate (wrong answers flagged)")
    rc_ax.set_xlabel("coverage (share of answers kept, most certain first)")
    rc_ax.set_ylabel("accuracy of the answers kept")
    rc_ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fit_titles(fig)
    return write_figure(fig, path)
