"""Generation backends for `halluc pilot`: one class and one `halluc.backends` entry point each.

Python API:

    from halluc_backends import APIBackend, LocalBackend, Generation, SamplingParams, BackendError, backend_class

Names load on first use so that `halluc --help` never imports an SDK or torch.
"""

from ucli.lazy import lazy_exports

_EXPORTS = {
    "Backend": "base",
    "APIBackend": "base",
    "LocalBackend": "base",
    "Generation": "base",
    "SamplingParams": "base",
    "BackendError": "base",
    "backend_class": "base",
    "ALIASES": "base",
    "Readiness": "base",
    "Capabilities": "base",
    "classify": "errors",
    "Caller": "calls",
    "Limits": "calls",
    "Budget": "calls",
    "Pace": "calls",
    "one_budget": "calls",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
