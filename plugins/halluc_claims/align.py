"""Which answer tokens a claim rests on (its aligned token ids), by a documented rule.

Each answer token gets its character span in the answer: for a local model, the text each token
adds when the answer's ids are decoded one more at a time (`token_pieces`; a token that completes a
multi-byte character carries it, the tokens before it carry nothing); for an API, the token
strings it returned. The rule:

1. A claim that is a span of the answer (the `sentences` splitter's) rests on every token whose
   span overlaps the claim's characters, less tokens that are only spaces or punctuation.
2. A claim rewritten by an LLM rests on the tokens of its content words (letters or digits, not
   stop words): each is found in the answer at word boundaries, case-insensitive, searched from
   the start of the claim's sentence where that is known, in the claim's order; the tokens
   overlapping the found words are its tokens. A content word not found leaves the claim
   unaligned (recorded as such, never dropped), as does a claim with no content word.
"""

from __future__ import annotations

import re
from typing import Any

# Function words that carry no fact of their own (a claim's content words are the rest).
STOP_WORDS = frozenset(
    " ".join((
        "a an the and or but of in on at to for from by with as is are was were be been being has have had do does",
        "did he she it they them his her its their this that these those who whom which what when where why how not",
        "no also than then there here into onto over under about after before during until while",
    )).split()
)  # fmt: skip


def token_pieces(tokenizer: Any, token_ids: list[int]) -> list[str]:
    """The text each token adds to the decoded answer (they join to the decoded answer)."""
    pieces, done = [], ""
    for i in range(len(token_ids)):
        text = tokenizer.decode(token_ids[: i + 1], skip_special_tokens=True)
        if text.endswith("\ufffd"):  # a multi-byte character not finished yet
            pieces.append("")
            continue
        pieces.append(text[len(done) :])
        done = text
    return pieces


def char_spans(pieces: list[str]) -> list[tuple[int, int]]:
    """Each piece's [start, end) in the text the pieces join to."""
    spans, at = [], 0
    for piece in pieces:
        spans.append((at, at + len(piece)))
        at += len(piece)
    return spans


def content_words(text: str) -> list[str]:
    """The claim's words that are not stop words, lower-cased, in order."""
    return [w for w in re.findall(r"\w+", text.lower()) if w not in STOP_WORDS]


def align_claims(claims: list[Any], answer: str, pieces: list[str],
                 sentence_starts: list[int] | None = None) -> list[list[int] | None]:  # fmt: skip
    """Each claim's aligned token indices (None: unaligned), by the module's rule. `pieces` are the
    answer's token texts (`token_pieces`, or an API's token strings), joined they are `answer`."""
    spans = char_spans(pieces)
    out: list[list[int] | None] = []
    for claim in claims:
        if claim.start is not None and claim.end is not None:
            chars = [(claim.start, claim.end)]
        else:
            origin = (
                sentence_starts[claim.sentence]
                if sentence_starts and claim.sentence < len(sentence_starts)
                else 0
            )
            chars = _found_words(content_words(claim.text), answer, origin)
        if not chars:
            out.append(None)
            continue
        tokens = [i for i, (a, b) in enumerate(spans)
                  if re.search(r"\w", pieces[i]) and any(a < end and start < b for start, end in chars)]  # fmt: skip
        out.append(tokens or None)
    return out


def _found_words(words: list[str], answer: str, origin: int) -> list[tuple[int, int]]:
    """The character spans of `words` found in order from `origin`; empty when one is missing."""
    found, at, lowered = [], origin, answer.lower()
    for word in words:
        match = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)").search(lowered, at)
        if match is None:
            return []
        found.append(match.span())
        at = match.end()
    return found
