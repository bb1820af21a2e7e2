"""The ``yart`` commands that read or tidy the store (history, pending, compare, info, prune, store
copy): nothing is sent to the service."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..core import errors
from ..core.config import Settings
from .exits import OK

if TYPE_CHECKING:
    from ..store import Record


def history(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """My latest generations (or the team's), numbered as rerun, info and compare take them, aligned."""
    from ..present.records import filter_words, made_by, why
    from ..store import get_store

    store = get_store(settings.store_location)
    records = store.history(options.n, options.search, options.status, team=options.team)
    numbers = store.numbers(records)  # what `yart rerun #N` names, whatever the filter
    if options.json:
        for r in records:
            out.write(json.dumps(_as_json(r, numbers.get(r.operation_id)), ensure_ascii=False) + "\n")
        return OK
    rows = []
    for r in records:
        who = f"  ({made_by(r)})" if made_by(r) else ""
        who += f"  ✖ {why(r)}" if why(r) else ""
        rows.append([f"#{numbers[r.operation_id]}" if r.operation_id in numbers else "",
                     r.submitted_at.astimezone().strftime("%Y-%m-%d %H:%M"), r.status,
                     f"seed {r.seed}" if r.seed is not None else "no seed", r.aspect or "", r.operation_id,
                     f"{r.prompt[:60]}{who}"])
    if not rows:
        asked = filter_words(options.search, options.status)
        out.write(f"no generation matches {asked}\n" if asked else "no generations yet\n")
    widths = [max(len(row[i]) for row in rows) for i in range(6)] if rows else []
    for row in rows:  # aligned columns, the prompt last (it varies most)
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + f"  {row[6]}"
        out.write(line.rstrip() + "\n")
    return OK


def _as_json(record: Record, number: int | None) -> dict[str, Any]:
    """A record as ``yart history --json`` prints it: one JSON object a line, for scripts and jq."""
    def utc(moment: datetime | None) -> str | None:
        return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if moment else None

    return {
        "number": number, "operation_id": record.operation_id, "status": record.status, "prompt": record.prompt,
        "messages": [{"text": m.text, "weight": m.weight} for m in record.messages], "seed": record.seed,
        "aspect": record.aspect, "mime_type": record.mime_type, "model_uri": record.model_uri,
        "model_version": record.model_version or None, "submitted_at": utc(record.submitted_at),
        "finished_at": utc(record.finished_at), "duration": record.duration,
        "file": str(record.image_path) if record.image_path is not None and record.image_path.exists() else None,
        "error": record.error, "owner": record.owner,
    }


def compare(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """The pictures' parameters side by side, aligned, and what differs from the first."""
    from ..experiments.comparison import CompareError, compare
    from ..store import get_store

    if len(options.sources) < 2:
        raise errors.InvalidRequestError("yart compare needs at least two pictures (operation ids, #N history "
                                         "entries or image files)")
    try:
        lines = compare(*options.sources, store=get_store(settings.store_location)).text().splitlines()
    except CompareError as exc:  # a side that names nothing: the input, as with exit code 2
        raise errors.InvalidRequestError(f"yart compare: {exc}") from None
    rows = [line.split("\t") for line in lines[:-1]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:  # aligned columns, the last left as long as it is
        out.write(("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) +
                   f"  {row[-1]}").rstrip() + "\n")
    out.write(lines[-1] + "\n")
    return OK


def pending(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """What was started and never collected, or asked for and never sent, and how to finish it."""
    from ..present.records import made_by, pending_state
    from ..store import get_store

    store = get_store(settings.store_location)
    records = store.pending(team=options.team) + store.unsent(team=options.team)
    for r in records:
        out.write(f"{r.operation_id if r.status == 'pending' else '(no id yet)':24}  {r.prompt[:50]:50}  "
                  f"{made_by(r) + ': collect by id' if made_by(r) else pending_state(r)}\n")
    if records:
        out.write("Collect or finish them with: yart resume --all\n")
    else:
        out.write("nothing pending\n")
    return OK


def store_copy(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """One store's records, sweeps and pictures copied into another (idempotent), with a progress bar."""
    from ..store import get_store
    from ..store.backend import is_team_location
    from ..store.copy import copy_store
    from ..store.store import DB_FILE

    if not is_team_location(options.source) and not (Path(options.source).expanduser() / DB_FILE).is_file():
        raise errors.ConfigurationError(  # opening it would make an empty store there and copy nothing
            f"{options.source} holds no store (no {DB_FILE} in it): name the folder a store lives in "
            "(YANDEXART_HOME) or a team's postgresql:// URL. Nothing was copied")
    source, destination = get_store(options.source), get_store(options.destination)
    if source is destination:  # one store, named twice (the registry keeps one per location)
        raise errors.ConfigurationError(f"{options.source} and {options.destination} are the same store. Nothing "
                                        "was copied")

    def tell(done: int, total: int) -> None:  # a bar rewritten in place, ended when the copy is
        filled = 30 * done // max(1, total)
        sys.stderr.write(f"\rcopying [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} records"
                         f"{chr(10) if done == total else ''}")
        sys.stderr.flush()

    result = copy_store(source, destination, tell)
    out.write(f"{source.location} -> {destination.location}: {result.text()}\n")
    return OK


def prune(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """Old records and pictures deleted, pending ones kept; nothing without a limit."""
    from ..store import get_store
    from ..store.files import prune_limits, pruned_line

    if options.older_than is None and options.max_size is None:
        raise errors.InvalidRequestError("give --older-than DAYS and/or --max-size MB (nothing was deleted)")
    older_than, max_bytes = prune_limits(options.older_than, options.max_size, ("--older-than", "--max-size"))
    removed, freed = get_store(settings.store_location).prune(older_than=older_than, max_bytes=max_bytes)
    out.write(pruned_line(removed, freed) + "\n")
    return OK


def info(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """The recipe of a file (or of every picture in a notebook, or of a stored generation) and its cell."""
    from ..core.provenance import ProvenanceError, cell_text, info, summary
    from ..experiments.rerun import CLI, RerunError, find_stored, recipe_of, without_picture
    from ..store import get_store

    try:
        record = None if Path(options.path).expanduser().exists() else \
            find_stored(get_store(settings.store_location), options.path, "yart info", CLI)
    except RerunError as exc:  # #N past the history's end: the input, as with exit code 2
        raise errors.InvalidRequestError(exc.message) from None
    if record is not None and record.messages:  # #N or an operation id: the store's recipe of it
        recipe, picture = recipe_of(record)
        if picture is None:
            out.write(without_picture(record, options.path) + "\n")
        out.write(f"{summary(recipe)}\n{cell_text(recipe)}\n")
        return OK
    try:
        found = info(options.path)
    except ProvenanceError as exc:  # no such file, or no recipe in it: the input, as with exit code 2
        raise errors.InvalidRequestError(exc.message) from None
    for recipe in found if isinstance(found, list) else [found]:
        out.write(f"{summary(recipe)}\n{cell_text(recipe)}\n")
    return OK


def models(settings: Settings, options: argparse.Namespace, out: TextIO) -> int:
    """The models the service serves and what each can do."""
    from ..core.models import table_text

    out.write(table_text() + "\n")
    return OK


#: Each command's function, by its name on the command line.
COMMANDS: dict[str, Callable[[Settings, argparse.Namespace, TextIO], int]] = {
    "history": history, "pending": pending, "store": store_copy, "compare": compare, "info": info, "prune": prune,
    "models": models,
}
