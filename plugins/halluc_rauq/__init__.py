"""RAUQ (Vazhentsev et al., 2025): attention-based uncertainty scores, their calibration, and the
uncertainty-triggered rollback + micro chain-of-thought controller.

The RAUQ math, the heads file and the scored decode live in `halluc_signals`. Python API:

    from halluc_rauq import RAUQController, ControllerConfig, RAUQScorer, Threshold   # docs/control.md
    from halluc_rauq import summarize, paired_comparison, risk_coverage, detection     # outcomes
    # the steps the commands and `halluc demo` compose (keyword-only, one config object each):
    from halluc_rauq import select_heads, calibrate_threshold, setup_controller, evaluate, ablate

Names load on first use so that `halluc --help` never imports torch.
"""

from ucli.lazy import lazy_exports

_EXPORTS = {
    "calibrate_heads": "calibration",
    "fit_threshold": "threshold",
    "load_theta": "threshold",
    "RAUQController": "controller",
    "ControllerConfig": "controller",
    "ControllerOutput": "controller",
    "RAUQScorer": "controller",
    "Threshold": "controller",
    "TriggerEvent": "controller",
    "Repair": "repairs",
    "Outcome": "repairs",
    "KEEP": "repairs",
    "summarize": "outcomes",
    "paired_comparison": "outcomes",
    "risk_coverage": "outcomes",
    "detection": "outcomes",
    "THETA_SCHEMA": "threshold",
    "collect": "threshold",
    "theta_payload": "threshold",
    "BASELINE": "control_eval",
    "RECORDS_SCHEMA": "control_eval",
    "SCORES_SCHEMA": "api",
    "CONTROLLER": "control_eval",
    "evaluate": "control_eval",
    "versus_greedy": "control_eval",
    "run_control_eval": "control_eval",
    "ablate": "control_eval",
    "select_heads": "api",
    "HeadsConfig": "api",
    "calibrate_threshold": "api",
    "ThresholdConfig": "api",
    "ThresholdResult": "api",
    "setup_controller": "api",
    "ControlArtifacts": "api",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
