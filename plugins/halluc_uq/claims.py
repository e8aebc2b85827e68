"""`uq score --claims SPLITTER`: each answer's claims, with the answer tokens each rests on and the
value of every chosen estimator that scores claims (`Estimator.claims`) over those tokens.

Per record, `claims`: [{"text", "sentence", "start", "end", "tokens" (aligned token indices, None
when the alignment rule finds none: recorded, never dropped), "uq" ({estimator: value}; None for
an unaligned claim)}]. A local model's token texts come from its tokenizer (`token_pieces`); an
API's are the token strings it returned; an API that returns no tokens leaves every claim
unaligned (its text and span still recorded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from halluc_signals import Estimator


def claim_records(records: list[dict[str, Any]], *, splitter: Any, estimators: list[Estimator],
                  pieces: Callable[[dict[str, Any]], list[str] | None]) -> None:  # fmt: skip
    """Add `claims` to each record in place (see the module); `pieces(record)` gives the answer's
    token texts, or None when it has no tokens."""
    from halluc_signals import claim_view

    scoring = [e for e in estimators if e.claims]
    for record in records:
        answer = record.get("completion") or ""
        claims = splitter.split(answer, record.get("prompt", ""))
        aligned = _aligned(claims, answer, pieces(record))
        record["claims"] = [
            {"text": c.text, "sentence": c.sentence, "start": c.start, "end": c.end, "tokens": tokens,
             "uq": {e.name: (e(claim_view(record, tokens, c.text)) if tokens else None) for e in scoring}}
            for c, tokens in zip(claims, aligned, strict=True)
        ]  # fmt: skip


def _aligned(claims: list[Any], answer: str, texts: list[str] | None) -> list[list[int] | None]:
    """The claims' tokens; the answer may be the tokens' text trimmed (a local decode strips it), so
    spans are moved to where the answer starts in that text. No tokens: every claim unaligned."""
    from dataclasses import replace

    from halluc_claims import align_claims

    joined = "".join(texts or [])
    shift = joined.find(answer) if texts and answer else -1
    if shift < 0:
        return [None] * len(claims)
    moved = [c if c.start is None else replace(c, start=c.start + shift, end=c.end + shift) for c in claims]
    return align_claims(moved, joined, texts)


def local_pieces(tokenizer: Any) -> Callable[[dict[str, Any]], list[str] | None]:
    """A local record's token texts, from the model's tokenizer."""
    from halluc_claims import token_pieces

    return lambda record: (
        token_pieces(tokenizer, record["token_ids"]) if record.get("token_ids") is not None else None
    )


def api_pieces(record: dict[str, Any]) -> list[str] | None:
    """An API record's token strings (None when the API returned no tokens)."""
    return record.get("tokens")
