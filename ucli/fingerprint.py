"""What identifies a model in an artifact: enough to refuse an artifact made for another model."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class ModelFingerprint(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    source: str  # hub | local | gguf | alias
    path: str | None = None
    revision: str | None = None
    file_sha256: str | None = None
    architecture: str
    model_type: str
    num_layers: int
    num_heads: int
    num_kv_heads: int
    hidden_size: int
    vocab_size: int
    dtype: str | None = None
    quantization: str | None = None
    adapter: str | None = None
    adapter_sha256: str | None = None

    # Fields that decide whether calibration made on one model can be used on another.
    IDENTITY: ClassVar[tuple[str, ...]] = (
        "architecture",
        "num_layers",
        "num_heads",
        "num_kv_heads",
        "hidden_size",
        "vocab_size",
        "adapter_sha256",
    )
    # Compared only when both sides know them (a hub revision and a file hash are both "the weights").
    WEIGHTS: ClassVar[tuple[str, ...]] = ("revision", "file_sha256")

    def mismatches(self, other: ModelFingerprint | dict) -> list[str]:
        theirs = other if isinstance(other, dict) else other.model_dump()
        ours = self.model_dump()
        diffs = [
            f"{k}: {theirs.get(k)!r} vs {ours.get(k)!r}" for k in self.IDENTITY if theirs.get(k) != ours[k]
        ]
        for k in self.WEIGHTS:
            if theirs.get(k) and ours[k] and theirs[k] != ours[k]:
                diffs.append(f"{k}: {theirs[k]!r} vs {ours[k]!r}")
        return diffs
