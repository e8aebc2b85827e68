"""What `halluc demo` prints: the detection table, greedy against the controller, the paired tests
in words that say what the numbers show (good news or not), and a few answers side by side."""

from __future__ import annotations

from typing import Any

from ucli import console

SIGNIFICANT = 0.05


def _fmt(value: Any, pattern: str) -> str:
    """A number, or "-" where there is none (nothing answered, nothing repaired)."""
    return "-" if value is None or value != value else pattern.format(value)


def _ci(row: dict[str, Any], key: str) -> str:
    lo, hi = row.get(f"{key}_ci") or (None, None)
    return f"{row[key]:.3f} [{_fmt(lo, '{:.3f}')}, {_fmt(hi, '{:.3f}')}]"


def _short(text: str, width: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _mark(text: str, outcome: str) -> Any:
    colour = {"right": "green", "wrong": "red", "abstained": "yellow"}[outcome]
    return console.styled((_short(text), colour))


def detection_table(s: dict[str, Any]) -> Any:
    n, wrong = s["n"], s["baseline"]["wrong"]
    title = f"detecting wrong answers on {s['benchmark']}/{s['split']} (plain greedy: {wrong} of {n} wrong)"
    rows = [(r["name"], _ci(r, "auroc"), _ci(r, "prr")) for r in s["detection"] if "auroc" in r]
    if not rows:
        return f"{title}: not measurable, detection needs both right and wrong answers"
    return console.table(title, ["score (same decode)", "AUROC [95% CI]", "PRR [95% CI]"], rows)


def arms_table(s: dict[str, Any]) -> Any:
    b, c = s["baseline"], s["controller"]
    metrics = [
        ("accuracy (right / all questions)", "accuracy", "{:.1%}"),
        ("wrong answers (hallucinations)", "wrong", "{:d}"),
        ("answered (coverage)", "coverage", "{:.1%}"),
        ("accuracy among answered", "selective_accuracy", "{:.1%}"),
        ("repaired answers that read as answers", "repair_well_formed", "{:.1%}"),
        ("tokens generated per answer", "avg_generated_tokens", "{:.1f}"),
        ("extra tokens per answer (repairs)", "avg_extra_tokens", "{:.2f}"),
        ("seconds spent per answer", "avg_latency_s", "{:.2f}"),
    ]
    rows = [(name, _fmt(b.get(key), fmt), _fmt(c.get(key), fmt)) for name, key, fmt in metrics]
    title = f"{s['model']} on {s['benchmark']}/{s['split']} ({s['n']} questions, repair {s['repair']})"
    return console.table(title, ["", "plain greedy", "controller"], rows)


def verdict(s: dict[str, Any]) -> list[str]:
    """Sentences that say what the numbers show, whichever way they point."""
    b, c, cmp = s["baseline"], s["controller"], s["comparison"]
    wrong_p, right_p = cmp["mcnemar"]["not_wrong"]["p_value"], cmp["mcnemar"]["correct"]["p_value"]
    lines = []
    fewer = b["wrong"] - c["wrong"]
    sig = "significant" if wrong_p < SIGNIFICANT else "not significant"
    delta = f"{fewer} fewer" if fewer >= 0 else f"{-fewer} more"
    lines.append(
        f"Wrong answers: {b['wrong']} under plain greedy, {c['wrong']} under the controller "
        f"({delta}; paired McNemar p = {wrong_p:.2g}, {sig} at {SIGNIFICANT}), "
        f"answering {c['coverage']:.0%} of the questions."
    )
    if c["abstained"]:
        lines.append(
            f"It abstained on {c['abstained']} questions: {cmp['hallucinations_avoided']} of those greedy answers "
            f"were wrong, {cmp['correct_lost']} were right. Accuracy among answered: "
            f"{_fmt(c['selective_accuracy'], '{:.1%}')} against greedy's {_fmt(b['selective_accuracy'], '{:.1%}')}."
        )
    lines.append(_accuracy_sentence(b, c, cmp, right_p))
    if c["repaired"]:
        lines.append(
            f"{c['repaired']} answers were repaired; {c['repaired_correct']} of them are right and "
            f"{c['repair_well_formed']:.0%} read as answers."
        )
    return lines


def _accuracy_sentence(b: dict[str, Any], c: dict[str, Any], cmp: dict[str, Any], right_p: float) -> str:
    """What happened to accuracy over all questions, and why, whichever way it went."""
    moved = f"{cmp['fixed']} answers fixed and {cmp['broken']} broken"
    if c["accuracy"] > b["accuracy"] and right_p < SIGNIFICANT:
        return f"Accuracy rose from {b['accuracy']:.1%} to {c['accuracy']:.1%} ({moved}; p = {right_p:.2g})."
    change = (
        f"rose from {b['accuracy']:.1%} to {c['accuracy']:.1%}" if c["accuracy"] > b["accuracy"]
        else f"fell from {b['accuracy']:.1%} to {c['accuracy']:.1%}" if c["accuracy"] < b["accuracy"]
        else f"stayed at {b['accuracy']:.1%}"
    )  # fmt: skip
    if c["repaired"] or not c["abstained"]:
        why = f"{moved}): on this model the repairs do not raise accuracy" + (
            "; what helps is abstaining where RAUQ is unsure." if c["abstained"] else "."
        )
    else:  # abstention alone: it can only withhold answers
        why = (
            f"the {cmp['correct_lost']} right answers withheld): abstaining never makes an answer right; "
            f"it trades them for {cmp['hallucinations_avoided']} fewer wrong ones."
        )
    return f"Accuracy over all questions {change} (p = {right_p:.2g}; {why}"


def kept_repair(answer: dict[str, Any]) -> bool:
    """A repair the answer kept (an abstain fallback's answer is an abstention, not a repair)."""
    return bool(answer.get("repaired")) and answer["controller_outcome"] != "abstained"


def shown_changes(answers: list[dict[str, Any]], limit: int = 6) -> list[dict[str, Any]]:
    """The changed answers to print, in question order: kept repairs take up to half the rows (at
    least one) so a reader can judge the repair; abstentions and other changes fill the rest."""
    changed = [i for i, a in enumerate(answers) if a["baseline"] != a["controller"]]
    repaired = [i for i in changed if kept_repair(answers[i])]
    others = [i for i in changed if not kept_repair(answers[i])]
    half = max(1, limit // 2)
    return [answers[i] for i in sorted((repaired[:half] + others + repaired[half:])[:limit])]


def examples_table(answers: list[dict[str, Any]], limit: int = 6) -> Any:
    changed = [a for a in answers if a["baseline"] != a["controller"]]
    rows = [
        (_short(a["question"], 40), _short(a["expected"], 16),
         _mark(a["baseline"], "right" if a["baseline_correct"] else "wrong"),
         _mark(a["controller"], a["controller_outcome"]), "repaired" if kept_repair(a) else a["controller_outcome"])
        for a in shown_changes(answers, limit)
    ]  # fmt: skip
    return console.table(
        f"answers the controller changed ({len(changed)}, {sum(map(kept_repair, changed))} of them repaired; {len(rows)} shown)",
        ["question", "expected", "plain greedy", "controller", "how"],
        rows,
    )


def show(result: Any, batch_size: int) -> None:
    s = result.summary
    out = console.out
    out.print(detection_table(s))
    out.print(arms_table(s))
    for line in verdict(s):
        out.print(line, highlight=False)
    if any(a["baseline"] != a["controller"] for a in result.answers):
        out.print(examples_table(result.answers))
    reused = s["baseline"]["reused"]
    out.print(
        f"theta {s['theta']:.3f} (RAUQ peak token score, fitted on {s['calibration']} answers, AUROC "
        f"{s['theta_auroc']:.3f}); seconds per answer are the time each answer took in batches of {batch_size}"
        + (f" ({reused} plain-greedy rows reuse the identical controller decode)" if reused else "")
        + f"; run folder: {result.run_dir}",
        highlight=False,
    )
