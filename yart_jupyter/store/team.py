"""A team's store: the same records in a shared PostgreSQL database, with the pictures in it too.

Every kernel and machine of a team that names the same database shares one history, one cache
and one quota (:mod:`.quota`). Pictures are kept in the database (``images``) in the transaction
that marks their record done, and copied to a folder on each machine the first time they are read
there (the pictures' files that the rest of the package shows, links and compares).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..core.errors import StorageError
from ..media.image import write_atomic
from .backend import Conn, PostgresBackend
from .quota import QuotaLedger
from .records import Record
from .schema import PG_MIGRATIONS, SCHEMA_VERSION
from .store import Store


class TeamStore(Store):
    """The store in a PostgreSQL database named by ``url``; pictures read here are kept under ``cache``."""

    shared = True

    def __init__(self, url: str, *, cache: Path, connect_timeout: float = 5.0) -> None:
        self.backend = PostgresBackend(url, connect_timeout=connect_timeout)
        self.location = self.backend.shown
        digest = hashlib.sha256(self.location.encode()).hexdigest()[:12]
        self.home = Path(cache).expanduser() / "team" / digest
        self.images = self.home / "images"
        self._ledger = QuotaLedger(self)
        try:
            self.images.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot keep the team store's pictures in {self.home}: {exc}",
                               hint="Set YANDEXART_HOME or %config YandexArt.data_dir to a writable folder") from None
        self._retry(self._create, retry_for=connect_timeout)

    def _create(self) -> None:
        """Bring the database's schema to this package's version, or refuse a newer one."""
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(hashtext('yart_jupyter schema'))")
            db.execute("CREATE TABLE IF NOT EXISTS store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM store_meta WHERE name='schema_version'").fetchone()
            version = int(row[0]) if row is not None else 0
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"The team store at {self.location} has schema version {version}, newer than this "
                    f"yart_jupyter knows ({SCHEMA_VERSION}): upgrade the package (pip install -U yart_jupyter)")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                db.execute(PG_MIGRATIONS[step])
            db.execute("INSERT INTO store_meta (name, value) VALUES ('schema_version', ?)"
                       " ON CONFLICT (name) DO UPDATE SET value=excluded.value", (str(SCHEMA_VERSION),))

    def quota_ledger(self) -> QuotaLedger:
        return self._ledger

    def _keep_image(self, db: Conn, operation_id: str, data: bytes) -> None:
        db.execute("INSERT INTO images (operation_id, data) VALUES (?, ?) ON CONFLICT (operation_id) DO NOTHING",
                   (operation_id, data))

    def _with_images(self, records: list[Record]) -> list[Record]:
        """Copy to this machine the pictures of done records it does not have yet (one query for all)."""
        missing = {r.operation_id: r.image_path for r in records
                   if r.status == "done" and r.image_path is not None and not r.image_path.exists()}
        if missing:
            rows = self._query("SELECT operation_id, data FROM images WHERE operation_id = ANY(?)", (list(missing),))
            for operation_id, data in rows:
                path = missing[operation_id]
                if path is not None:
                    write_atomic(path, bytes(data))
        return records
