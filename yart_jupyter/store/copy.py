"""Copying one store into another (``yart store copy``): a local store into a team's, or back.

Records, sweeps and pictures go over in chunks, each chunk one transaction in the destination; a
record the destination has already (same operation id or idempotency key) is left as it is, so a
copy interrupted or run twice ends the same. Records from before owners were kept become mine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.identity import host_name, user_name
from .backend import Conn
from .schema import GENERATION_COLUMNS
from .store import Store

#: The columns of ``generations`` in both backends, in one order.
COLUMNS = tuple(column[0] for column in GENERATION_COLUMNS)
EXPERIMENT_COLUMNS = ("id", "created_at", "title", "axes", "items", "notebook")
CHUNK = 50


@dataclass
class CopyResult:
    """What a copy did: records and sweeps copied, and those the destination had already."""

    records: int = 0
    experiments: int = 0
    pictures: int = 0
    already: int = 0

    def text(self) -> str:
        def plural(count: int, word: str) -> str:
            return f"{count} {word}{'s' if count != 1 else ''}"

        return (f"copied {plural(self.records, 'record')} ({plural(self.pictures, 'picture')}) and "
                f"{plural(self.experiments, 'sweep')}; {self.already} already there")


def copy_store(source: Store, destination: Store, on_progress: Callable[[int, int], None] | None = None) -> CopyResult:
    """Copy every record, sweep and picture of ``source`` that ``destination`` does not have."""
    result = CopyResult()
    rows = source._query(f"SELECT {', '.join(COLUMNS)} FROM generations ORDER BY submitted_at")
    me, here = user_name(), host_name()
    for start in range(0, len(rows), CHUNK):
        chunk = [dict(zip(COLUMNS, row, strict=True)) for row in rows[start:start + CHUNK]]
        for row in chunk:
            row["owner"], row["host"] = row["owner"] or me, row["host"] or here
        added, pictures = destination._write(_inserter(destination, chunk, _pictures(source, chunk)))
        result.records += added
        result.pictures += pictures
        result.already += len(chunk) - added
        if on_progress is not None:
            on_progress(min(start + CHUNK, len(rows)), len(rows))
    experiments = source._query(f"SELECT {', '.join(EXPERIMENT_COLUMNS)} FROM experiments")

    def insert_experiments(db: Conn) -> int:
        return sum(max(db.execute(f"INSERT INTO experiments ({', '.join(EXPERIMENT_COLUMNS)}) VALUES "
                                  f"({', '.join('?' for _ in EXPERIMENT_COLUMNS)}) ON CONFLICT DO NOTHING",
                                  list(row)).rowcount, 0) for row in experiments)

    result.experiments = destination._write(insert_experiments)
    return result


def _pictures(source: Store, chunk: list[dict[str, Any]]) -> dict[str, tuple[str, bytes]]:
    """The pictures of a chunk's done records, by operation id: (file name, bytes)."""
    done = [row for row in chunk if row["status"] == "done" and row["image_file"]]
    missing = [row["operation_id"] for row in done if not (source.images / row["image_file"]).exists()]
    if missing:  # a team store's pictures not yet on this machine
        source._select(f"operation_id IN ({', '.join('?' for _ in missing)})", missing)
    return {row["operation_id"]: (row["image_file"], (source.images / row["image_file"]).read_bytes())
            for row in done if (source.images / row["image_file"]).exists()}


def _inserter(destination: Store, chunk: list[dict[str, Any]], pictures: dict[str, tuple[str, bytes]]
              ) -> Callable[[Conn], tuple[int, int]]:
    """The transaction that copies one chunk: (records added, pictures added)."""

    def insert(db: Conn) -> tuple[int, int]:
        added = kept = 0
        for row in chunk:
            cursor = db.execute(f"INSERT INTO generations ({', '.join(COLUMNS)}) VALUES "
                                f"({', '.join('?' for _ in COLUMNS)}) ON CONFLICT DO NOTHING",
                                [row[c] for c in COLUMNS])
            if cursor.rowcount > 0:
                added += 1
                if row["operation_id"] in pictures:
                    name, data = pictures[row["operation_id"]]
                    destination._import_picture(db, row["operation_id"], name, data)
                    kept += 1
        return added, kept

    return insert
