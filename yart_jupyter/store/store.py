"""The local store: every generation recorded in SQLite, every image kept as a file.

The operation id is committed before any waiting starts, and an image file is written (through a
temporary file and a rename) before its record says ``done``: a crash loses neither. Several
kernels may share one store (WAL journal, short transactions, retries while the file is busy).
No credential is ever written here.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from ..core.errors import StorageError
from ..core.redact import get_logger
from ..core.request import AspectRatio, GenerationRequest, Message
from ..media.image import GeneratedImage, image_size, thumbnail, write_atomic

log = get_logger("yart_jupyter.store")

T = TypeVar("T")

#: A generation's life: ``queued`` (asked for, not sent), ``submitting`` (its start request is
#: out, answer unknown), ``pending`` (the service has it: an operation id), then an end state.
STATUSES = ("queued", "submitting", "pending", "done", "failed", "cancelled", "expired")
UNSENT = ("queued", "submitting")
#: The placeholder id of a generation whose operation id is not known yet.
INTENT_PREFIX = "intent:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    operation_id  TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    prompt        TEXT NOT NULL,
    messages      TEXT NOT NULL,
    seed          INTEGER,
    seed_given    INTEGER NOT NULL DEFAULT 0,
    aspect        TEXT,
    mime_type     TEXT,
    model_uri     TEXT,
    request_key   TEXT,
    submitted_at  REAL NOT NULL,
    finished_at   REAL,
    error         TEXT,
    model_version TEXT,
    image_file    TEXT,
    width         INTEGER,
    height        INTEGER,
    bytes         INTEGER,
    notebook      TEXT,
    idempotency_key TEXT,
    seen_running  REAL,
    seen_done     REAL,
    api           TEXT,
    revised_prompt TEXT
);
CREATE INDEX IF NOT EXISTS generations_cache ON generations (request_key, status);
CREATE INDEX IF NOT EXISTS generations_time ON generations (submitted_at);
CREATE INDEX IF NOT EXISTS generations_status ON generations (status);
CREATE TABLE IF NOT EXISTS experiments (
    id          TEXT PRIMARY KEY,
    created_at  REAL NOT NULL,
    title       TEXT NOT NULL,
    axes        TEXT NOT NULL,
    items       TEXT NOT NULL,
    notebook    TEXT
);
"""
_MIGRATIONS = {"idempotency_key": "ALTER TABLE generations ADD COLUMN idempotency_key TEXT",
               "seen_running": "ALTER TABLE generations ADD COLUMN seen_running REAL",
               "seen_done": "ALTER TABLE generations ADD COLUMN seen_done REAL",
               "api": "ALTER TABLE generations ADD COLUMN api TEXT",
               "revised_prompt": "ALTER TABLE generations ADD COLUMN revised_prompt TEXT"}
_INDEXES = "CREATE UNIQUE INDEX IF NOT EXISTS generations_intent ON generations (idempotency_key)"


def request_key(request: GenerationRequest) -> str:
    """What makes two requests the same picture: messages, seed, aspect, mime type and model."""
    canonical = json.dumps(
        [[[m.text, m.weight] for m in request.messages], request.seed, str(request.aspect),
         request.mime_type, request.model_uri],
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Record:
    """One generation as the store knows it."""

    operation_id: str
    status: str
    prompt: str
    messages: tuple[Message, ...]
    seed: int | None
    seed_given: bool
    aspect: str | None
    mime_type: str | None
    model_uri: str | None
    submitted_at: datetime
    finished_at: datetime | None
    error: str | None
    model_version: str | None
    image_path: Path | None
    width: int | None
    height: int | None
    bytes: int | None
    notebook: str | None
    idempotency_key: str | None = None
    #: The API that served it: "operations" (an operation id to collect) or "images" (synchronous).
    api: str = "operations"
    revised_prompt: str | None = None

    @property
    def answer_lost(self) -> bool:
        """A synchronous request that went out and whose answer never came: nothing to collect."""
        return self.api == "images" and self.status == "submitting"

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.submitted_at).total_seconds()

    def request(self) -> GenerationRequest | None:
        """The request as it was sent (None for an operation the store only knows by id)."""
        if (self.seed is None and self.api != "images") or not self.messages:
            return None
        return GenerationRequest(
            self.messages, self.seed, AspectRatio.parse(self.aspect or "1:1"),
            self.mime_type or "image/jpeg", self.model_uri or "", self.seed_given,
            "images" if self.api == "images" else "operations",
        )

    def to_image(self, *, cached: bool = False) -> GeneratedImage:
        """The stored picture as a GeneratedImage (read from its file)."""
        if self.image_path is None or not self.image_path.exists():
            raise StorageError(f"The image of {self.operation_id} is not in the store", operation_id=self.operation_id)
        return GeneratedImage(
            image_bytes=self.image_path.read_bytes(), mime_type=self.mime_type or "image/jpeg", seed=self.seed,
            aspect=AspectRatio.parse(self.aspect) if self.aspect else None, messages=self.messages,
            operation_id=self.operation_id, model_version=self.model_version, model_uri=self.model_uri,
            submitted_at=self.submitted_at, done_at=self.finished_at, cached=cached, path=self.image_path,
            revised_prompt=self.revised_prompt,
        )


@dataclass(frozen=True)
class ExperimentRecord:
    """A sweep as the store keeps it: its axes, and each cell's axis values and generation.

    ``items``: (axis values, reference) per cell, where the reference is the generation's
    idempotency key (it names the record from before its start) or, for a picture the store
    already had, its operation id.
    """

    id: str
    created_at: datetime
    title: str
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    items: tuple[tuple[tuple[Any, ...], str], ...]
    notebook: str | None


class Store:
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

    def _create(self) -> None:
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")  # kept in the file: later connections need not ask
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(generations)")}
            for column, statement in _MIGRATIONS.items():
                if column not in columns:  # a store made by an older version
                    db.execute(statement)
            db.execute(_INDEXES)

    # -- plumbing ----------------------------------------------------------------------------

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

    # -- writing -----------------------------------------------------------------------------

    def record_queued(self, request: GenerationRequest, key: str, *, notebook: str | None = None) -> None:
        """Commit a generation as ``queued`` before anything is sent (its idempotency key names it)."""
        self.record_queued_many([(request, key)], notebook=notebook)

    def record_queued_many(self, intents: Sequence[tuple[GenerationRequest, str]], *,
                           notebook: str | None = None) -> None:
        """:meth:`record_queued` for many generations in one transaction (a batch of a thousand rows)."""
        when = datetime.now(timezone.utc).timestamp()
        values = [(INTENT_PREFIX + key, request.prompt,
                   json.dumps([[m.text, m.weight] for m in request.messages], ensure_ascii=False), request.seed,
                   int(request.seed_was_given), str(request.aspect), request.mime_type, request.model_uri,
                   request_key(request), when, notebook, key, request.api) for request, key in intents]

        def insert() -> None:
            with self._transaction() as db:
                db.executemany(
                    "INSERT OR IGNORE INTO generations (operation_id, status, prompt, messages, seed, seed_given,"
                    " aspect, mime_type, model_uri, request_key, submitted_at, notebook, idempotency_key, api)"
                    " VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

        if values:
            self._retry(insert)

    def mark_submitting(self, key: str) -> None:
        """The start request of ``key`` is about to go out: from now on the service may have it."""

        def update() -> None:
            with self._transaction() as db:
                db.execute("UPDATE generations SET status='submitting' WHERE idempotency_key=? AND status='queued'",
                           (key,))

        self._retry(update)

    def settle_intent(self, key: str, status: str, error: str) -> None:
        """End a generation that never got an operation id (refused at its start, or cancelled unsent)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")

        def update() -> None:
            with self._transaction() as db:
                db.execute(
                    "UPDATE generations SET status=?, error=?, finished_at=? WHERE idempotency_key=?"
                    " AND status IN ('queued', 'submitting')", (status, error, time.time(), key),
                )

        self._retry(update)

    def unsent(self) -> list[Record]:
        """Generations asked for whose operation id was never recorded (queued, or submitting)."""
        return self._select("status IN ('queued', 'submitting')")

    def record_started(
        self, operation_id: str, request: GenerationRequest | None, *, notebook: str | None = None,
        submitted_at: datetime | None = None, key: str | None = None,
    ) -> None:
        """Commit an operation as ``pending`` (before any waiting starts); a queued generation's record
        (named by its idempotency ``key``) takes the operation id."""
        when = (submitted_at or datetime.now(timezone.utc)).timestamp()
        messages = json.dumps([[m.text, m.weight] for m in request.messages] if request else [], ensure_ascii=False)

        def insert() -> None:
            with self._transaction() as db:
                if key is not None:
                    try:
                        if db.execute("UPDATE generations SET operation_id=?, status='pending' WHERE idempotency_key=?",
                                      (operation_id, key)).rowcount:
                            return
                    except sqlite3.IntegrityError:  # the operation is recorded already (a replayed start)
                        db.execute("DELETE FROM generations WHERE idempotency_key=? AND operation_id!=?",
                                   (key, operation_id))
                        return
                db.execute(
                    "INSERT OR IGNORE INTO generations (operation_id, status, prompt, messages, seed, seed_given,"
                    " aspect, mime_type, model_uri, request_key, submitted_at, notebook, api)"
                    " VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (operation_id, request.prompt if request else "", messages,
                     request.seed if request else None, int(request.seed_was_given) if request else 0,
                     str(request.aspect) if request else None, request.mime_type if request else None,
                     request.model_uri if request else None, request_key(request) if request else None,
                     when, notebook, request.api if request else None),
                )

        self._retry(insert)

    def record_done(self, image: GeneratedImage, observed: tuple[float, float | None] | None = None) -> Path:
        """Write the image file atomically, then mark the record done; returns the file's path.

        ``observed``: what the wait saw, in seconds after the start (the last read that found it
        running, the read that found it done): what the schedule learns from at the next start-up.
        """
        path = self.images / f"{image.operation_id}{image.extension}"
        data = image.image_bytes
        if not path.exists():
            write_atomic(path, data)
        size = image_size(data) or (None, None)
        finished = (image.done_at or datetime.now(timezone.utc)).timestamp()

        def update() -> None:
            with self._transaction() as db:
                known = db.execute("SELECT 1 FROM generations WHERE operation_id=?", (image.operation_id,)).fetchone()
                if known is None:
                    db.execute(
                        "INSERT INTO generations (operation_id, status, prompt, messages, submitted_at)"
                        " VALUES (?, 'pending', '', '[]', ?)",
                        (image.operation_id, (image.submitted_at or image.done_at or datetime.now(timezone.utc))
                         .timestamp()),
                    )
                db.execute(
                    "UPDATE generations SET status='done', finished_at=?, error=NULL, model_version=?,"
                    " image_file=?, width=?, height=?, bytes=?, mime_type=COALESCE(mime_type, ?),"
                    " seen_running=COALESCE(?, seen_running), seen_done=COALESCE(?, seen_done),"
                    " revised_prompt=COALESCE(?, revised_prompt) WHERE operation_id=?",
                    (finished, image.model_version, path.name, size[0], size[1], len(data), image.mime_type,
                     observed[0] if observed else None, observed[1] if observed else None, image.revised_prompt,
                     image.operation_id),
                )

        self._retry(update)
        image.path = path
        return path

    def record_failed(self, operation_id: str, status: str, error: str) -> None:
        """Mark an operation failed, cancelled or expired, with its error line."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")

        def update() -> None:
            with self._transaction() as db:
                db.execute(
                    "UPDATE generations SET status=?, error=?, finished_at=? WHERE operation_id=? AND status!='done'",
                    (status, error, time.time(), operation_id),
                )

        self._retry(update)

    # -- reading -----------------------------------------------------------------------------

    def _select(self, where: str = "1", args: Sequence[Any] = (), limit: int | None = None) -> list[Record]:
        sql = f"SELECT * FROM generations WHERE {where} ORDER BY submitted_at DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._record(row) for row in self._query(sql, args)]

    def _record(self, row: sqlite3.Row) -> Record:
        messages = tuple(Message(text, weight) for text, weight in json.loads(row["messages"] or "[]"))
        return Record(
            operation_id=row["operation_id"], status=row["status"], prompt=row["prompt"], messages=messages,
            seed=row["seed"], seed_given=bool(row["seed_given"]), aspect=row["aspect"], mime_type=row["mime_type"],
            model_uri=row["model_uri"],
            submitted_at=datetime.fromtimestamp(row["submitted_at"], timezone.utc),
            finished_at=datetime.fromtimestamp(row["finished_at"], timezone.utc) if row["finished_at"] else None,
            error=row["error"], model_version=row["model_version"],
            image_path=self.images / row["image_file"] if row["image_file"] else None,
            width=row["width"], height=row["height"], bytes=row["bytes"], notebook=row["notebook"],
            idempotency_key=row["idempotency_key"], api=row["api"] or "operations",
            revised_prompt=row["revised_prompt"],
        )

    def get(self, operation_id: str) -> Record | None:
        found = self._select("operation_id=?", (operation_id,))
        return found[0] if found else None

    def find_cached(self, request: GenerationRequest) -> Record | None:
        """A finished record of exactly this request, whose image file is still there."""
        return self.find_many([request], ("done",)).get(request_key(request))

    def find_many(self, requests: Sequence[GenerationRequest], statuses: Sequence[str]) -> dict[str, Record]:
        """The newest record in one of ``statuses`` of each request, by request key, in a few queries
        (a done record counts only while its image file is there)."""
        keys = list(dict.fromkeys(request_key(r) for r in requests))
        found: dict[str, Record] = {}
        marks = ", ".join("?" for _ in statuses)
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            where = f"request_key IN ({', '.join('?' for _ in chunk)}) AND status IN ({marks})"
            for row in self._query(f"SELECT * FROM generations WHERE {where} ORDER BY submitted_at DESC",
                                   [*chunk, *statuses]):
                record = self._record(row)
                usable = record.status != "done" or (record.image_path is not None and record.image_path.exists())
                if usable and row["request_key"] not in found:
                    found[row["request_key"]] = record
        return found

    def pending(self) -> list[Record]:
        """Operations the service has (an operation id) that were never collected."""
        return self._select("status='pending'")

    def history(self, limit: int | None = 20, search: str | None = None, status: str | None = None) -> list[Record]:
        """The newest records first; ``search`` matches the prompt (case-insensitive)."""
        clauses, args = [], []
        if search:
            clauses.append("prompt LIKE ? ESCAPE '\\'")
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args.append(f"%{escaped}%")
        if status:
            clauses.append("status=?")
            args.append(status)
        return self._select(" AND ".join(clauses) or "1", args, limit)

    def record_experiment(self, experiment: ExperimentRecord) -> None:
        """Keep a sweep (before any of its generations is sent, like each generation's own record)."""
        axes = json.dumps([[name, list(values)] for name, values in experiment.axes], ensure_ascii=False)
        items = json.dumps([[list(key), ref] for key, ref in experiment.items], ensure_ascii=False)

        def insert() -> None:
            with self._transaction() as db:
                db.execute("INSERT OR REPLACE INTO experiments (id, created_at, title, axes, items, notebook)"
                           " VALUES (?, ?, ?, ?, ?, ?)", (experiment.id, experiment.created_at.timestamp(),
                                                         experiment.title, axes, items, experiment.notebook))

        self._retry(insert)

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

    def find_unfinished(self, requests: Sequence[GenerationRequest]) -> dict[str, Record]:
        """The newest generation of each request still on its way, by request key: pending on the
        server (an operation id), or asked for and never answered (queued, submitting)."""
        return self.find_many(requests, ("pending", "queued", "submitting"))

    def starts_since(self, moment: float) -> tuple[int, float | None]:
        """How many generations were started (sent) since ``moment`` (epoch seconds), and the oldest
        start among them: what the folder's daily quota has counted."""
        rows = self._query("SELECT COUNT(*), MIN(submitted_at) FROM generations WHERE submitted_at >= ?"
                           " AND status NOT IN ('queued') AND operation_id NOT LIKE 'intent:%'", (moment,))
        count, oldest = rows[0]
        return int(count), float(oldest) if oldest is not None else None

    def find(self, reference: str) -> Record | None:
        """A record by operation id or by the idempotency key its start carried."""
        found = self._select("operation_id=? OR idempotency_key=?", (reference, reference), limit=1)
        return found[0] if found else None

    def record_running(self, operation_id: str, seen: float) -> None:
        """A wait ended (interrupted, timed out) with the operation still running ``seen`` seconds after
        its start: a lower bound on its duration, which the schedule learns from too."""
        def update() -> None:
            with self._transaction() as db:
                db.execute("UPDATE generations SET seen_running=MAX(COALESCE(seen_running, 0), ?)"
                           " WHERE operation_id=? AND status IN ('pending', 'expired')", (seen, operation_id))

        self._retry(update)

    def durations(self, limit: int = 500) -> list[tuple[float, float | None, str, str]]:
        """What the latest generations' waits saw, to learn the schedule from: (low, high, aspect, model
        URI) in seconds after the start, the generation finished after ``low`` and by ``high`` (None:
        still running when last seen). A record from before spans were kept gives its submission-to-
        collection time for both (an over-estimate: it includes the round trips)."""
        sql = ("SELECT seen_running, seen_done, finished_at - submitted_at, status, COALESCE(aspect, ''),"
               " COALESCE(model_uri, '') FROM generations WHERE COALESCE(api, '') != 'images' AND"
               " ((status='done' AND finished_at IS NOT NULL)"
               " OR (status IN ('pending', 'expired') AND seen_running > 0)) ORDER BY submitted_at DESC LIMIT ?")
        spans: list[tuple[float, float | None, str, str]] = []
        for running, done, total, status, aspect, model in self._query(sql, (limit,)):
            if status != "done":
                spans.append((float(running), None, str(aspect), str(model)))
            elif done is not None and done > 0:
                spans.append((float(running or 0.0), float(done), str(aspect), str(model)))
            elif total and total > 0:
                spans.append((float(total), float(total), str(aspect), str(model)))
        return spans

    def latest_model_version(self, model_uri: str) -> str | None:
        """The model version of the newest finished generation of ``model_uri`` (None when unknown)."""
        rows = self._query("SELECT model_version FROM generations WHERE status='done' AND model_uri=?"
                           " AND model_version IS NOT NULL AND model_version!='' ORDER BY finished_at DESC LIMIT 1",
                           (model_uri,))
        return str(rows[0][0]) if rows else None

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM generations")[0][0])

    # -- pruning -----------------------------------------------------------------------------

    def prune(self, *, older_than: float | None = None, max_bytes: int | None = None) -> tuple[int, int]:
        """Delete records (and their files) older than ``older_than`` seconds, then the oldest until the
        images take at most ``max_bytes``; pending, queued and submitting ones are kept. Returns (records, bytes)."""
        doomed: list[Record] = []
        finished = [r for r in self._select("status NOT IN ('pending', 'queued', 'submitting')")]
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
        def delete() -> None:
            with self._transaction() as db:
                db.executemany("DELETE FROM generations WHERE operation_id=?", [(r.operation_id,) for r in doomed])

        self._retry(delete)  # the records go first: a failure here leaves every file in place
        freed = 0
        for record in doomed:
            if record.image_path is not None and record.image_path.exists():
                freed += record.image_path.stat().st_size
                record.image_path.unlink()
            self.thumbnail_path(record.operation_id).unlink(missing_ok=True)
        return len(doomed), freed

    # -- thumbnails --------------------------------------------------------------------------

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
