"""What one observed decode of a model records, and what is computed from it: below every command.

`halluc calibrate`, `control`, `uq` and `probe` all read the same per-token statistics of a greedy
decode (`token_logprobs`, `token_entropy`, `token_margin`, RAUQ's attention scores) and the same
estimators over them; they live here so that no command plugin imports another for them.

Python API:

    from halluc_signals import Estimator, registry, choose       # the estimators installed
    from halluc_signals import TokenStep, token_signal           # one token's statistics; a trigger
    from halluc_signals import score, ScoreConfig                # greedy decode + RAUQ, journaled
    from halluc_signals import rauq_scores, default_layers, default_alpha, score_completion
    from halluc_signals import load_heads, check_heads_file, HEADS_SCHEMA   # the heads file

Names load on first use so that `halluc --help` never imports torch.
"""

from ucli.lazy import lazy_exports

_EXPORTS = {
    "Estimator": "estimators",
    "registry": "estimators",
    "choose": "estimators",
    "answer_scores": "estimators",
    "BUILT_IN": "estimators",
    "SINGLE_PASS": "estimators",
    "TokenStep": "estimators",
    "token_signals": "estimators",
    "token_signal": "estimators",
    "RAUQResult": "rauq",
    "RAUQScorer": "rauq",
    "rauq_scores": "rauq",
    "log_confidence": "rauq",
    "default_layers": "rauq",
    "default_alpha": "rauq",
    "per_sequence_heads": "rauq",
    "entropy_confidence": "rauq",
    "score_completion": "teacher_forced",
    "teacher_force": "teacher_forced",
    "capture_previous_token_attention": "attention",
    "watch_own_key_attention": "attention",
    "HEADS_SCHEMA": "heads",
    "parse_layers": "heads",
    "load_heads": "heads",
    "check_heads_file": "heads",
    "score": "decode",
    "ScoreConfig": "decode",
    "ScoreResult": "decode",
    "model_alpha": "decode",
    "Judge": "decode",
    "judged": "decode",
    "Stage": "stages",
    "StageRun": "stages",
    "stage_registry": "stages",
    "resolve": "stages",
    "ForcedTokens": "teacher_forced",
    "check_alpha": "rauq",
    "confidence_prompt": "verbalized",
    "claim_view": "claim_level",
    "claim_estimators": "claim_level",
    "parse_confidence": "verbalized",
    "CONFIDENCE_TOKENS": "verbalized",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
