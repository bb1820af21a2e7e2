"""Planning a batch: every row's request and file built and validated before anything is sent."""

from __future__ import annotations

import hashlib
import json
import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..core import errors
from ..core.config import Settings
from ..core.request import RANDOM_SEEDS, GenerationRequest
from ..core.typos import closest
from ..media.image import extension_mismatch
from ..media.outputs import is_folder, unwritable
from .table import BatchInputError

#: What a row of a batch can be: planned, then one of the ends a run gives it.
RowState = Literal["queued", "done", "cached", "earlier", "failed", "lost", "invalid", "quota", "interrupted",
                   "stopped"]
#: How many invalid rows an error names before it says "and N more".
SHOWN_ROWS = 8


@dataclass
class Row:
    """One row of a batch: its number (1 is the first data row), its columns, its request and file."""

    number: int
    values: dict[str, Any]
    request: GenerationRequest | None = None
    path: Path | None = None
    status: RowState = "queued"
    error: str | None = None
    operation_id: str | None = None
    model_version: str | None = None
    duration: float | None = None

    def record(self) -> dict[str, Any]:
        """The row as the results table shows it."""
        request = self.request
        return {"row": self.number, "prompt": request.prompt if request else None,
                "seed": request.seed if request else None, "aspect": str(request.aspect) if request else None,
                "status": self.status, "error": self.error, "operation_id": self.operation_id,
                "model_version": self.model_version, "duration": self.duration,
                "file": str(self.path) if self.path else None}


def _fields(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise BatchInputError(f"{template!r} is not a valid template ({exc})") from None


def _fill(template: str, values: Mapping[str, Any], what: str) -> str:
    try:
        return template.format_map(values)
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise errors.RequestValidationError(what, template, f"cannot be filled in ({exc})") from None


def derived_seed(prompt: str, values: Mapping[str, Any]) -> int:
    """A row's seed when none is given: the same row always asks for the same picture (resumable),
    different rows for different ones."""
    canonical = json.dumps([prompt, sorted((str(k), str(v)) for k, v in values.items())], ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big") % RANDOM_SEEDS + 1


def dataset_root(out: str) -> Path:
    """The folder that holds a pattern's files: the part of the pattern before its first field."""
    fixed = out.split("{", 1)[0]
    head = Path(fixed).expanduser()
    return head if fixed.endswith(("/", os.sep)) else head.parent


@dataclass
class TablePlan:
    """A validated batch: its rows (invalid ones marked), and where its dataset lives."""

    rows: list[Row]
    out: str | None
    root: Path | None

    @property
    def valid(self) -> list[Row]:
        return [row for row in self.rows if row.status != "invalid"]


def plan_table(
    rows: Sequence[Mapping[str, Any]], settings: Settings, *, prompt: str, seed: int | str | None = None,
    aspect: str | None = None, mime_type: str | None = None, model_uri: str | None = None,
    out: str | None = None, skip_invalid: bool = False,
) -> TablePlan:
    """Build and validate every row's request and file before anything is sent; invalid rows are
    listed with their numbers (or marked and skipped with ``skip_invalid``)."""
    if not rows:
        raise BatchInputError("the table has no rows")
    if out is not None and is_folder(out):  # a folder: a file per row, named by its number
        out += "{n:05d}"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    extra = {"prompt": {"n"}, "seed": set(), "aspect": set(), "out": {"n", "seed"}}
    for option, template in (("prompt", prompt), ("seed", seed), ("aspect", aspect), ("out", out)):
        if isinstance(template, str):
            for name in _fields(template):
                column = name.split(".")[0].split("[")[0]
                if column not in set(columns) | extra[option]:
                    near = closest(column, columns)
                    meant = f"did you mean {{{near}}}? " if near else ""
                    raise BatchInputError(f"the {option} template names {{{column}}}, which is not a column of the "
                                          f"table ({meant}columns: {', '.join(columns) or 'none'})")
    if out is not None and not _fields(out) and len(rows) > 1:
        raise BatchInputError(f"out {out!r} names one file for {len(rows)} rows: add {{n}} or a column")
    seeded = settings.model(model_uri).spec.seeds  # a model without seeds: every row is a new picture
    planned: list[Row] = []
    invalid: list[Row] = []
    targets: dict[Path, int] = {}
    for number, values in enumerate(rows, 1):
        row = Row(number, dict(values))
        try:
            text = _fill(prompt, {**values, "n": number}, "prompt")
            chosen = (int(_fill(seed, values, "seed")) if isinstance(seed, str) and "{" in seed
                      else seed if seed is not None else derived_seed(text, values) if seeded else None)
            ratio = _fill(aspect, values, "aspect") if aspect else None
            row.request = settings.request(text, seed=chosen, aspect=ratio, mime_type=mime_type, model_uri=model_uri)
            if out is not None:
                target = Path(_fill(out, {**values, "n": number, "seed": row.request.seed}, "out")).expanduser()
                if target.suffix == "":
                    target = target.with_suffix(".png" if row.request.mime_type == "image/png" else ".jpg")
                mismatch = extension_mismatch(target, row.request.mime_type)
                if mismatch:
                    raise errors.RequestValidationError("out", out, mismatch)
                if target in targets:
                    raise errors.RequestValidationError(
                        "out", str(target), f"is also row {targets[target]}'s file: put a column or {{n}} in out")
                targets[target] = number
                row.path = target
        except (errors.RequestValidationError, ValueError) as exc:
            reason = exc.message if isinstance(exc, errors.YandexArtError) else str(exc)
            row.status, row.error = "invalid", reason
            invalid.append(row)
        planned.append(row)
    if invalid and not skip_invalid:
        reasons: dict[str, list[int]] = {}  # one mistake made on every row is said once
        for row in invalid:
            reasons.setdefault(row.error or "", []).append(row.number)
        shown = "; ".join(f"{rows_named(numbers)}: {reason}" for reason, numbers in list(reasons.items())[:SHOWN_ROWS])
        more = f"; and {len(reasons) - SHOWN_ROWS} more reasons" if len(reasons) > SHOWN_ROWS else ""
        raise BatchInputError(f"{len(invalid)} of {len(rows)} rows are invalid ({shown}{more}); fix them or skip "
                              "them (skip_invalid=True; yart batch --skip-invalid)")
    root = dataset_root(out) if out is not None else None
    if root is not None:
        _check_writable(root)
    return TablePlan(planned, out, root)


def rows_named(numbers: list[int]) -> str:
    """Row numbers for an error: "row 3", "rows 1, 2 and 5", "rows 1, 2, 3, 4, 5 and 45 more"."""
    if len(numbers) == 1:
        return f"row {numbers[0]}"
    if len(numbers) <= SHOWN_ROWS:
        return f"rows {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}"
    return f"rows {', '.join(map(str, numbers[:5]))} and {len(numbers) - 5} more"


def _check_writable(root: Path) -> None:
    problem = unwritable(root)
    if problem:
        raise BatchInputError(f"the output folder {root} cannot be written ({problem})")
