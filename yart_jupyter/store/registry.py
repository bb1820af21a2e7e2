"""Every store a process opened, once each: the local one in a folder, a team's by its URL."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .backend import is_team_location
from .store import Store
from .team import TeamStore

_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def get_store(location: str | os.PathLike[str] | None = None) -> Store:
    """The store at ``location`` (a folder, or a ``postgresql://`` URL for a team's store; default: the
    current settings' store), opened once per process."""
    from ..core.settings import current

    if location is None:
        location = current().store_location
    key = str(location) if is_team_location(str(location)) else str(Path(location).expanduser().resolve())
    with _stores_lock:
        if key not in _stores:
            if is_team_location(key):
                _stores[key] = TeamStore(key, cache=current().home)
            else:
                _stores[key] = Store(key)
        return _stores[key]


def forget_stores() -> None:
    """Close and forget every store opened so far (the tests do, between databases)."""
    with _stores_lock:
        for store in _stores.values():
            store.close()
        _stores.clear()

