"""`halluc trace`: internal decision traces (attention, Q/K/V, hidden states, residual stream) of a
model on a data set, streamed to Zarr v3 + Parquet, validated, and read back per example with
`TraceStore`."""

from halluc_trace.store import TraceStore

__all__ = ["TraceStore"]
