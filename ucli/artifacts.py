"""The one way to write results: atomically, with a provenance header, into run folders.

Every JSON artifact starts with a `provenance` block (schema name and version, halluc version,
UTC time, argv, model fingerprint, input hashes, seed, resolved config with secrets redacted).
`load_artifact` refuses an artifact of the wrong schema, a newer version, or another model.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import os
import secrets as _random
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ucli import __version__
from ucli.errors import BadInput
from ucli.fingerprint import ModelFingerprint
from ucli.paths import cache_dir
from ucli.secrets import redact, redact_argv


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it vanishes."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def strict_json(obj: Any) -> Any:
    """Strict JSON values: dataclasses to dicts, numpy scalars to Python numbers, NaN and infinities
    (an empty share, an unbounded theta) to None."""
    import dataclasses
    import math
    import numbers

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    if isinstance(obj, bool) or not isinstance(obj, numbers.Real):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    return float(obj) if math.isfinite(obj) else None


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(dumps(rec) + "\n")
    return Path(path)


def write_csv(
    path: str | os.PathLike, rows: Sequence[dict[str, Any]], fieldnames: Sequence[str] | None = None
) -> Path:
    """Rows as CSV; a nested value (a dict such as `uq`, a list such as `token_ids`) is one cell of
    JSON text, which `ucli.data` reads back as the value it was (a Python repr would not be)."""
    names = list(fieldnames or (rows[0].keys() if rows else []))
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=names)
        writer.writeheader()
        writer.writerows(map(flat_cells, rows))
    return Path(path)


def flat_cells(row: dict[str, Any]) -> dict[str, Any]:
    """A row whose nested values (dicts, lists) are JSON text: what a CSV cell, or a Parquet column
    of answers whose nested shapes differ, can hold."""
    return {k: dumps(v) if isinstance(v, dict | list | tuple) else v for k, v in row.items()}


def write_parquet(path: str | os.PathLike, rows: Sequence[dict[str, Any]], schema: Any = None) -> Path:
    """Rows as a Parquet table; pass a pyarrow `schema` when parts written separately must agree
    (an all-null column would otherwise get the null type)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), tmp)
    return Path(path)


# --- hashing ---------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so large weights are hashed once."""
    p = Path(path).resolve()
    st = p.stat()
    key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    index = cache_dir() / "hashes.json"
    try:
        known = json.loads(index.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    known[key] = digest.hexdigest()
    write_json(index, known)
    return known[key]


# --- provenance ------------------------------------------------------------------------------


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance(
    schema: str,
    version: int,
    *,
    model: ModelFingerprint | dict | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    seed: int | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if isinstance(model, ModelFingerprint):
        model = model.model_dump()
    return {
        "schema": schema,
        "schema_version": version,
        "halluc_version": __version__,
        "created_utc": utc_now(),
        "argv": redact_argv(["halluc", *sys.argv[1:]]),
        "model": model,
        "inputs": {str(p): sha256_file(p) for p in inputs},
        "seed": seed,
        "config": redact(config or {}),
    }


def write_artifact(
    path: str | os.PathLike, schema: str, version: int, payload: dict[str, Any], **prov: Any
) -> dict:
    """Write `{"provenance": {...}, **payload}` atomically and return the document."""
    doc = {"provenance": provenance(schema, version, **prov), **redact(payload, by_name=False)}
    write_json(path, doc)
    return doc


def load_artifact(
    path: str | os.PathLike,
    schema: str | None,
    *,
    max_version: int = 1,
    model: ModelFingerprint | None = None,
) -> dict[str, Any]:
    """Read a JSON artifact, refusing the wrong schema (None: any), a newer schema version or
    another model."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: no such artifact")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BadInput(f"{p}: not valid JSON ({exc})") from None
    prov = doc.get("provenance") if isinstance(doc, dict) else None
    if not isinstance(prov, dict) or "schema" not in prov:
        raise BadInput(f"{p}: not a halluc artifact (no provenance header)")
    if schema is not None and prov["schema"] != schema:
        raise BadInput(f"{p}: is a '{prov['schema']}' artifact, expected '{schema}'")
    if int(prov.get("schema_version", 0)) > max_version:
        raise BadInput(
            f"{p}: schema '{schema}' version {prov['schema_version']} is newer than this halluc reads "
            f"(<= {max_version}); upgrade halluc"
        )
    if model is not None:
        check_made_for(doc, p, model)
    return doc


def check_made_for(doc: dict[str, Any], path: str | os.PathLike, model: ModelFingerprint) -> None:
    """An artifact read before the model loaded (`load_artifact` without a model) was made for it."""
    recorded = doc["provenance"].get("model")
    if not recorded:
        raise BadInput(f"{path}: records no model, cannot check it was made for {model.name}")
    diffs = model.mismatches(recorded)
    if diffs:
        raise BadInput(
            f"{path}: made for model {recorded.get('name')!r}, not {model.name!r} ({'; '.join(diffs)})"
        )


# --- tables with a provenance sidecar --------------------------------------------------------

SIDECAR = ".meta.json"


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where a table's provenance lives: `scores.jsonl` -> `scores.jsonl.meta.json`."""
    p = Path(path)
    return p.with_name(p.name + SIDECAR)


def write_table(
    path: str | os.PathLike,
    rows: Sequence[dict[str, Any]],
    schema: str,
    version: int = 1,
    *,
    fieldnames: Sequence[str] | None = None,
    summary: dict[str, Any] | None = None,
    **prov: Any,
) -> Path:
    """Rows as CSV or Parquet by the suffix, else JSONL; then the sidecar: provenance, the row count,
    the table's sha256 (`summary` adds fields) and, for CSV and Parquet, each column's kind (nested
    values are stored as JSON text there). The sidecar is written last, so one that exists describes
    a whole table; `check_table` reads it back, and `ucli.data.read_records` types the table by it."""
    p = Path(path)
    rows = redact(list(rows), by_name=False)  # a secret echoed in an answer or an error stays out
    suffix = p.suffix.lower()
    body = {**(summary or {}), "table": p.name, "rows": len(rows)}
    if suffix in (".csv", ".parquet"):  # nested values as JSON text: `ucli.data` types them back
        body["columns"] = column_kinds(rows, fieldnames)
    if suffix == ".csv":
        write_csv(p, rows, fieldnames)
    elif suffix == ".parquet":
        write_parquet(p, [flat_cells(r) for r in rows])
    else:
        write_jsonl(p, rows)
    body["sha256"] = sha256_file(p)
    write_artifact(sidecar_path(p), schema, version, body, **prov)
    return p


def column_kinds(rows: Sequence[dict[str, Any]], fieldnames: Sequence[str] | None = None) -> dict[str, str]:
    """Each column's kind (bool, int, float, json or text; None values aside), which a CSV cell
    cannot carry: its sidecar records them so the table reads back as it was written."""
    names = list(fieldnames or (rows[0].keys() if rows else []))
    kinds = {}
    for name in names:
        values = [r.get(name) for r in rows if r.get(name) is not None]
        if not values:  # nothing but nulls: its empty cells read back as None
            kinds[name] = "json"
        elif all(isinstance(v, bool) for v in values):
            kinds[name] = "bool"
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            kinds[name] = "int"
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            kinds[name] = "float"
        elif all(isinstance(v, dict | list | tuple) for v in values):
            kinds[name] = "json"
        else:
            kinds[name] = "text"
    return kinds


def check_table(path: str | os.PathLike, schema: str | None = None) -> dict[str, Any] | None:
    """The provenance sidecar of a table halluc wrote (None for a table from elsewhere, which is
    read as it is). A sidecar of another kind than `schema` is refused; a table changed since it
    was written is read with a warning, since its provenance no longer vouches for it."""
    p = Path(path)
    side = sidecar_path(p)
    if not side.is_file():
        return None
    doc = load_artifact(side, schema)  # every table schema is at version 1
    if "sha256" in doc and p.is_file() and sha256_file(p) != doc["sha256"]:
        from ucli import console

        console.warn(f"{p}: changed since halluc wrote it ({side.name} records another sha256)")
    return doc


# --- run folders -----------------------------------------------------------------------------


def new_figure(**kwargs: Any) -> tuple[Any, Any]:
    """A matplotlib figure and axes on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(**kwargs)


def fit_titles(fig: Any) -> None:
    """Wrap every axes title and the figure's suptitle to the width they sit over, so that a long
    title (a model path, a benchmark and split) is never clipped at the canvas edge."""
    import textwrap

    def wrap(text_artist: Any, width_in: float) -> None:
        text = text_artist.get_text()
        chars = max(12, int(width_in * 72 / (0.6 * text_artist.get_fontsize())))
        if text and max(map(len, text.splitlines())) > chars:
            text_artist.set_text("\n".join(textwrap.fill(line, chars) for line in text.splitlines()))

    for ax in fig.axes:
        wrap(ax.title, ax.get_position().width * fig.get_figwidth())
    if getattr(fig, "_suptitle", None) is not None:
        wrap(fig._suptitle, fig.get_figwidth())


def write_figure(fig: Any, path: str | os.PathLike, fmt: str = "png", layout: bool = True) -> Path:
    """Lay out (titles wrapped to fit), save atomically and close a matplotlib figure. The saved
    canvas grows to hold every label (`bbox_inches="tight"`)."""
    import matplotlib.pyplot as plt

    fit_titles(fig)
    if layout:  # False: the caller laid the figure out itself (e.g. room kept for a key)
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return Path(path)


def run_id(kind: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{kind}-{_random.token_hex(2)}"


def check_output_file(
    path: str | os.PathLike | None, *, force: bool = False, option: str = "--output", resumable: bool = False
) -> Path | None:
    """The one rule of every output file, checked before any work: the path names no folder, no file
    stands where its folder goes, and a file already there is kept unless `force` (--force; the new
    one replaces it atomically when the work is done). `resumable`: the command also takes --resume.
    Returns the path (None for an output not asked for)."""
    if path is None:
        return None
    target = Path(path)
    if target.is_dir():
        raise BadInput(f"{target}: is a folder, expected a file to write ({option})")
    above = next((p for p in target.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise BadInput(f"{target}: {above} is a file, not a folder ({option})")
    if target.exists() and not force:
        also = ", --resume to continue an interrupted run" if resumable else ""
        raise BadInput(f"{target}: exists; pass --force to replace it{also}, or choose another {option}")
    return target


def require_fresh_dir(path: str | os.PathLike, resumable: bool = False) -> Path:
    """Refuse an output folder that holds anything (call it early, before expensive work);
    `resumable` commands say that --resume continues the run in it."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise BadInput(f"{target}: is a file, expected a folder to write into (--output)")
    if target.exists() and any(target.iterdir()):
        hint = (
            "pass --resume to continue the run in it, or choose another --output"
            if resumable
            else "choose another --output"
        )
        raise BadInput(f"{target}: output folder exists and is not empty; {hint}")
    return target


@contextmanager
def staged_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Build a folder beside `final` and rename it into place on success; on error remove it.

    `final` must not exist or be an empty folder, so nothing a user had is ever overwritten.
    """
    target = require_fresh_dir(final)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield stage
        os.chmod(stage, 0o777 & ~_umask())
        if target.exists():
            target.rmdir()
        os.replace(stage, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
