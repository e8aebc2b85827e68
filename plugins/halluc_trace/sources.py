"""What a trace run reads: plain texts (next-token mode) or multiple-choice questions (prompt and
encoder modes), from a local file or one of the hub data sets the original tool supported.

Each hub loader is real (`datasets.load_dataset` with the hub's name and config) and also reads a
local copy in the same shape (`--data-file`), which is how tests and offline runs use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ucli.data import (
    MultipleChoiceItem,
    parse_multiple_choice,
    read_multiple_choice,
    read_records,
    same_width,
)
from ucli.errors import BadInput

TEXT_FIELDS = ("text", "sentence", "content", "prompt", "question")
CHOICE_LETTERS_PROMPT = "Answer:"


@dataclass(frozen=True)
class HubSet:
    repo: str
    config: str | None
    text_field: str  # the field next-token mode reads
    id_field: str | None
    multiple_choice: bool = False


HUB_SETS: dict[str, HubSet] = {
    "wikitext2": HubSet("Salesforce/wikitext", "wikitext-2-raw-v1", "text", None),
    "wikitext103": HubSet("Salesforce/wikitext", "wikitext-103-raw-v1", "text", None),
    "ud_ewt": HubSet("universal-dependencies/universal_dependencies", "en_ewt", "text", "idx"),
    "go_emotions": HubSet("google-research-datasets/go_emotions", "simplified", "text", "id"),
    # next-token mode reads the question; prompt and encoder modes read the whole item
    "csqa": HubSet("tau/commonsense_qa", None, "question", "id", multiple_choice=True),
}


@dataclass(frozen=True)
class TextExample:
    id: str
    text: str


def _check_ids(ids: list[str], source: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise BadInput(f"{source}: duplicate example id '{i}'")
        seen.add(i)


def _text_of(data: dict[str, Any], loc: str, fields: tuple[str, ...]) -> str | None:
    for f in fields:
        if f in data:
            value = data[f]
            if isinstance(value, dict):  # a nested CommonsenseQA question
                value = value.get("stem")
            if not isinstance(value, str):
                raise BadInput(f"{loc}: field '{f}': expected text, found {type(value).__name__}")
            return value
    raise BadInput(f"{loc}: no text field (expected one of: {', '.join(fields)})")


def _texts_from_rows(rows: list[tuple[str, dict[str, Any]]], fields: tuple[str, ...], id_field: str | None,
                     prefix: str, first: int = 0) -> list[TextExample]:  # fmt: skip
    """Blank texts are skipped (wikitext is mostly blank lines) but keep their row number in the id
    (counted from `first`: 1 for a file's lines, 0 for a hub split's rows)."""
    out = []
    for n, (loc, data) in enumerate(rows, start=first):
        text = _text_of(data, loc, fields)
        if not text or not text.strip():
            continue
        ident = data.get(id_field) if id_field else None
        out.append(TextExample(str(ident) if ident not in (None, "") else f"{prefix}{n}", text.strip()))
    return out


def read_texts(path: str | Path) -> list[TextExample]:
    """A `.txt` file (one example per non-blank line) or records with a text field (`text`,
    `sentence`, `content`, `prompt` or `question`) and an optional `id`."""
    p = Path(path)
    if p.suffix.lower() == ".txt":
        if not p.is_file():
            raise BadInput(f"{p}: no such file")
        lines = p.read_text(encoding="utf-8").splitlines()
        rows = [(f"{p}:{n + 1}", {"text": line}) for n, line in enumerate(lines)]
        examples = _texts_from_rows(rows, ("text",), None, "line-", first=1)
    else:
        records = read_records(p)
        examples = _texts_from_rows([(r.loc, r.data) for r in records], TEXT_FIELDS, "id", "row-", first=1)
    if not examples:
        raise BadInput(f"{p}: no non-blank texts")
    _check_ids([e.id for e in examples], str(p))
    return examples


def _hub_rows(name: str, split: str, data_file: str | Path | None) -> tuple[HubSet, list[dict[str, Any]]]:
    from ucli.data import load_rows

    if name not in HUB_SETS:
        raise BadInput(
            f"unknown --dataset '{name}' (expected one of: {', '.join(HUB_SETS)}), or pass --data FILE"
        )
    hub = HUB_SETS[name]
    return hub, load_rows(hub.repo, hub.config, split, data_file)


def load_texts(dataset: str | None, data: str | Path | None, split: str,
               data_file: str | Path | None = None) -> list[TextExample]:  # fmt: skip
    """Texts for next-token mode: `--data FILE` or a hub data set (read from `data_file` when given)."""
    if data is not None:
        return read_texts(data)
    assert dataset is not None
    hub, rows = _hub_rows(dataset, split, data_file)
    where = str(data_file) if data_file else f"{hub.repo} ({split})"
    located = [(f"{where}: row {i + 1}", r) for i, r in enumerate(rows)]
    examples = _texts_from_rows(located, (hub.text_field,), hub.id_field, f"{dataset}-{split}-")
    if not examples:
        raise BadInput(f"{where}: no non-blank texts in field '{hub.text_field}'")
    _check_ids([e.id for e in examples], where)
    return examples


def load_questions(dataset: str | None, data: str | Path | None, split: str,
                   data_file: str | Path | None = None) -> list[MultipleChoiceItem]:  # fmt: skip
    """Multiple-choice questions in CommonsenseQA's format; unlabelled items (a test split) are kept
    with label None."""
    if data is not None:
        items = read_multiple_choice(data, require_label=False)
        where = str(data)
    else:
        assert dataset is not None
        hub, rows = _hub_rows(dataset, split, data_file)
        if not hub.multiple_choice:
            raise BadInput(
                f"--dataset {dataset} has no multiple-choice questions (use csqa, or --mode nexttok)"
            )
        where = str(data_file) if data_file else f"{hub.repo} ({split})"
        items = [
            parse_multiple_choice(r, f"{where}: row {i + 1}", i, require_label=False)
            for i, r in enumerate(rows)
        ]
        same_width(items, where)
    if not items:
        raise BadInput(f"{where}: no questions")
    _check_ids([i.id for i in items], where)
    return items


def format_prompt(item: MultipleChoiceItem) -> str:
    """The CommonsenseQA prompt a decoder answers with the next token: question, lettered choices, 'Answer:'."""
    lines = [f"Question: {item.question}"]
    lines += [f"{label}. {text}" for label, text in zip(item.labels, item.choices, strict=True)]
    lines.append(CHOICE_LETTERS_PROMPT)
    return "\n".join(lines)
