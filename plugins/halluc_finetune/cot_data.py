"""Micro-CoT repair data: the controller's own successful, short repairs as SFT records (the "v2"
path: train on them, then check with `halluc control eval` that triggers fall while accuracy holds)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from halluc_rauq import RECORDS_SCHEMA
from ucli.data import parse_verdict, read_records
from ucli.errors import BadInput

REASONS = ("incorrect", "no kept cot repair", "cot too long", "no token texts")


def select(record: dict[str, Any], max_cot_tokens: int, loc: str = "record") -> tuple[dict[str, Any] | None, str | None]:  # fmt: skip
    """The SFT record for one `control eval` sample, or the reason it was dropped.

    Kept: the answer was judged correct and its first kept `cot` repair sampled at most
    `max_cot_tokens` thought tokens. prefix = the answer text before the thought, cot = the thought
    with its delimiters, answer = the text after it; completion = prefix + cot + answer.
    """
    if not parse_verdict(record.get("correct", False), loc):
        return None, "incorrect"
    events = [
        e
        for e in record.get("trigger_events", [])
        if e["action"] == "cot" and e["kept"] and e.get("cot_span")
    ]
    if not events:
        return None, "no kept cot repair"
    event = events[0]
    if event["cot_tokens"] > max_cot_tokens:
        return None, "cot too long"
    tokens = record.get("tokens")
    if not tokens:
        return None, "no token texts"
    start, end = event["cot_span"]
    prefix, cot, answer = "".join(tokens[:start]), "".join(tokens[start:end]), "".join(tokens[end:])
    return {
        "prompt": record.get("question"),
        "completion": prefix + cot + answer,
        "prefix": prefix,
        "cot": cot,
        "answer": answer,
        "cot_tokens": event["cot_tokens"],
        "source": {"sample_id": record["sample_id"], "event": record["trigger_events"].index(event)},
    }, None


def collect(runs: list[str | Path], max_cot_tokens: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """SFT records from every run folder's controller.jsonl, and a report of what was kept and why not."""
    kept: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    seen = 0
    for run in runs:
        path = Path(run) / "controller.jsonl"
        if not path.is_file():
            raise BadInput(f"{run}: no controller.jsonl (expected a `halluc control eval` output folder)")
        for record in read_records(path, RECORDS_SCHEMA):  # its provenance sidecar checked
            seen += 1
            sft, reason = select(record.data, max_cot_tokens, record.loc)
            if sft is None:
                dropped[reason] += 1
            else:
                sft["source"]["run"] = str(run)
                kept.append(sft)
    return kept, {
        "records": seen,
        "kept": len(kept),
        "dropped": {r: dropped[r] for r in REASONS if dropped[r]},
    }
