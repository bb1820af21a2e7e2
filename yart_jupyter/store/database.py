"""The store's SQL plumbing: short units of work on its backend, retried while the database is busy or away.

Several kernels may share one store: a SQLite file on one machine (WAL journal, short transactions,
retries while the file is busy) or a team's PostgreSQL database (retries while it restarts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..core.errors import StorageError
from ..core.redact import get_logger, redact
from .backend import Conn, PostgresBackend, SQLiteBackend

log = get_logger("yart_jupyter.store")

T = TypeVar("T")

#: How long a unit of work keeps retrying while the database is busy or unreachable (seconds):
#: long enough for a database to restart, short enough to say so in one line.
RETRY_FOR = 30.0


class Database:
    """A store's database: every read and write goes through here, in one short unit of work."""

    home: Path
    images: Path
    backend: SQLiteBackend | PostgresBackend
    #: Where the store is, as shown to people (a folder, or a database URL without its password).
    location: str
    #: True for a team's store (several people's records); a local store's records are all mine.
    shared: bool = False

    @contextmanager
    def _connect(self) -> Iterator[Conn]:
        with self.backend.connect() as db:
            yield db

    @contextmanager
    def _transaction(self) -> Iterator[Conn]:
        with self.backend.transaction() as db:
            yield db

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        def run() -> list[Any]:
            with self._connect() as db:
                return db.execute(sql, tuple(args)).fetchall()

        return self._retry(run)

    def _retry(self, action: Callable[[], T], retry_for: float = RETRY_FOR) -> T:
        """Run a short unit of work, retrying while another process holds the database or it is away."""
        delay, deadline = 0.05, time.monotonic() + retry_for
        while True:
            try:
                return action()
            except self.backend.errors as exc:
                if not self.backend.is_transient(exc) or time.monotonic() + delay > deadline:
                    raise StorageError(f"The store at {self.location} failed: {redact(_first_line(exc))}") from None
                log.debug("store busy or away (%s); retry in %.2f s", _first_line(exc), delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _write(self, work: Callable[[Conn], T]) -> T:
        """Run ``work`` in one write transaction, retried while another process holds the database."""

        def attempt() -> T:
            with self._transaction() as db:
                return work(db)

        return self._retry(attempt)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
