"""The store's files: pruning old records with their pictures, and thumbnails made once."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from ..core.errors import RequestValidationError
from ..media.image import write_atomic
from ..media.pixels import thumbnail
from .backend import Conn
from .queries import Queries
from .records import Record


def prune_limits(older_than_days: float | None, max_megabytes: float | None,
                 names: tuple[str, str] = ("older_than_days", "max_megabytes")) -> tuple[float | None, int | None]:
    """A face's prune limits (days, megabytes; ``names`` as the face calls them) as :meth:`Files.prune`
    takes them (seconds, bytes); a negative one is refused (-1 days would prune everything)."""
    for name, value in zip(names, (older_than_days, max_megabytes), strict=True):
        if value is not None and not value >= 0:  # NaN too
            raise RequestValidationError(name, value, "must not be negative")
    return (older_than_days * 86400 if older_than_days is not None else None,
            int(max_megabytes * 1024 * 1024) if max_megabytes is not None else None)


def pruned_line(removed: int, freed: int) -> str:
    """What a prune did, in one line."""
    return (f"Pruned {removed} record{'s' if removed != 1 else ''}, {freed / 1024 / 1024:.1f} MB freed "
            "(pending operations are kept).")


class Files(Queries):
    """Pictures and thumbnails on disk, and pruning them with their records."""

    def prune(self, *, older_than: float | None = None, max_bytes: int | None = None) -> tuple[int, int]:
        """Delete records (and their files) older than ``older_than`` seconds, then the oldest until the
        images take at most ``max_bytes``; pending, queued and submitting ones are kept, and in a team's
        store only my records are pruned. Returns (records, bytes)."""
        prune_limits(older_than, max_bytes, ("older_than", "max_bytes"))  # a negative limit would prune everything
        doomed: list[Record] = []
        mine, args = self._mine(False)
        finished = self._select(f"status NOT IN ('pending', 'queued', 'submitting') AND {mine}", args, images=False)
        if older_than is not None:
            cutoff = datetime.now(timezone.utc).timestamp() - older_than
            doomed.extend(r for r in finished if r.submitted_at.timestamp() < cutoff)
        if max_bytes is not None:
            kept = [r for r in finished if r not in doomed]
            total = sum(r.bytes or 0 for r in kept)
            for record in reversed(kept):  # oldest first
                if total <= max_bytes:
                    break
                doomed.append(record)
                total -= record.bytes or 0

        def delete(db: Conn) -> None:
            db.executemany("DELETE FROM generations WHERE operation_id=?", [(r.operation_id,) for r in doomed])

        self._write(delete)  # the records go first: a failure here leaves every file in place
        freed = 0
        for record in doomed:
            on_disk = record.image_path is not None and record.image_path.exists()
            freed += record.bytes or (record.image_path.stat().st_size if record.image_path and on_disk else 0)
            if record.image_path is not None and on_disk:
                record.image_path.unlink()
            self.thumbnail_path(record.operation_id).unlink(missing_ok=True)
        return len(doomed), freed

    def thumbnail_path(self, operation_id: str) -> Path:
        return self.home / "thumbs" / f"{operation_id}.jpg"

    def thumbnail(self, record: Record, size: int = 256) -> bytes | None:
        """A small JPEG of a record's image (made once, then kept)."""
        path = self.thumbnail_path(record.operation_id)
        if path.exists():
            return path.read_bytes()
        if record.image_path is None or not record.image_path.exists():
            return None
        data = thumbnail(record.image_path.read_bytes(), size)
        write_atomic(path, data)
        return data
