"""The store's sweeps: kept before any of their generations is sent, found again by id or prefix."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from .backend import Conn
from .database import Database
from .records import ExperimentRecord


def repoint(db: Conn, key: str, operation_id: str) -> None:
    """Every sweep cell that names the intent ``key`` names ``operation_id`` instead (an idempotency
    key is a UUID, found only where it is a cell's reference)."""
    db.execute("UPDATE experiments SET items=REPLACE(items, ?, ?) WHERE items LIKE ?",
               (json.dumps(key), json.dumps(operation_id), f"%{key}%"))


class Experiments(Database):
    """The ``experiments`` table."""

    def record_experiment(self, experiment: ExperimentRecord) -> None:
        """Keep a sweep (before any of its generations is sent, like each generation's own record)."""
        axes = json.dumps([[name, list(values)] for name, values in experiment.axes], ensure_ascii=False)
        items = json.dumps([[list(key), ref] for key, ref in experiment.items], ensure_ascii=False)

        def insert(db: Conn) -> None:
            db.execute("INSERT INTO experiments (id, created_at, title, axes, items, notebook)"
                       " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                       " created_at=excluded.created_at, title=excluded.title, axes=excluded.axes,"
                       " items=excluded.items, notebook=excluded.notebook",
                       (experiment.id, experiment.created_at.timestamp(), experiment.title, axes, items,
                        experiment.notebook))

        self._write(insert)

    def repoint(self, key: str, operation_id: str) -> None:
        """A sweep's cell named its generation by the idempotency ``key`` of its intent, and that intent
        joined another run's operation instead of being sent: the cell names the operation now."""
        self._write(lambda db: repoint(db, key, operation_id))

    def experiments(self, limit: int | None = 20, experiment_id: str | None = None) -> list[ExperimentRecord]:
        """The newest sweeps first; ``experiment_id`` finds one (a unique prefix is enough)."""
        sql, args = "SELECT * FROM experiments", []
        if experiment_id is not None:
            sql += " WHERE id LIKE ? ESCAPE '\\'"
            args.append(experiment_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        sql += " ORDER BY created_at DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [ExperimentRecord(
            id=row["id"], created_at=datetime.fromtimestamp(row["created_at"], timezone.utc), title=row["title"],
            axes=tuple((name, tuple(values)) for name, values in json.loads(row["axes"])),
            items=tuple((tuple(key), ref) for key, ref in json.loads(row["items"])), notebook=row["notebook"],
        ) for row in self._query(sql, args)]
