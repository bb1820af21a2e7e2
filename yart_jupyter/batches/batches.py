"""Batch runs from a table: every row validated first, then generated within the quotas into files and a
``metadata.jsonl`` (the Hugging Face ``imagefolder`` layout); resumable, and never paid twice.

A row's seed, unless given, is derived from the row itself (its values and its prompt), so running
the same batch again asks for the same pictures: rows already made come from the store or their
files, rows still on the server are collected, and only rows never sent are started. Nothing here
knows of IPython; the notebook (:func:`yart_jupyter.batch`) and the ``yart`` command are faces.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import string
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..core import errors
from ..core.config import Settings
from ..core.request import RANDOM_SEEDS, GenerationRequest
from ..core.status import BatchStatus
from ..engine import Batch, Cached, Intent, Item, prepare, run_batch, unfinished_item
from ..media.image import GeneratedImage, write_atomic
from ..media.outputs import unwritable
from ..store import Record, Store, request_key

#: The file of a dataset folder that ``datasets.load_dataset("imagefolder", data_dir=...)`` reads.
METADATA = "metadata.jsonl"
#: What a finished batch's row can be.
ROW_STATES = ("done", "cached", "earlier", "failed", "lost", "invalid", "quota", "interrupted")
#: How many invalid rows an error names before it says "and N more".
SHOWN_ROWS = 8
DAY = 86_400.0


class BatchInputError(errors.InvalidRequestError):
    """The table or the batch's options cannot run as given; raised before anything is sent."""

    hint = "Nothing was sent"


# -- reading the table ------------------------------------------------------------------------

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
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
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


# -- planning ---------------------------------------------------------------------------------

@dataclass
class Row:
    """One row of a batch: its number (1 is the first data row), its columns, its request and file."""

    number: int
    values: dict[str, Any]
    request: GenerationRequest | None = None
    path: Path | None = None
    status: str = "queued"
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
    columns = list(dict.fromkeys(key for row in rows for key in row))
    extra = {"prompt": {"n"}, "seed": set(), "aspect": set(), "out": {"n", "seed"}}
    for option, template in (("prompt", prompt), ("seed", seed), ("aspect", aspect), ("out", out)):
        if isinstance(template, str):
            for name in _fields(template):
                column = name.split(".")[0].split("[")[0]
                if column not in set(columns) | extra[option]:
                    raise BatchInputError(f"the {option} template names {{{column}}}, which is not a column of the "
                                          f"table (columns: {', '.join(columns) or 'none'})")
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
        shown = "; ".join(f"row {row.number}: {row.error}" for row in invalid[:SHOWN_ROWS])
        more = f"; and {len(invalid) - SHOWN_ROWS} more" if len(invalid) > SHOWN_ROWS else ""
        raise BatchInputError(f"{len(invalid)} of {len(rows)} rows are invalid ({shown}{more}); fix them or "
                              "pass skip_invalid=True")
    root = dataset_root(out) if out is not None else None
    if root is not None:
        _check_writable(root)
    return TablePlan(planned, out, root)


def _check_writable(root: Path) -> None:
    problem = unwritable(root)
    if problem:
        raise BatchInputError(f"the output folder {root} cannot be written ({problem})")


# -- the dataset's metadata -------------------------------------------------------------------

#: The generation's part of a metadata line (a row's own column of the same name is kept as it is).
GENERATED = ("prompt", "seed", "aspect", "mime_type", "model_uri", "model_version", "operation_id", "duration")


def metadata_line(row: Row, image: GeneratedImage, root: Path) -> dict[str, Any]:
    """A ``metadata.jsonl`` line: ``file_name`` (relative to the folder), the row's columns, the record."""
    assert row.path is not None
    line: dict[str, Any] = {"file_name": row.path.resolve().relative_to(root.resolve()).as_posix()}
    line.update({key: value for key, value in row.values.items() if key != "file_name"})
    record = {"prompt": image.prompt, "seed": image.seed, "aspect": str(image.aspect) if image.aspect else None,
              "mime_type": image.mime_type, "model_uri": image.model_uri, "model_version": image.model_version,
              "operation_id": image.operation_id,
              "duration": round(image.duration, 3) if image.duration is not None else None}
    for key, value in record.items():
        line[key if key not in line else f"generated_{key}"] = value
    line["row"] = row.number
    return line


class Metadata:
    """``metadata.jsonl`` of a dataset folder: lines appended as rows finish (a crash keeps what was
    written), compacted at the end of each run (one line per file, the newest)."""

    def __init__(self, root: Path) -> None:
        self.path = root / METADATA
        self.lines: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for text in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    line = json.loads(text)
                except ValueError:
                    continue  # a line cut short by a crash: its row is made again from the store
                if isinstance(line, dict) and isinstance(line.get("file_name"), str):
                    self.lines[line["file_name"]] = line

    def has(self, file_name: str, request: GenerationRequest) -> bool:
        """Whether an earlier run wrote this file for exactly this request."""
        line = self.lines.get(file_name)
        return line is not None and (line.get("generated_seed", line.get("seed")) == request.seed
                               and line.get("generated_prompt", line.get("prompt")) == request.prompt)

    def append(self, line: dict[str, Any]) -> None:
        self.lines[line["file_name"]] = line
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")

    def compact(self) -> None:
        """Rewrite the file with one line per picture, in row order (atomically)."""
        if self.lines:
            ordered = sorted(self.lines.values(), key=lambda line: (str(line.get("row", "")).zfill(12),
                                                                    line["file_name"]))
            text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in ordered)
            write_atomic(self.path, text.encode("utf-8"))


# -- running ----------------------------------------------------------------------------------

@dataclass
class Budget:
    """The folder's daily generation quota as the store has seen it: starts in the last 24 hours."""

    limit: int
    used: int
    oldest: float | None
    exhausted: bool = False

    def take(self) -> bool:
        if self.exhausted or self.used >= self.limit:
            self.exhausted = True
            return False
        self.used += 1
        return True

    def frees_at(self) -> datetime:
        """When the next generation may start again: a day after the oldest start counted."""
        base = self.oldest if self.oldest is not None else time.time()
        return datetime.fromtimestamp(base + DAY, timezone.utc)


@dataclass
class BatchResult:
    """What a batch made: a row per table row (``.records()``, ``.to_pandas()``), and a summary."""

    rows: list[Row]
    root: Path | None = None
    quota_note: str | None = None
    elapsed: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    #: The execution count of the cell whose progress line became this table (None: not drawn yet).
    shown_in: int | None = None

    def records(self) -> list[dict[str, Any]]:
        return [row.record() for row in self.rows]

    def to_pandas(self) -> Any:
        """The results table as a DataFrame (pandas is optional: ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas (records() gives the same rows)") from None
        return pd.DataFrame(self.records())

    @property
    def left(self) -> int:
        """Rows not made yet (the quota stopped them, an interrupt, a failure): the next run's work."""
        return sum(row.status in ("quota", "interrupted", "failed", "lost", "queued") for row in self.rows)

    def summary(self) -> str:
        counts = {state: sum(row.status == state for row in self.rows) for state in ROW_STATES}
        words = {"done": "generated", "cached": "from the store", "earlier": "done in an earlier run",
                 "failed": "failed", "invalid": "invalid (skipped)", "quota": "left for the quota",
                 "interrupted": "interrupted", "lost": "sent with the answer lost (not re-sent)"}
        parts = [f"{n} {words[state]}" for state, n in counts.items() if n]
        text = f"{len(self.rows)} rows: " + ", ".join(parts) + f" in {self.elapsed:.0f} s"
        if self.root is not None:
            text += f"; dataset in {self.root}"
        return text + (f". {self.quota_note}" if self.quota_note else "")

    def _repr_html_(self) -> str:
        import html

        from ..present.display import table_html

        rows = [(r.number, r.status, r.request.seed if r.request else None,
                 (r.request.prompt if r.request else "")[:60], r.path, r.error) for r in self.rows[:50]]
        table = table_html(("row", "status", "seed", "prompt", "file", "error"), rows)
        more = f"<div>… and {len(self.rows) - 50} more rows (.records())</div>" if len(self.rows) > 50 else ""
        return (f'<div class="yart-batch-result" style="font:12px monospace"><div>{html.escape(self.summary())}</div>'
                f"{table}{more}</div>")

    def __repr__(self) -> str:
        return f"BatchResult({self.summary()})"

    def _ipython_display_(self) -> None:
        """The results table, unless the cell that ran the batch drew it already (its progress line
        became the table): the value as that cell's last line would draw it twice."""
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        if self.shown_in is not None and shell is not None and shell.execution_count == self.shown_in:
            return
        display({"text/html": self._repr_html_(), "text/plain": repr(self)}, raw=True)  # type: ignore[no-untyped-call]


async def run_table(
    client: Any, store: Store, settings: Settings, batch: TablePlan, status: BatchStatus, *,
    on_update: Callable[[BatchStatus], None] | None = None, notebook: str | None = None,
    concurrency: int | None = None, resend_lost: bool = False,
) -> BatchResult:
    """Generate every valid row not made yet, write its file and metadata line, and return the table.

    A row is skipped when an earlier run wrote its file for the same request; answered from the
    store when it has the picture; collected when its operation is still pending from an earlier
    run; and started only otherwise, while the daily quota lasts. An interrupt leaves every started
    operation pending in the store (the next run collects it).
    """
    began = time.monotonic()
    metadata = Metadata(batch.root) if batch.root is not None else None
    todo: list[tuple[Row, Item]] = []
    for row in batch.valid:
        assert row.request is not None
        if row.path is not None and row.path.exists():
            relative = row.path.resolve().relative_to(batch.root.resolve()).as_posix() if batch.root else ""
            if metadata is not None and metadata.has(relative, row.request):
                row.status = "earlier"
                status.cached += 1
                continue
            if isinstance(row.request, GenerationRequest) and _carries(row.path, row.request):
                todo.append((row, row.request))  # its metadata line was cut off: the store answers it
                continue
            row.status, row.error = "failed", f"{row.path} exists and was not made by this batch (never overwritten)"
            status.failed += 1
            continue
        todo.append((row, row.request))
    unfinished = store.find_unfinished([request for _, request in todo if isinstance(request, GenerationRequest)])
    kept: list[tuple[Row, Item]] = []
    for row, item in todo:
        record = unfinished.get(request_key(item)) if isinstance(item, GenerationRequest) else None
        if record is not None and record.answer_lost and not resend_lost:
            row.status = "lost"
            row.error = (f"sent, answer lost (intent {record.idempotency_key}; the Images API keeps nothing to "
                         "collect): resend_lost=True (yart ... --resend-lost) sends it again")
            status.failed += 1
            continue
        kept.append((row, _unfinished(unfinished, item, resend_lost) if isinstance(item, GenerationRequest) else item))
    todo = kept
    requests = [item for _, item in todo if isinstance(item, GenerationRequest)]
    prepared = iter(prepare(store, Batch(requests, notebook=notebook), status).items)
    items = [(row, next(prepared) if isinstance(item, GenerationRequest) else item) for row, item in todo]
    for _, item in items:
        if isinstance(item, Intent) and item.key not in status.keys:
            status.unsent += 1
            status.keys.append(item.key)
    count, oldest = store.starts_since(time.time() - DAY)
    budget = Budget(settings.generations_per_day, count, oldest)
    gate = asyncio.Semaphore(concurrency or max(8, settings.generations_per_minute))

    async def one(row: Row, item: Item) -> None:
        async with gate:
            if isinstance(item, Intent) and not budget.take():
                row.status = "quota"
                status.unsent -= 1
                store.settle_intent(item.key, "cancelled", "the daily quota ran out; run the batch again")
                return
            images, failures = await run_batch(client, [item], status=status, store=store, on_update=on_update,
                                               notebook=notebook)
            if failures:
                error = failures[0]
                row.status, row.error, row.operation_id = "failed", str(error), error.operation_id
                if isinstance(error, errors.QuotaExceededError):
                    budget.exhausted = True
                    row.status = "quota"
                return
            image = images[0]
            row.operation_id, row.model_version, row.duration = image.operation_id, image.model_version, image.duration
            row.status = "cached" if isinstance(item, Cached) or image.cached else "done"
            if row.path is not None:
                await asyncio.to_thread(_write, row, image, batch.root, metadata)

    tasks = [asyncio.ensure_future(one(row, item)) for row, item in items]
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for row, item in items:
            if row.status == "queued":
                row.status = "interrupted"
                if isinstance(item, Intent):
                    store.settle_intent(item.key, "cancelled", "interrupted before it was sent")
        raise
    finally:
        if metadata is not None:
            await asyncio.to_thread(metadata.compact)
    result = BatchResult(batch.rows, batch.root, elapsed=time.monotonic() - began)
    quota_rows = sum(row.status == "quota" for row in batch.rows)
    if quota_rows:
        frees = budget.frees_at().astimezone()
        result.quota_note = (f"The daily quota ({settings.generations_per_day:,} generations) ran out: "
                             f"{quota_rows} rows are left; it frees from {frees:%Y-%m-%d %H:%M} "
                             "(run the same batch again then: it continues where it stopped)")
    return result


def _unfinished(unfinished: Mapping[str, Record], request: GenerationRequest, resend_lost: bool = False) -> Item:
    """An earlier run's generation of this request still on its way (collected, or started again
    with its key); else the request itself."""
    record = unfinished.get(request_key(request))
    item = unfinished_item(record, resend_lost=resend_lost) if record is not None else None
    return item if item is not None else request


def _carries(path: Path, request: GenerationRequest) -> bool:
    """Whether the file at ``path`` embeds this request's recipe: an earlier run wrote it and was
    stopped before its metadata line (a kill between the two writes), so it is ours to complete."""
    from ..core.provenance import ProvenanceError, read_recipe

    try:
        recipe = read_recipe(path.read_bytes())
    except (OSError, ProvenanceError):
        return False
    messages = [(m.get("text"), m.get("weight")) for m in recipe["messages"] if isinstance(m, dict)]
    return (recipe.get("seed") == request.seed and recipe.get("model_uri") == request.model_uri
            and messages == [(m.text, m.weight) for m in request.messages])


def _write(row: Row, image: GeneratedImage, root: Path | None, metadata: Metadata | None) -> None:
    assert row.path is not None
    if not row.path.exists():
        image.save(row.path)
    if metadata is not None and root is not None:
        metadata.append(metadata_line(row, image, root))

