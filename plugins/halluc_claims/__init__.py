"""Long answers, claim by claim: claim splitters (entry-point group `halluc.claims`) and the rule
that ties each claim to the answer tokens it rests on.

Python API:

    from halluc_claims import Claim, Sentences, Decomposer, get_splitter, token_pieces, align_claims
    from halluc_claims import ReferenceRule, read_labels, VERDICTS      # claim verdicts

Names load on first use so that `halluc --help` never imports a splitter's dependencies.
"""

from ucli.lazy import lazy_exports

_EXPORTS = {
    "Claim": "split",
    "Sentences": "split",
    "get_splitter": "split",
    "parse_splitter": "split",
    "Decomposer": "llm",
    "decomposition_prompt": "llm",
    "ReferenceRule": "verify",
    "checkable": "verify",
    "read_labels": "verify",
    "reference_verdicts": "verify",
    "judge_verdicts": "verify",
    "label_verdicts": "verify",
    "VERDICTS": "verify",
    "REFERENCE_THRESHOLD": "verify",
    "splitters": "split",
    "token_pieces": "align",
    "char_spans": "align",
    "align_claims": "align",
    "content_words": "align",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
