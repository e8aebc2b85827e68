"""The one way to read input files: JSONL, JSON lists, CSV and TSV, with errors that name file:line.

`read_records` gives generic dict records; `read_prompt_pairs` gives prompt/reference pairs with
stable ids, accepting the field names the seed repos used (`prompt`/`question`/`input`,
`reference`/`completion`/`target`/`answer`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ucli.errors import BadInput, HallucError, invalid

PROMPT_FIELDS = ("prompt", "question", "input", "query")
REFERENCE_FIELDS = ("reference", "completion", "target", "answer")
ALIAS_FIELDS = ("aliases", "answers")
SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}


# Verdict words, case-insensitive: the one reading of a `correct` value everywhere (parse_verdict).
VERDICT_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def parse_verdict(value: Any, loc: str, name: str = "correct") -> bool:
    """A verdict from a data file: true/false, 1/0 (numbers or text, `1.0` too), yes/no in any case.
    Anything else is refused with its place: `bool("0")` is True, and a verdict read that way
    silently turns every later report around."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in VERDICT_WORDS:
            return VERDICT_WORDS[word]
        try:
            number = float(word)
        except ValueError:
            number = None
        if number in (0.0, 1.0):
            return bool(number)
    raise BadInput(f"{loc}: field '{name}': expected a verdict (1/0, true/false or yes/no), found {value!r}")


@dataclass(frozen=True)
class Record:
    path: Path
    line: int | None  # 1-based line (JSONL/CSV/TSV) or row (Parquet); None for items of a JSON list
    index: int  # 0-based position among the records
    data: dict[str, Any]

    @property
    def loc(self) -> str:
        if self.path.suffix.lower() == ".parquet":
            return f"{self.path}: row {self.index + 1}"
        return f"{self.path}:{self.line}" if self.line is not None else f"{self.path}: item {self.index}"


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise BadInput(f"{path}: file is empty")
    return text


def file_format(path: Path) -> str:
    """The format of an input data file, by its suffix, once it is known to be a file."""
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    if path.is_dir():
        raise BadInput(f"{path}: is a folder, expected a data file ({', '.join(SUFFIXES)})")
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise BadInput(f"{path}: unknown data format '{path.suffix}' (expected one of {', '.join(SUFFIXES)})")
    return fmt


def _jsonl(path: Path, text: str) -> list[Record]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            msg = getattr(exc, "msg", str(exc))
            col = getattr(exc, "colno", None)
            raise BadInput(f"{path}:{n}: invalid JSON ({msg}{f' at column {col}' if col else ''})") from None
        if not isinstance(obj, dict):
            raise BadInput(f"{path}:{n}: expected a JSON object, found {type(obj).__name__}")
        out.append(Record(path, n, len(out), obj))
    return out


def _json(path: Path, text: str) -> list[Record]:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    if isinstance(obj, dict):  # {"data": [...]} / {"samples": [...]}: a list under one well-known key
        lists = [
            v
            for k, v in obj.items()
            if k in ("data", "samples", "records", "prompts") and isinstance(v, list)
        ]
        if len(lists) != 1:
            raise BadInput(
                f"{path}: expected a JSON list of objects (or one under 'data'/'samples'/'prompts')"
            )
        obj = lists[0]
    if not isinstance(obj, list):
        raise BadInput(f"{path}: expected a JSON list of objects, found {type(obj).__name__}")
    out = []
    for i, item in enumerate(obj):
        if not isinstance(item, dict):
            raise BadInput(f"{path}: item {i}: expected a JSON object, found {type(item).__name__}")
        out.append(Record(path, None, i, item))
    return out


def _csv(path: Path, text: str, delimiter: str) -> list[Record]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = [(n, row) for n, row in enumerate(reader, start=1) if any(cell.strip() for cell in row)]
    header = [h.strip() for h in rows[0][1]]
    out = []
    for n, row in rows[1:]:
        if len(row) != len(header):
            raise BadInput(
                f"{path}:{n}: expected {len(header)} columns ({', '.join(header)}), found {len(row)}"
            )
        out.append(Record(path, n, len(out), dict(zip(header, row, strict=True))))
    return out


CELL_KINDS = {"bool": lambda c: c.strip().lower() == "true", "int": int, "float": float, "json": json.loads}


def _typed(records: list[Record], kinds: dict[str, str]) -> list[Record]:
    """A CSV or Parquet table halluc wrote, typed back by the column kinds its sidecar records
    (`ucli.artifacts.column_kinds`): text cells of other kinds are parsed (an empty one is None)."""
    for r in records:
        for name, kind in kinds.items():
            cell = r.data.get(name)
            if kind in CELL_KINDS and isinstance(cell, str):
                try:
                    r.data[name] = CELL_KINDS[kind](cell) if cell.strip() else None
                except ValueError:
                    raise BadInput(f"{r.loc}: field '{name}': expected {kind}, found {cell!r}") from None
    return records


def _json_columns(records: list[Record]) -> list[Record]:
    """Nested values back from a CSV table without its sidecar: a column whose every filled cell is
    a JSON object, or every one a JSON array, holds what `ucli.artifacts.write_csv` wrote as JSON
    text (`uq`, `token_ids`); any other column stays text. Empty cells become None in such a column."""
    for name in records[0].data if records else []:
        cells = [r.data[name].strip() for r in records if r.data[name].strip()]
        for opening, kind in (("{", dict), ("[", list)):
            if not cells or not all(c.startswith(opening) for c in cells):
                continue
            try:
                values = [json.loads(c) for c in cells]
            except ValueError:
                break
            if all(isinstance(v, kind) for v in values):
                decoded = iter(values)
                for r in records:
                    r.data[name] = next(decoded) if r.data[name].strip() else None
            break
    return records


def _parquet(path: Path) -> list[Record]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise BadInput(f"{path}: not a readable Parquet file ({exc})") from None
    return [Record(path, i + 1, i, row) for i, row in enumerate(rows)]


def read_records(path: str | os.PathLike, schema: str | None = None) -> list[Record]:
    """Dict records from a JSONL, JSON, CSV, TSV (header row) or Parquet file. When halluc wrote
    it, its provenance sidecar is checked on the way (`ucli.artifacts.check_table`): a sidecar of
    another kind than `schema` is refused, a table changed since is read with a warning."""
    from ucli.artifacts import check_table

    p = Path(path)
    fmt = file_format(p)
    sidecar = check_table(p, schema)
    kinds = (sidecar or {}).get("columns")
    if fmt == "parquet":
        records = _typed(_parquet(p), kinds) if kinds else _parquet(p)
        if not records:
            raise BadInput(f"{p}: no records")
        return records
    text = _read_text(p)
    if fmt == "jsonl":
        records = _jsonl(p, text)
    elif fmt == "json":
        records = _json(p, text)
    else:
        records = _csv(p, text, "\t" if fmt == "tsv" else ",")
        records = _typed(records, kinds) if kinds else _json_columns(records)
    if not records:
        raise BadInput(f"{p}: no records")
    return records


M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def validate(model: type[M], data: dict[str, Any], loc: str, names: dict[str, str] | None = None) -> M:
    """Validate one record with pydantic; the first problem becomes one `loc: field 'x': ...` line.

    `names` maps a model field back to the name the user wrote (e.g. `prompt` -> `question`).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, loc, style="field", names=names) from None


class PromptPair(BaseModel):
    """A prompt and the reference answer it is judged against."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    reference: str | None  # None only when read with require_reference=False
    aliases: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", "reference", mode="before")
    @classmethod
    def _numbers_as_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    @field_validator("aliases", mode="before")
    @classmethod
    def _one_alias(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


def _pick(data: dict[str, Any], names: Sequence[str]) -> tuple[str | None, Any]:
    for name in names:
        if name in data:
            return name, data[name]
    return None, None


def _tsv_pairs(path: Path, text: str) -> list[Record]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise BadInput(f"{path}:{n}: expected 'prompt<TAB>reference', found no tab")
        prompt, reference = line.split("\t", 1)
        if (
            n == 1
            and prompt.strip().lower() in PROMPT_FIELDS
            and reference.strip().lower() in REFERENCE_FIELDS
        ):
            continue  # a header row
        out.append(Record(path, n, len(out), {"prompt": prompt, "reference": reference}))
    return out


def select(items: list[T], limit: int | None, seed: int | None) -> list[T]:
    """The one `--limit` rule of every command: without a limit, every item in file order; with
    `--limit N`, the first N after a shuffle with `--seed` (a file sorted by topic still gives a
    representative N). The same N and seed pick the same items, in the same order, everywhere."""
    import random

    chosen = list(items)
    if limit is None:
        return chosen
    if seed is not None:
        random.Random(seed).shuffle(chosen)
    return chosen[:limit]


def _sample_id(rec: Any, prompt: Any, reference: Any, seen: dict[str, str]) -> str:
    """The record's `id` (unique), else a hash of prompt and reference (repeats get `#2`, `#3`)."""
    explicit = rec.data.get("id")
    if explicit is not None:
        if str(explicit) in seen:
            raise BadInput(
                f"{rec.loc}: field 'id': duplicate id '{explicit}' (first at {seen[str(explicit)]})"
            )
        return str(explicit)
    digest = hashlib.sha256(f"{prompt}\x1f{reference}".encode()).hexdigest()[:12]
    sample_id, k = digest, 2
    while sample_id in seen:
        sample_id, k = f"{digest}#{k}", k + 1
    return sample_id


def read_prompt_pairs(path: str | os.PathLike, require_reference: bool = True) -> list[PromptPair]:
    """Prompt/reference pairs from JSONL, JSON, CSV or TSV (`prompt<TAB>reference`, no header needed).

    With `require_reference=False`, records without a reference are kept (reference None): prompts
    to generate from, which a scorer must refuse.

    Ids: the record's `id` when given (must be unique), else a hash of prompt and reference, so
    the same sample keeps its id when the file is reordered (repeats get `#2`, `#3`).
    """
    p = Path(path)
    records = _tsv_pairs(p, _read_text(p)) if file_format(p) == "tsv" else read_records(p)
    pairs: list[PromptPair] = []
    seen: dict[str, str] = {}
    for rec in records:
        prompt_key, prompt = _pick(rec.data, PROMPT_FIELDS)
        ref_key, reference = _pick(rec.data, REFERENCE_FIELDS)
        if prompt_key is None:
            raise BadInput(
                f"{rec.loc}: field 'prompt' is missing (expected one of: {', '.join(PROMPT_FIELDS)})"
            )
        if ref_key is None and require_reference:
            raise BadInput(
                f"{rec.loc}: field 'reference' is missing (expected one of: {', '.join(REFERENCE_FIELDS)})"
            )
        alias_key, aliases = _pick(rec.data, ALIAS_FIELDS)
        used = {prompt_key, ref_key, alias_key, "id", "metadata"}
        meta = dict(rec.data.get("metadata") or {})
        meta.update({k: v for k, v in rec.data.items() if k not in used})
        sample_id = _sample_id(rec, prompt, reference, seen)
        data = {"id": sample_id, "prompt": prompt, "reference": reference, "metadata": meta}
        if aliases is not None:
            data["aliases"] = aliases
        names = {"prompt": prompt_key, "reference": ref_key or "reference", "aliases": alias_key or "aliases"}
        pair = validate(PromptPair, data, rec.loc, names)
        seen[pair.id] = rec.loc
        pairs.append(pair)
    if not pairs:
        raise BadInput(f"{p}: no records")
    return pairs


def load_rows(
    dataset: str, config: str | None, split: str, data_file: str | Path | None, revision: str | None = None
) -> list[dict[str, Any]]:
    """Rows of a hub data set (`datasets.load_dataset`, at `revision` if given), or of a local
    `data_file` in the hub's format (JSONL, JSON, CSV or Parquet), which wins: offline runs and tests use it."""
    if data_file is not None:
        return [r.data for r in read_records(data_file)]
    try:
        import datasets
    except ImportError:
        raise HallucError(
            f"loading {dataset} from the hub needs the datasets package: pip install 'halluc[hub]' "
            "(or pass --data-file with a local copy)"
        ) from None
    try:
        at = {"revision": revision} if revision else {}
        return list(datasets.load_dataset(dataset, config, split=split, **at))
    except Exception as exc:  # offline, missing split, renamed data set: all one actionable message
        raise HallucError(
            f"could not load {dataset} ({config or 'default'}, {split}) from the hub: {type(exc).__name__}: {exc}; "
            "pass --data-file with a local copy"
        ) from None


@dataclass(frozen=True)
class MultipleChoiceItem:
    """A question, its answer choices, and the index of the right one (None: unlabelled, e.g. a test split)."""

    id: str
    question: str
    choices: list[str]
    label: int | None
    labels: list[str]  # the choice letters as the data names them (A-E in CommonsenseQA)


def parse_multiple_choice(
    data: dict[str, Any], loc: str, index: int, require_label: bool = True
) -> MultipleChoiceItem:
    """One CommonsenseQA-format record: as on the hub (`question`, `choices {label, text}`, `answerKey`)
    or as in the original JSONL (`question {stem, choices [{label, text}]}`, `answerKey`)."""
    q = data.get("question")
    if isinstance(q, dict):
        stem, choices = q.get("stem"), q.get("choices") or []
        labels, texts = [c.get("label") for c in choices], [c.get("text") for c in choices]
    else:
        stem, ch = q, data.get("choices") or {}
        labels, texts = list(ch.get("label") or []), list(ch.get("text") or [])
    if not stem or not texts or len(labels) != len(texts):
        raise BadInput(f"{loc}: expected a question with choices (labels and texts)")
    key = data.get("answerKey")
    if key in (None, "") and not require_label:
        label = None
    elif key not in labels:
        raise BadInput(f"{loc}: field 'answerKey': {key!r} is not one of the labels {labels}")
    else:
        label = labels.index(key)
    return MultipleChoiceItem(str(data.get("id", index)), stem, texts, label, [str(x) for x in labels])


def same_width(items: list[MultipleChoiceItem], source: str) -> list[MultipleChoiceItem]:
    """Multiple-choice models score a fixed number of choices: refuse a mix."""
    widths = {len(i.choices) for i in items}
    if len(widths) > 1:
        raise BadInput(f"{source}: every question needs the same number of choices (found {sorted(widths)})")
    return items


def read_multiple_choice(path: str | os.PathLike, require_label: bool = True) -> list[MultipleChoiceItem]:
    """CommonsenseQA-format multiple-choice questions from any file `read_records` reads."""
    items = [parse_multiple_choice(r.data, r.loc, r.index, require_label) for r in read_records(path)]
    return same_width(items, str(path))
