"""The stores: the local one (SQLite and image files in a folder) and a team's (PostgreSQL).

:class:`Store` puts together the lifecycle writes, the queries, the experiments table and the files;
see :mod:`.database` for how several kernels share one store. No credential is ever written here.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..core.errors import StorageError
from .backend import SQLiteBackend
from .experiments import Experiments
from .files import Files
from .lifecycle import Lifecycle
from .quota import QuotaLedger

#: The local store's database, in its folder.
DB_FILE = "yart.sqlite3"


class Store(Lifecycle, Files, Experiments):
    """The SQLite store in ``home``; safe to share between threads and processes."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home).expanduser()
        self.location = str(self.home)
        self.images = self.home / "images"
        self.db_path = self.home / DB_FILE
        self.backend = SQLiteBackend(self.db_path)
        try:
            self.images.mkdir(parents=True, exist_ok=True)
            self._retry(self._create)
        except StorageError:
            raise
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"Cannot open the store in {self.home}: {exc}",
                               hint="Set YANDEXART_HOME or %config YandexArt.data_dir to a writable folder") from None

    def _create(self) -> None:
        from .schema import _INDEXES, _MIGRATIONS, _SCHEMA

        db = sqlite3.connect(self.db_path, timeout=15.0, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # kept in the file: later connections need not ask
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(generations)")}
            for column, statement in _MIGRATIONS.items():
                if column not in columns:  # a store made by an older version
                    db.execute(statement)
            db.execute(_INDEXES)
        finally:
            db.close()

    def quota_ledger(self) -> QuotaLedger | None:
        """The folder's quota as every user of the store spends it (a team store's); None: this process alone."""
        return None

    def close(self) -> None:
        """Let go of the database's connections (a local store keeps none open)."""
        self.backend.close()

    def __repr__(self) -> str:
        return f"<yart_jupyter Store {self.location}>"

