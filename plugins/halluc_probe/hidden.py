"""`halluc probe trace`: the hidden states a probe reads, from one forward pass over prompt + answer.

For each question the greedy answer's token ids (as generated) follow the prompt's token ids (as
the generation encoded them), and the hidden states of every layer (embeddings first) are taken at:

- `tbg`: the token before generation, the prompt's last token (index len(prompt) - 1);
- `slt`: the second-last token, i.e. the last answer token before the end-of-sequence token
  (index len(prompt) + len(answer) - 1; the reference implementation reads two tokens earlier);
- `think-end`: the last token of the first `</think>` in the answer (reasoning models).

Positions are indexed explicitly per sequence, never from the padded end. A question whose answer
is empty (no `slt`) or has no `</think>` has that position missing: it is skipped there, counted
and reported, and its row holds NaN.

Output: a Zarr v3 group with one float32 array per position, (N, L+1, D), and attributes holding
the question ids, the positions, what was missing and the provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halluc_probe.runs import read_runs
from ucli import console
from ucli.errors import BadInput
from ucli.models import DEFAULT_MODEL, LoadOptions

POSITIONS = ("tbg", "slt", "think-end")
HIDDEN_SCHEMA = "halluc.probe.hidden"
THINK_END = "</think>"


def array_name(position: str) -> str:
    return position.replace("-", "_")


def parse_positions(spec: str) -> list[str]:
    chosen = [p.strip() for p in spec.split(",") if p.strip()]
    bad = [p for p in chosen if p not in POSITIONS]
    if bad or not chosen:
        raise BadInput(
            f"--positions: unknown position {bad[0] if bad else spec!r} (expected some of: {', '.join(POSITIONS)})"
        )
    return list(dict.fromkeys(chosen))


def _find(seq: list[int], pattern: list[int]) -> int | None:
    """Index of the last token of the first occurrence of `pattern` in `seq`."""
    for i in range(len(seq) - len(pattern) + 1):
        if seq[i : i + len(pattern)] == pattern:
            return i + len(pattern) - 1
    return None


def positions_of(prompt_ids: list[int], answer_ids: list[int], think_ids: list[int]) -> dict[str, int | None]:
    """Absolute indices of each position in prompt + answer (None where the position does not exist)."""
    n = len(prompt_ids)
    end = _find(answer_ids, think_ids) if think_ids else None
    return {
        "tbg": n - 1,
        "slt": n + len(answer_ids) - 1 if answer_ids else None,
        "think-end": n + end if end is not None else None,
    }


@dataclass(frozen=True)
class HiddenConfig:
    """What `probe trace` reads: the model that generated the runs, how it loads, where to look."""

    model: str = DEFAULT_MODEL
    positions: tuple[str, ...] = ("tbg", "slt")
    batch_size: int = 8
    load: LoadOptions = field(default_factory=LoadOptions)

    def __post_init__(self) -> None:
        parse_positions(",".join(self.positions))


def trace_hidden(
    *,
    config: HiddenConfig,
    runs: str | Path,
    output: str | Path,
    resume: bool = False,
    executor: Any = None,
    force: bool = False,
) -> dict[str, Any]:
    """Hidden states at the chosen positions of every question's prompt + greedy answer, one Zarr
    array per position; journaled per question, so a killed run resumes where it stopped. With
    `executor` (`ucli.executor.Executor`, e.g. Ray) the batches run on model replicas; this process
    alone writes the arrays and the journal. Batches are fixed slices of the questions, and one with
    any unfinished question runs again whole, so every row comes from the batch it would in one
    unbroken run. `force` resumes a journal of another configuration (a warning)."""
    from ucli.executor import Executor, model_replicas
    from ucli.journal import Journal, preflight, removed_unless_started
    from ucli.models import load_model

    out, positions = Path(output), list(config.positions)
    journal_path = preflight(out, resume, folder=True)
    records = read_runs(runs)
    runner = executor or Executor()
    lm = load_model(config.model, config.load, weights=runner.kind == "local")  # on Ray, a shell
    for r in records:
        if any(t is None for t in r["greedy"].get("token_ids") or []):
            raise BadInput(
                f"{runs}: question '{r['id']}': the greedy answer has no token ids (regenerate it)"
            )
    think_ids = (
        lm.tokenizer(THINK_END, add_special_tokens=False)["input_ids"] if "think-end" in positions else []
    )
    text = lm.model.config.get_text_config()
    n, layers, width = len(records), text.num_hidden_layers + 1, text.hidden_size
    # the arrays are made before the first row: a run that stored none leaves no folder behind
    with removed_unless_started(out), model_replicas(runner, lm, config.model, config.load) as replicas:
        journal = Journal(journal_path, config={"model": config.model, "runs": str(runs), "positions": positions,
                                                "fingerprint": lm.fingerprint.model_dump()},
                          resume=resume, force=force)  # fmt: skip
        group, arrays = _open_arrays(out, positions, (n, layers, width))
        index = {str(r["id"]): i for i, r in enumerate(records)}
        batches = [b for _, b in journal.todo_batches(records, config.batch_size, lambda r: r["id"])]
        try:
            with console.progress("questions", n) as advance:
                advance(len(journal.done))
                for rows in replicas.map(hidden_rows, batches, positions, think_ids):
                    advance(_store(rows, arrays, index, journal))
            done = {r["id"]: r for r in journal.records()}
        finally:
            journal.close()
    missing = _finish(group, records, done, positions, lm, runs, config)
    journal_path.unlink(missing_ok=True)
    return {"output": str(out), "questions": n, "layers": layers, "hidden_size": width,
            "missing": {p: len(v) for p, v in missing.items()}}  # fmt: skip


def _store(rows: list[dict[str, Any]], arrays: dict[str, Any], index: dict[str, int], journal: Any) -> int:
    """A batch's rows into the arrays, then its records into the journal (those not there yet: a
    batch run again for one unfinished question); how many were new."""
    done = journal.done
    new = [row for row in rows if row["id"] not in done]
    for row in new:
        for position, values in row.pop("rows").items():
            arrays[position][index[row["id"]]] = values
        journal.append(row)
    return len(new)


def _open_arrays(out: Path, positions: list[str], shape: tuple[int, int, int]) -> tuple[Any, dict[str, Any]]:
    """The Zarr group and one (N, L+1, D) float32 array per position, NaN until written (kept on resume)."""
    import numpy as np
    import zarr

    group = zarr.open_group(str(out), mode="a", zarr_format=3)
    arrays = {}
    for pos in positions:
        name = array_name(pos)
        arrays[pos] = group[name] if name in group else group.create_array(
            name, shape=shape, chunks=(1, *shape[1:]), dtype="float32", fill_value=np.nan)  # fmt: skip
    return group, arrays


def hidden_rows(
    lm: Any, batch: list[dict], positions: list[str], think_ids: list[int]
) -> list[dict[str, Any]]:
    """One right-padded forward pass, wherever it runs: per question its journal record (position
    indices, what is missing) and `rows`, the (L+1, D) hidden states at each present position."""
    import torch

    from ucli.models import right_padded

    seqs, where = [], []
    for r in batch:
        prompt = lm.prompt_ids(lm.chat_prompt(r["message"]))
        answer = list(r["greedy"]["token_ids"])
        seqs.append(prompt + answer)
        where.append(positions_of(prompt, answer, think_ids))
    ids, mask = right_padded(seqs, lm.tokenizer.pad_token_id or 0)  # every index is the unpadded one
    with torch.no_grad():
        hidden = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                          output_hidden_states=True, use_cache=False).hidden_states  # fmt: skip
    stacked = torch.stack(hidden, dim=1).float()  # [B, L+1, T, D]
    return [
        {"id": str(r["id"]), "positions": {p: at[p] for p in positions},
         "missing": [p for p in positions if at[p] is None],
         "rows": {p: stacked[row, :, at[p]].cpu().numpy() for p in positions if at[p] is not None}}
        for row, (r, at) in enumerate(zip(batch, where, strict=True))
    ]  # fmt: skip


def _finish(group: Any, records: list[dict], done: dict, positions: list[str], lm: Any, runs: Any,
            config: HiddenConfig) -> dict[str, list[str]]:  # fmt: skip
    """The group's attributes (ids, indices, what is missing, provenance); the missing ids per position."""
    from ucli.artifacts import provenance

    missing = {
        pos: [str(r["id"]) for r in records if pos in done[str(r["id"])]["missing"]] for pos in positions
    }
    for pos, ids_missing in missing.items():
        if ids_missing:
            console.warn(f"{len(ids_missing)} question(s) have no {pos} position (skipped there, NaN)")
    group.attrs.update({
        "provenance": provenance(HIDDEN_SCHEMA, 1, model=lm.fingerprint, inputs=[runs],
                                 config={"model": config.model, "positions": positions, "batch_size": config.batch_size}),
        "ids": [str(r["id"]) for r in records],
        "positions": positions,
        "indices": [done[str(r["id"])]["positions"] for r in records],
        "missing": missing,
    })  # fmt: skip
    return missing


def read_hidden(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(attributes, {position: zarr array}) of a `probe trace` output; refuses an unfinished one."""
    import zarr

    p = Path(path)
    if not (p / "zarr.json").is_file():
        raise BadInput(f"{p}: not a `halluc probe trace` output (no zarr.json)")
    group = zarr.open_group(str(p), mode="r")
    attrs = dict(group.attrs)
    if attrs.get("provenance", {}).get("schema") != HIDDEN_SCHEMA:
        hint = " (unfinished: --resume it)" if (p / "journal.jsonl").is_file() else ""
        raise BadInput(f"{p}: not a finished `halluc probe trace` output{hint}")
    return attrs, {pos: group[array_name(pos)] for pos in attrs["positions"]}
