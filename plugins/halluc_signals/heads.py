"""The heads file (`halluc calibrate heads`): which attention head of each layer RAUQ reads, and
the layers it runs on. Shared by every command that scores with RAUQ, so it lives below them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from halluc_signals.rauq import default_layers
from ucli.artifacts import check_made_for, load_artifact
from ucli.attention import check_layers, layer_list
from ucli.errors import BadInput
from ucli.fingerprint import ModelFingerprint

HEADS_SCHEMA = "halluc.rauq.heads"


def parse_layers(spec: str | None, num_layers: int) -> list[int]:
    """'10,12,14' or '10-20' (inclusive) or a mix; None gives the default middle third."""
    if spec is None:
        return default_layers(num_layers)
    layers = layer_list(spec)
    check_layers(layers, num_layers)
    return layers


def check_heads_file(path: str | Path) -> dict[str, Any]:
    """A heads artifact exists and is one, checked before a model loads; its document, which
    `load_heads` takes so that the file is read once."""
    return load_artifact(path, HEADS_SCHEMA)


def load_heads(
    path: str | Path, model: ModelFingerprint, doc: dict[str, Any] | None = None
) -> tuple[dict[int, int], list[int]]:
    """The runtime layers and their heads from a heads artifact made for this model (`doc`: the
    artifact as `check_heads_file` read it)."""
    if doc is None:
        doc = load_artifact(path, HEADS_SCHEMA, model=model)
    else:
        check_made_for(doc, path, model)
    heads = {int(layer): int(head) for layer, head in doc["heads"].items()}
    layers = [int(x) for x in doc["layers"]]
    bad = [layer for layer in layers if layer >= model.num_layers or heads.get(layer, -1) >= model.num_heads]
    if bad:
        raise BadInput(
            f"{path}: layers {bad} exceed this model's {model.num_layers} layers x {model.num_heads} heads"
        )
    return {layer: heads[layer] for layer in layers}, layers
