"""Claim verdicts: `supported`, `unsupported` or `unverifiable`, from one of three sources.

- **reference** (offline, the default when the prompts carry reference facts): a rule over the
  embedding judge (all-MiniLM-L6-v2). The facts a claim is about are those whose cosine similarity
  to it is at least `threshold`; with none, the reference says nothing about the claim:
  `unverifiable`. Otherwise the claim is `supported` when every checkable item in it (each number,
  and each capitalised word after its first word that is not in the question: names, places,
  months, titles) occurs, accents and case aside, in those facts, and `unsupported` when one does
  not ("born in 1880" against "born on 14 March 1879"). It is a crude judge, stated as such: it
  cannot read a negation or a paraphrased title; docs/uq.md gives its agreement with hand labels.
- **an LLM judge** `BACKEND:MODEL[@URL]` through `halluc_judges.Judge` with the `fact-check`
  prompt: the facts as context when the prompt has them (FActScore's retrieve-then-ask "True or
  False?"), else the judge's own knowledge (LM-Polygraph's fact check); its grades are journaled
  and a reply out of format is a recorded failure (`verdict` None, `verdict_error` says why).
- **a labels file** (JSONL: `id`, `claim` (its index in the record's claims, or its text) and
  `verdict`): a human's or another tool's verdicts, checked line by line.

Each claim gains `verdict` (None: no verdict, see `verdict_error`) and `verdict_by`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ucli.errors import BadInput

VERDICTS = ("supported", "unsupported", "unverifiable")
LABEL_ALIASES = {"true": "supported", "false": "unsupported", "refuted": "unsupported"}
REFERENCE_THRESHOLD = 0.25  # chosen on the bios train split's hand labels (docs/uq.md)


def _plain(text: str) -> str:
    """Lower case without accents, so "Malaga" meets "Málaga"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def checkable(claim: str, question: str = "") -> list[str]:
    """The items of a claim the reference rule looks up: numbers, and capitalised words after the
    first that are not words of the question (the person asked about is no evidence)."""
    asked = set(re.findall(r"\w+", _plain(question)))
    words = re.findall(r"\w+", claim)
    items = re.findall(r"\d+", claim)
    items += [w for w in words[1:] if w[:1].isupper() and not w.isdigit() and _plain(w) not in asked]
    return list(dict.fromkeys(_plain(w) for w in items))


class ReferenceRule:
    """The offline reference judge (see the module): one embedding model, one threshold."""

    name = "reference-rule"

    def __init__(self, threshold: float = REFERENCE_THRESHOLD, embedding_model: str | None = None,
                 judge: Any = None) -> None:  # fmt: skip
        """`judge`: an embedding judge already loaded (of `embedding_model`), else one is loaded."""
        from halluc_judges import EmbeddingJudge

        self.threshold = threshold
        self.judge = judge or EmbeddingJudge(embedding_model)

    def verdict(self, claim: str, facts: list[str], question: str = "") -> dict[str, Any]:
        """One claim against one reference: the verdict, the facts it rests on and any missing item."""
        if not facts:
            return {"verdict": "unverifiable", "evidence": [], "similarity": None, "missing": []}
        vectors = self.judge.embed([claim, *facts])
        sims = vectors[1:] @ vectors[0]
        about = [i for i, s in enumerate(sims) if s >= self.threshold]
        known = " ".join(_plain(facts[i]) for i in about)
        missing = [
            item for item in checkable(claim, question) if not re.search(rf"\b{re.escape(item)}\b", known)
        ]
        verdict = "unverifiable" if not about else "unsupported" if missing else "supported"
        return {
            "verdict": verdict,
            "evidence": about,
            "similarity": round(float(sims.max()), 4),
            "missing": missing,
        }


def reference_verdicts(
    records: list[dict[str, Any]], facts: Mapping[str, list[str]], rule: ReferenceRule
) -> None:
    """Each claim of each record judged against its prompt's facts by the offline rule."""
    for record in records:
        for claim in record.get("claims") or []:
            found = rule.verdict(claim["text"], facts.get(record["id"]) or [], record.get("prompt", ""))
            claim.update(verdict=found.pop("verdict"), verdict_by=rule.name, verdict_detail=found)


def judge_verdicts(records: list[dict[str, Any]], facts: Mapping[str, list[str]], judge: Any) -> None:
    """Each claim graded by an LLM judge (`halluc_judges.Judge` with the `fact-check` prompt), all
    claims of the run in one call so the requests run concurrently."""
    from halluc_judges import Item

    where = [(record, claim) for record in records for claim in record.get("claims") or []]
    items = [Item(r.get("prompt", ""), tuple(facts.get(r["id"]) or ()), c["text"]) for r, c in where]
    for (_, claim), grade in zip(where, judge.grade(items), strict=True):
        read = grade["label"] if grade["label"] in VERDICTS else None
        claim.update(verdict=read, verdict_by=judge.name)
        if read is None:
            claim["verdict_error"] = grade["error"] or f"reply out of format: {grade['reply']!r}"


def read_labels(path: Path) -> dict[tuple[str, int | str], str]:
    """The labels file as {(record id, claim index or text): verdict}; a bad line is one clear line."""
    from ucli.data import read_records

    labels: dict[tuple[str, int | str], str] = {}
    for rec in read_records(path):
        row = rec.data
        for field in ("id", "claim", "verdict"):
            if field not in row:
                raise BadInput(f"{rec.loc}: field '{field}' is missing (a label is id, claim, verdict)")
        verdict = LABEL_ALIASES.get(str(row["verdict"]).lower(), str(row["verdict"]).lower())
        if verdict not in VERDICTS:
            raise BadInput(
                f"{rec.loc}: field 'verdict' is {row['verdict']!r} (expected one of {', '.join(VERDICTS)})"
            )
        if not isinstance(row["claim"], int | str) or isinstance(row["claim"], bool):
            raise BadInput(f"{rec.loc}: field 'claim' must be the claim's index (an integer) or its text")
        labels[(str(row["id"]), row["claim"])] = verdict
    return labels


def label_verdicts(
    records: list[dict[str, Any]], labels: Mapping[tuple[str, int | str], str], source: str
) -> None:
    """Each claim's verdict from the labels (by index, else by text); an unlabelled claim has none."""
    for record in records:
        for index, claim in enumerate(record.get("claims") or []):
            found = labels.get((record["id"], index), labels.get((record["id"], claim["text"])))
            claim.update(verdict=found, verdict_by=source)
