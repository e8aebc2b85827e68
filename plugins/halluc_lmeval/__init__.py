"""`halluc eval`: lm-evaluation-harness sweeps (tasks x seeds x adapters) with one model load per
(base, adapter), in a results layout halluc owns.

Python API:

    from halluc_lmeval import run_sweep, SweepConfig, cell_dir   # run_sweep(config=SweepConfig(...))

Names load on first use so that `halluc --help` never imports lm_eval or torch.
"""

from ucli.lazy import lazy_exports

_EXPORTS = {"run_sweep": "sweep", "SweepConfig": "units", "cell_dir": "layout", "Cell": "layout"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
