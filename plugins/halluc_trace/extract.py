"""`halluc trace extract`: run a model over a data set and stream its internals to a trace run.

A run folder holds `meta.json`, `tokens.parquet` and one Zarr v3 group per captured quantity (see
`layout`). Batches are computed on the main thread and written by a single writer thread, which
stores each example's arrays and token rows and only then journals the example: memory holds at
most the batch being computed and the one being written, whatever N is, and `--resume` after a
crash recomputes only examples that were not journaled. `meta.json` is written last, so a folder
without it is an unfinished run. On Ray model replicas (`--executor ray`) the driver creates the
arrays, each replica computes and writes whole batches (every example has its own shards), and
the driver journals them as they come back.

Sequences are right-padded to T (positions then start at 0 for every example, as unpadded), the
forward pass runs on the batch's own longest length, and everything past an example's true length
is stored as exact zeros.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from halluc_trace import layout, tokens
from halluc_trace.layout import ArraySpec, Dims
from halluc_trace.sources import format_prompt, load_questions, load_texts
from ucli import console
from ucli.data import MultipleChoiceItem
from ucli.errors import BadInput
from ucli.models import DEFAULT_MODEL, Device, Dtype, LoadOptions

PARTS = "tokens.parts"


class ExtractConfig(BaseModel):
    """Everything that decides a run's contents (the journal refuses to resume with another)."""

    model_config = ConfigDict(extra="forbid")

    model: str = DEFAULT_MODEL
    mode: Literal["nexttok", "prompt", "encoder-mcq"] = "nexttok"
    dataset: str | None = None
    data: str | None = None
    data_file: str | None = None
    split: str = "validation"
    limit: int | None = Field(default=None, ge=1)
    max_seq_len: int | None = Field(default=None, ge=2)  # None: the longest example ('auto')
    batch_size: int = Field(default=8, ge=1)
    capture: tuple[str, ...] = ("attn", "hidden")  # what to store (meta.json: "captures")
    layers: tuple[int, ...] | None = None  # None: every layer
    store_dtype: Literal["float16", "float32"] = "float16"
    topk: int = Field(default=5, ge=1)
    device: Device = "auto"
    dtype: Dtype = "auto"
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    adapter: str | None = None

    @property
    def load(self) -> LoadOptions:
        """The load knobs as `LoadOptions`, with the Auto class the mode needs."""
        task = "multiple-choice" if self.mode == "encoder-mcq" else "causal-lm"
        return LoadOptions(device=self.device, dtype=self.dtype, load_in_4bit=self.load_in_4bit,
                           load_in_8bit=self.load_in_8bit, adapter=self.adapter, task=task)  # fmt: skip

    @property
    def side(self) -> str:
        """Which arrays the run holds: 'dec' (decoder modes) or 'enc_mc' (encoder multiple choice)."""
        return "enc_mc" if self.mode == "encoder-mcq" else "dec"

    @field_validator("capture")
    @classmethod
    def _capture(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in v if c not in layout.CAPTURES]
        if bad:
            raise ValueError(f"unknown capture {bad[0]!r} (expected some of: {', '.join(layout.CAPTURES)})")
        if not v:
            raise ValueError(f"nothing to capture (expected some of: {', '.join(layout.CAPTURES)})")
        return tuple(c for c in layout.CAPTURES if c in v)  # canonical order, no repeats


@dataclass
class Example:
    id: str
    index: int
    ids: list[list[int]]  # one sequence; one per choice in encoder runs
    type_ids: list[list[int]] | None = None
    item: MultipleChoiceItem | None = None
    truncated: bool = False

    @property
    def lengths(self) -> list[int]:
        return [len(s) for s in self.ids]


def _examples(cfg: ExtractConfig, tokenizer: Any, max_positions: int) -> tuple[list[Example], int]:
    """Tokenized examples and the padded length T."""
    if (cfg.dataset is None) == (cfg.data is None):
        raise BadInput("pass exactly one of --dataset NAME and --data FILE")
    limit = cfg.limit
    out: list[Example] = []
    if cfg.mode == "nexttok":
        texts = load_texts(cfg.dataset, cfg.data, cfg.split, cfg.data_file)[:limit]
        cap = min(cfg.max_seq_len or max_positions, max_positions)
        for i, ex in enumerate(texts):
            ids = tokenizer(ex.text)["input_ids"]
            out.append(Example(ex.id, i, [ids[:cap]], truncated=len(ids) > cap))
        if any(e.truncated for e in out):
            console.warn(f"{sum(e.truncated for e in out)} text(s) longer than {cap} tokens were truncated")
    else:
        items = load_questions(cfg.dataset, cfg.data, cfg.split, cfg.data_file)[:limit]
        for i, item in enumerate(items):
            if cfg.mode == "prompt":
                out.append(Example(item.id, i, [tokenizer(format_prompt(item))["input_ids"]], item=item))
            else:
                enc = tokenizer([item.question] * len(item.choices), item.choices)
                out.append(Example(item.id, i, enc["input_ids"], enc.get("token_type_ids"), item=item))
        longest = max(out, key=lambda e: max(e.lengths))
        need = max(longest.lengths)
        limit_t = min(cfg.max_seq_len or max_positions, max_positions)
        if need > limit_t:
            what = "--max-seq-len" if cfg.max_seq_len and cfg.max_seq_len <= max_positions else "the model's"
            raise BadInput(f"example '{longest.id}' needs {need} tokens, more than {what} limit of {limit_t} "
                           "(a multiple-choice prompt is never cut)")  # fmt: skip
    t = cfg.max_seq_len or max(max(e.lengths) for e in out)
    return out, min(t, max_positions)


def _choice_letter_ids(tokenizer: Any, labels: list[str]) -> list[int]:
    """The token that answers each letter after 'Answer:' (' A', else 'A'); both must be one token."""
    for form in (" {}", "{}"):
        ids = [tokenizer(form.format(label), add_special_tokens=False)["input_ids"] for label in labels]
        if all(len(i) == 1 for i in ids) and len({i[0] for i in ids}) == len(ids):
            return [i[0] for i in ids]
    raise BadInput(f"the tokenizer splits the choice letters {labels} into several tokens; prompt mode "
                   "scores single-token letters")  # fmt: skip


class Run:
    """A trace run's arrays and token parts: the driver creates the arrays, any writer opens them
    (one shard per example, so writers of different examples never share a file)."""

    def __init__(self, out: Path, specs: list[ArraySpec], dtype: str):
        import zarr
        from zarr.codecs import ZstdCodec

        self.out, self.specs = out, specs
        self.arrays: dict[str, Any] = {}
        for spec in specs:
            group = zarr.open_group(str(out / spec.group), mode="a", zarr_format=3)
            if spec.name in group:
                arr = group[spec.name]
                if tuple(arr.shape) != spec.shape or str(arr.dtype) != dtype:
                    raise BadInput(f"{out / spec.path}: holds {arr.shape} {arr.dtype}, this run needs "
                                   f"{spec.shape} {dtype}")  # fmt: skip
            else:
                arr = group.create_array(spec.name, shape=spec.shape, chunks=spec.chunks, shards=spec.shards,
                                         dtype=dtype, fill_value=0, compressors=ZstdCodec(level=1))  # fmt: skip
            self.arrays[spec.path] = arr
        (out / PARTS).mkdir(exist_ok=True)

    def write(
        self, batch: list[Example], arrays: dict[str, Any], rows: list[dict[str, Any]], mode: str
    ) -> list[dict[str, Any]]:
        """Store a batch; returns its journal records (the caller journals them once stored)."""
        from ucli.artifacts import write_parquet

        first, last = batch[0].index, batch[-1].index
        consecutive = last - first == len(batch) - 1
        for path, data in arrays.items():
            target = self.arrays[path]
            if consecutive:  # one call: zarr encodes the batch's shards concurrently
                target[first : last + 1] = data
            else:
                for j, ex in enumerate(batch):
                    target[ex.index] = data[j]
        part = f"part-{batch[0].index:09d}.parquet"
        write_parquet(self.out / PARTS / part, rows, schema=tokens.schema(mode))
        return [{"id": ex.id, "index": ex.index, "part": part} for ex in batch]


def _stored_copy(x: Any, lengths: list[int], t: int, t_axes: tuple[int, ...]) -> Any:
    """A numpy copy of tensor `x` ([rows, ...]) padded to `t` on `t_axes`, holding each row's first
    `lengths[row]` positions on those axes and exact zeros everywhere else (padding never leaks)."""
    import numpy as np

    src = x.cpu().numpy()
    shape = list(src.shape)
    for a in t_axes:
        shape[a] = t
    out = np.zeros(shape, dtype=src.dtype)
    for row, n in enumerate(lengths):
        index: list[Any] = [row] + [slice(None)] * (src.ndim - 1)
        for a in t_axes:
            index[a] = slice(0, n)
        out[tuple(index)] = src[tuple(index)]
    return out


class Extractor:
    """Computes one batch: the forward pass, the arrays to store and the token rows."""

    def __init__(self, cfg: ExtractConfig, lm: Any, recorder: Any, specs: list[ArraySpec], t: int,
                 hidden_indices: list[int], letters: list[int] | None):  # fmt: skip
        self.cfg, self.lm, self.recorder, self.specs, self.t = cfg, lm, recorder, specs, t
        self.hidden_indices, self.letters = hidden_indices, letters
        self.text = tokens.TokenText(lm.tokenizer)
        self.side = cfg.side
        self.overflow = False

    def _inputs(self, batch: list[Example]) -> dict[str, Any]:
        from ucli.models import right_padded

        ids, keep = right_padded([s for ex in batch for s in ex.ids], self.lm.tokenizer.pad_token_id or 0)
        inputs = {"input_ids": ids, "attention_mask": keep}
        if batch[0].type_ids is not None:
            inputs["token_type_ids"] = right_padded([s for ex in batch for s in ex.type_ids or []], 0)[0]
        if self.side == "enc_mc":  # [B, C, T]: the multiple-choice head scores the choices of one question
            inputs = {k: v.view(len(batch), -1, ids.shape[-1]) for k, v in inputs.items()}
        return {k: v.to(self.lm.device) for k, v in inputs.items()}

    def _stored(self, path: str, x: Any, lengths: list[int], t_axes: tuple[int, ...], n_batch: int) -> Any:
        import torch

        # attention weights lie in [0, 1]; anything else may overflow float16
        attention = path.endswith("/attn")
        if self.cfg.store_dtype == "float16" and not attention and not self.overflow and torch.isinf(x).any():
            self.overflow = True
            console.warn(
                f"{path}: values beyond float16's range were stored as inf; use --store-dtype float32"
            )
        out = _stored_copy(x, lengths, self.t, t_axes)
        if self.side == "enc_mc":  # [B*C, ...] -> [B, C, ...]
            out = out.reshape(n_batch, -1, *out.shape[1:])
        return out

    def compute(self, batch: list[Example]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        import torch

        inputs = self._inputs(batch)
        with torch.no_grad():
            out = self.lm.model(**inputs, output_hidden_states="hidden" in self.cfg.capture, use_cache=False)
        got = self.recorder.take()
        lengths = inputs["attention_mask"].reshape(-1, inputs["attention_mask"].shape[-1]).sum(-1).tolist()
        n = len(batch)
        store = self.recorder.dtype
        arrays: dict[str, Any] = {}
        for spec in self.specs:
            group, name = spec.group.removesuffix(".zarr"), spec.name
            if name == "attn":
                arrays[spec.path] = self._stored(spec.path, got["attn"], lengths, (3, 4), n)
            elif name in ("q", "k", "v"):
                arrays[spec.path] = self._stored(spec.path, got[name], lengths, (3,), n)
            elif name == "h":
                hidden = torch.stack([out.hidden_states[i].to(store) for i in self.hidden_indices], dim=1)
                arrays[spec.path] = self._stored(spec.path, hidden, lengths, (2,), n)
            elif group.endswith("res_embed"):
                arrays[spec.path] = self._stored(spec.path, got["embed"], lengths, (1,), n)
            else:
                stage = group.split("res_", 1)[1]
                arrays[spec.path] = self._stored(spec.path, got[stage], lengths, (2,), n)
        return arrays, self._rows(batch, inputs, out.logits)

    def _rows(self, batch: list[Example], inputs: dict[str, Any], logits: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        if self.side == "enc_mc":
            for j, ex in enumerate(batch):
                assert ex.item is not None
                answer = tokens.answer_columns(ex.item, logits[j].float().tolist())
                rows += tokens.encoder_rows(ex.id, ex.index, ex.ids, self.text, answer)
            return rows
        stats = tokens.next_token_stats(logits, inputs["input_ids"], inputs["attention_mask"], self.cfg.topk)
        for j, ex in enumerate(batch):
            extra = None
            if ex.item is not None:  # prompt mode: the answer letter is the next token after the prompt
                assert self.letters is not None
                last = logits[j, len(ex.ids[0]) - 1].float()
                extra = tokens.answer_columns(ex.item, last[self.letters].tolist())
            rows += tokens.decoder_rows(ex.id, ex.index, ex.ids[0], stats, j, self.text, extra)
        return rows


def _finish(out: Path, journal: Any, mode: str) -> int:
    """tokens.parquet from the journaled parts (streamed, each example once, in example order)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ucli.artifacts import atomic_path

    by_part: dict[str, set[int]] = {}
    for rec in journal.records():
        by_part.setdefault(rec["part"], set()).add(int(rec["index"]))
    schema = tokens.schema(mode)
    rows = 0
    with atomic_path(out / layout.TOKENS) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for part, indices in sorted(by_part.items(), key=lambda kv: min(kv[1])):
            table = pq.read_table(out / PARTS / part, schema=schema)
            keep = pa.compute.is_in(table["example_index"], pa.array(sorted(indices), pa.int32()))
            table = table.filter(keep)
            writer.write_table(table)
            rows += table.num_rows
    return rows


@dataclass
class Plan:
    """What one extraction stores, fixed once the model and the examples are known."""

    examples: list[Example]
    layers: list[int]
    t: int
    dims: Dims
    specs: list[Any]
    hidden_indices: list[int]
    letters: list[int] | None


def _plan(cfg: ExtractConfig, lm: Any) -> Plan:
    """Layers, padded length, array shapes (chunks, shards) and the prompt mode's letter ids."""
    import numpy as np

    from ucli.attention import check_layers

    text_cfg = lm.model.config.get_text_config()
    n_layers = text_cfg.num_hidden_layers
    layers = sorted(set(cfg.layers)) if cfg.layers is not None else list(range(n_layers))
    check_layers(layers, n_layers)
    max_positions = int(getattr(text_cfg, "max_position_embeddings", None) or 1 << 20)
    examples, t = _examples(cfg, lm.tokenizer, max_positions)
    n_choices = len(examples[0].ids) if cfg.mode == "encoder-mcq" else 0
    heads = text_cfg.num_attention_heads
    kv_heads = getattr(text_cfg, "num_key_value_heads", None) or heads
    d_head = getattr(text_cfg, "head_dim", None) or text_cfg.hidden_size // heads
    dims = Dims(len(examples), n_choices, len(layers), heads, kv_heads, t, text_cfg.hidden_size, d_head)
    specs = layout.array_specs(cfg.side, cfg.capture, dims, np.dtype(cfg.store_dtype).itemsize)
    letters = None
    if cfg.mode == "prompt":
        letters = _choice_letter_ids(lm.tokenizer, examples[0].item.labels)  # type: ignore[union-attr]
    return Plan(examples, layers, t, dims, specs, [0] + [layer + 1 for layer in layers], letters)


def extract_traces(
    *,
    config: ExtractConfig,
    output: str | Path | None = None,
    resume: bool = False,
    executor: Any = None,
    force: bool = False,
) -> dict[str, Any]:
    """Run the extraction, here or on `executor`'s model replicas (`ucli.executor.Executor`, e.g.
    Ray); returns a summary (run folder, examples, T, bytes on disk and raw float32). `force`
    resumes a journal of another configuration (a warning)."""
    import numpy as np

    from ucli.artifacts import run_id, write_artifact
    from ucli.journal import Journal, preflight, removed_unless_started
    from ucli.models import load_model

    cfg = config
    if resume and output is None:
        raise BadInput("--resume needs --output: the run folder to continue")
    out = Path(output) if output is not None else Path("traces") / run_id("trace")
    journal_path = preflight(out, resume, folder=True, complete=layout.META, name=layout.JOURNAL)
    if journal_path is None:
        return {"output": str(out), "complete": True}
    started = time.perf_counter()
    local = executor is None or executor.kind == "local"
    lm = load_model(cfg.model, cfg.load, weights=local)  # on Ray, a shell: the replicas hold the model
    plan = _plan(cfg, lm)
    with removed_unless_started(out):  # arrays made, nothing traced: no half-made folder is left
        out.mkdir(parents=True, exist_ok=True)
        raw = sum(int(np.prod(s.shape)) for s in plan.specs)
        console.info(f"{len(plan.examples)} examples x {plan.t} tokens, {len(plan.layers)} layers: {len(plan.specs)} arrays, "
                     f"{console.human_bytes(raw * np.dtype(cfg.store_dtype).itemsize)} before compression -> {out}")  # fmt: skip
        token_rows = _traced(
            cfg, lm, plan, out, partial(Journal, journal_path, resume=resume, force=force), executor
        )
    write_artifact(out / layout.META, layout.META_SCHEMA, 1, _meta(cfg, lm, plan, token_rows), model=lm.fingerprint,
                   inputs=[p for p in (cfg.data, cfg.data_file) if p], config=cfg.model_dump(mode="json"))  # fmt: skip
    shutil.rmtree(out / PARTS, ignore_errors=True)
    (out / layout.JOURNAL).unlink(missing_ok=True)
    return {
        "output": str(out),
        "complete": True,
        "examples": len(plan.examples),
        "max_seq_len": plan.t,
        "arrays": len(plan.specs),
        "bytes_on_disk": layout.folder_bytes(out),
        "raw_float32_bytes": raw * 4,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _traced(cfg: ExtractConfig, lm: Any, plan: Plan, out: Path, journal_at: Any, executor: Any) -> int:
    """Every example traced (here, or on `executor`'s replicas) and journaled (`journal_at(config=...)`
    opens the journal once the replicas say what runs); the tokens table's rows."""
    from ucli.executor import Executor, Replicas

    run = Run(out, plan.specs, cfg.store_dtype)  # the arrays exist before any replica writes
    with Replicas(executor or Executor(), lm, Tracer, cfg, replace(plan, examples=[]), out) as replicas:
        lm.fingerprint = replicas.fingerprint()  # what ran, where it ran
        journal = journal_at(
            config={**cfg.model_dump(mode="json"), "fingerprint": lm.fingerprint.model_dump(), "t": plan.t}
        )
        try:
            if executor is None or executor.kind == "local":
                _trace(cfg, lm, plan, run, journal)
            else:
                _trace_on_replicas(cfg, plan, journal, replicas)
            return _finish(out, journal, cfg.mode)
        finally:
            journal.close()


def _extractor(cfg: ExtractConfig, lm: Any, plan: Plan) -> tuple[Any, Extractor]:
    """The recorder on `lm` (not yet installed) and the extractor that computes batches with it."""
    import torch

    from halluc_trace.capture import Recorder

    recorder = Recorder(lm.model, cfg.capture, plan.layers, getattr(torch, cfg.store_dtype))
    return recorder, Extractor(cfg, lm, recorder, plan.specs, plan.t, plan.hidden_indices, plan.letters)


def _trace(cfg: ExtractConfig, lm: Any, plan: Plan, run: Run, journal: Any) -> None:
    """Every batch with an unjournaled example, in this process; one batch is written (by a single
    writer thread, which journals it once stored) while the next is computed."""
    recorder, extractor = _extractor(cfg, lm, plan)
    batches = [batch for _, batch in journal.todo_batches(plan.examples, cfg.batch_size)]

    def store(batch: list[Example], arrays: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        advance(journal.append_new(run.write(batch, arrays, rows, cfg.mode)))

    with recorder.installed(), ThreadPoolExecutor(max_workers=1) as pool, \
            console.progress("tracing", len(plan.examples)) as advance:  # fmt: skip
        advance(len(journal.done))
        writing: Future | None = None
        for batch in batches:
            arrays, rows = extractor.compute(batch)
            if writing is not None:
                writing.result()  # at most one batch waits to be written
            writing = pool.submit(store, batch, arrays, rows)
        if writing is not None:
            writing.result()


class Tracer:
    """One model replica's extraction: the model with the recorder installed for its lifetime, and
    the run's arrays opened for writing (built on each Ray worker by `ucli.executor.Replicas`)."""

    def __init__(self, cfg: ExtractConfig, plan: Plan, out: Path) -> None:
        from ucli.models import load_model

        lm = load_model(cfg.model, cfg.load)
        recorder, self.extractor = _extractor(cfg, lm, plan)
        self.installed = recorder.installed()  # held: the hooks stay until the replica stops
        self.installed.__enter__()
        self.lm, self.run, self.mode = lm, Run(out, plan.specs, cfg.store_dtype), cfg.mode


def trace_batch(tracer: Tracer, batch: list[Example]) -> list[dict[str, Any]]:
    """One batch computed and stored by a replica; its journal records go back to the driver."""
    arrays, rows = tracer.extractor.compute(batch)
    return tracer.run.write(batch, arrays, rows, tracer.mode)


def _trace_on_replicas(cfg: ExtractConfig, plan: Plan, journal: Any, replicas: Any) -> None:
    """Every batch with an unjournaled example, on model replicas that write their own examples'
    shards and token parts; the driver alone journals, as each batch comes back."""
    with console.progress("tracing", len(plan.examples)) as advance:
        advance(len(journal.done))
        for records in replicas.map(
            trace_batch, [b for _, b in journal.todo_batches(plan.examples, cfg.batch_size)]
        ):
            advance(journal.append_new(records))


def _shape_meta(cfg: ExtractConfig, lm: Any, d: Any) -> dict[str, Any]:
    """The model's shape as the arrays hold it (GQA: fewer key/value heads than query heads)."""
    from halluc_trace.capture import applies_rotary

    return {
        "num_layers": lm.model.config.get_text_config().num_hidden_layers,
        "num_heads": d.heads,
        "num_kv_heads": d.kv_heads,
        "head_dim": d.d_head,
        "hidden_size": d.d_model,
        "qk_after_rotary": applies_rotary(lm.model) if "qkv" in cfg.capture else None,
        "kv_heads_note": (
            f"k and v keep the model's {d.kv_heads} key/value heads; query head h reads KV head "
            f"h // {d.heads // d.kv_heads}"
        )
        if d.kv_heads != d.heads
        else None,
    }


def _meta(cfg: ExtractConfig, lm: Any, plan: Plan, token_rows: int) -> dict[str, Any]:
    """meta.json: what the arrays hold and how to read them."""
    return {
        "mode": cfg.mode,
        "side": cfg.side,
        "captures": list(cfg.capture),
        "layers": plan.layers,
        "hidden_indices": plan.hidden_indices if "hidden" in cfg.capture else None,
        "store_dtype": cfg.store_dtype,
        "n_examples": len(plan.examples),
        "n_choices": plan.dims.c or None,
        "max_seq_len": plan.t,
        "padding": "right",
        **_shape_meta(cfg, lm, plan.dims),
        "dataset": {
            "name": cfg.dataset,
            "split": cfg.split if cfg.dataset else None,
            "data": cfg.data,
            "data_file": cfg.data_file,
        },
        "arrays": {
            s.path: {
                "shape": list(s.shape),
                "chunks": list(s.chunks),
                "shards": list(s.shards),
                "dtype": cfg.store_dtype,
            }
            for s in plan.specs
        },
        "examples": [
            {"id": e.id, "index": e.index, "lengths": e.lengths, "truncated": e.truncated}
            for e in plan.examples
        ],
        "tokens_rows": token_rows,
        "choice_letter_ids": plan.letters,
    }
