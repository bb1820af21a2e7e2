"""The store's SQLite plumbing: short connections, write transactions, retries while another process writes.

Several kernels may share one store (WAL journal, short transactions, retries while the file is busy).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..core.errors import StorageError
from ..core.redact import get_logger
from .schema import _INDEXES, _MIGRATIONS, _SCHEMA

log = get_logger("yart_jupyter.store")

T = TypeVar("T")


class Database:
    """The SQLite file of a store: every read and write goes through here, in one short unit of work."""

    home: Path
    images: Path
    db_path: Path

    def _create(self) -> None:
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")  # kept in the file: later connections need not ask
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(generations)")}
            for column, statement in _MIGRATIONS.items():
                if column not in columns:  # a store made by an older version
                    db.execute(statement)
            db.execute(_INDEXES)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one unit of work, always closed at its end (no thread keeps one)."""
        db = sqlite3.connect(self.db_path, timeout=15.0, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        def run() -> list[sqlite3.Row]:
            with self._connect() as db:
                return db.execute(sql, tuple(args)).fetchall()

        return self._retry(run)

    def _retry(self, action: Callable[[], T]) -> T:
        """Run a short transaction, retrying while another process holds the database."""
        delay = 0.05
        for attempt in range(8):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or attempt == 7:
                    raise StorageError(f"The store in {self.home} failed: {exc}") from None
                log.debug("store busy (%s); retry in %.2f s", exc, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one write transaction, retried while another process holds the database."""

        def attempt() -> T:
            with self._transaction() as db:
                return work(db)

        return self._retry(attempt)
