"""Reading a batch's table: a list of dicts, a ``.csv`` or ``.jsonl`` file, or a pandas DataFrame."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..core import errors


class BatchInputError(errors.InvalidRequestError):
    """The table or the batch's options cannot run as given; raised before anything is sent."""

    hint = "Nothing was sent"


def load_rows(source: Any) -> list[dict[str, Any]]:
    """A list of dicts, a ``.csv`` or ``.jsonl`` file, or a pandas DataFrame → rows (plain dicts)."""
    if hasattr(source, "to_dict") and hasattr(source, "columns"):
        return [dict(row) for row in source.to_dict("records")]
    if isinstance(source, (str, os.PathLike)):
        return _read_file(Path(source).expanduser())
    if isinstance(source, Iterable) and not isinstance(source, (bytes, Mapping)):
        rows = list(source)
        for number, row in enumerate(rows, 1):
            if not isinstance(row, Mapping):
                raise BatchInputError(f"row {number} is a {type(row).__name__}, not a dict of columns")
        if not rows:
            raise BatchInputError("the table has no rows")
        return [dict(row) for row in rows]
    raise BatchInputError(f"rows must be a list of dicts, a .csv or .jsonl file, or a DataFrame, "
                          f"not {type(source).__name__}")


def _read_file(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() not in (".jsonl", ".ndjson", ".csv", ".tsv"):
        raise BatchInputError(f"{path.name}: give a .csv, .tsv or .jsonl file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BatchInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BatchInputError(f"{path} is not UTF-8 text") from None
    rows: list[dict[str, Any]] = []
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BatchInputError(f"{path.name} line {number} is not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise BatchInputError(f"{path.name} line {number} is not a JSON object")
            rows.append(row)
    else:
        reader = csv.DictReader(io.StringIO(text), delimiter=_delimiter(path, text))
        if not reader.fieldnames:
            raise BatchInputError(f"{path.name} is empty (no header row)")
        try:
            for number, row in enumerate(reader, 2):
                if None in row:
                    raise BatchInputError(f"{path.name} line {number} has more fields than the header")
                rows.append({key: value for key, value in row.items()})
        except csv.Error as exc:
            raise BatchInputError(f"{path.name} is not valid CSV ({exc})") from None
    if not rows:
        raise BatchInputError(f"{path.name} has no rows")
    return rows


def _delimiter(path: Path, text: str) -> str:
    """A ``.tsv``'s tab; a ``.csv``'s comma, or the semicolon (or tab) its header uses instead when it
    has no comma: spreadsheets in many locales write ``;``-separated CSV."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    header = text.split("\n", 1)[0]
    if "," not in header:
        for other in (";", "\t"):
            if other in header:
                return other
    return ","
