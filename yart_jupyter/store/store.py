"""The local store: every generation recorded in SQLite, every image kept as a file.

:class:`Store` puts together the lifecycle writes, the queries, the experiments table and the files;
see :mod:`.database` for how several kernels share one store. No credential is ever written here.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from ..core.errors import StorageError
from .experiments import Experiments
from .files import Files
from .lifecycle import Lifecycle


class Store(Lifecycle, Files, Experiments):
    """The SQLite store in ``home``; safe to share between threads and processes."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home).expanduser()
        self.images = self.home / "images"
        self.db_path = self.home / "yart.sqlite3"
        try:
            self.images.mkdir(parents=True, exist_ok=True)
            self._retry(self._create)
        except StorageError:
            raise
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"Cannot open the store in {self.home}: {exc}",
                               hint="Set YANDEXART_HOME or %config YandexArt.data_dir to a writable folder") from None

    def __repr__(self) -> str:
        return f"<yart_jupyter Store {self.home}>"


_stores: dict[Path, Store] = {}
_stores_lock = threading.Lock()


def get_store(home: str | os.PathLike[str] | None = None) -> Store:
    """The store in ``home`` (default: the current settings' data folder), opened once per process."""
    if home is None:
        from ..core.settings import current

        home = current().home
    path = Path(home).expanduser().resolve()
    with _stores_lock:
        if path not in _stores:
            _stores[path] = Store(path)
        return _stores[path]
