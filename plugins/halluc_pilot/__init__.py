"""`halluc pilot`: many prompts x many models (local and API), rate-limited, retried, resumable.

Python API:

    from halluc_pilot import load_config, load_prompts, run_pilot, validate

Names load on first use so that `halluc --help` never imports an SDK or torch.
"""

from ucli.lazy import lazy_exports

_EXPORTS = {
    "load_config": "config",
    "PilotConfig": "config",
    "load_prompts": "prompts",
    "run_pilot": "runner",
    "validate": "checks",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
