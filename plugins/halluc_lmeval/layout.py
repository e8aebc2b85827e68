"""Where each (phase, task, seed, limit) cell lives: `<root>/<phase>/<task>_seed<S>_<full|limitN>/`.

The phase is `baseline` or `postqlora/<adapter-name>`; any run with a limit is a draft and goes
under `<root>/drafts/<phase>/...`, so drafts never mix with final numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "halluc.eval.cell"


@dataclass(frozen=True)
class Cell:
    phase: str  # baseline | postqlora/<adapter>
    task: str
    seed: int
    limit: int | float | None

    @property
    def draft(self) -> bool:
        return self.limit is not None

    @property
    def name(self) -> str:
        return f"{self.task}_seed{self.seed}_{'full' if self.limit is None else f'limit{self.limit:g}'}"


def adapter_phase(adapter: str | None) -> str:
    if adapter is None:
        return "baseline"
    name = Path(adapter.rstrip("/")).name or adapter
    return f"postqlora/{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}"


def cell_dir(root: str | Path, cell: Cell) -> Path:
    base = Path(root) / "drafts" if cell.draft else Path(root)
    return base / cell.phase / cell.name


def is_complete(path: Path) -> bool:
    """A cell is done when its manifest was written (last, after lm-eval's own files)."""
    return (path / MANIFEST).is_file()
