"""The controller's text rules: where a sentence or clause ends (rollback anchors, where a thought
may end) and what delimiter debris a resumed answer must not start with."""

from __future__ import annotations

import re

ANCHOR_CHARS = ".!?;:,\n"  # a token whose text ends with one of these closes a sentence or clause
LEADING_JUNK = " \t\n:;,.-–—*)]>"  # delimiter debris a resumed answer must not start with


def sentence_closed(text: str) -> bool:
    """Whether `text` ends a sentence or a line: `.`, `!` or `?` (closing quotes or brackets may
    follow) or a line break; a list number ("2.", "Steps: 1.": one or two digits before the dot)
    closes nothing, a year ("in 1930.") does."""
    tail = text.rstrip(" ")
    if tail.endswith("\n"):
        return True
    last = tail.rsplit("\n", 1)[-1].strip()
    if not last or re.search(r"(?<![\d.,])\d{1,2}\.$", last):
        return False
    return re.search(r"[.!?][\"')\]”’]*$", last) is not None
