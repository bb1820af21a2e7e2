"""A generation's life in the store: queued before anything is sent, started, then done or failed.

The operation id is committed before any waiting starts, and an image file is written (through a
temporary file and a rename) before its record says ``done``: a crash loses neither.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from ..core.identity import host_name, user_name
from ..core.request import GenerationRequest
from ..media.image import GeneratedImage, write_atomic
from ..media.pixels import image_size
from .backend import Conn
from .database import Database
from .experiments import repoint
from .records import INTENT_PREFIX, STATUSES, request_key


class Lifecycle(Database):
    """The writes of a generation's life, each one short transaction."""

    def _keep_image(self, db: Conn, operation_id: str, data: bytes) -> None:
        """Keep a picture's bytes in the database too, in the transaction that marks it done (a team
        store does; a local store keeps only the file written before)."""

    def _import_picture(self, db: Conn, operation_id: str, name: str, data: bytes) -> None:
        """A copied record's picture (``yart store copy``): its file here, and its bytes in the database
        if this store keeps them there, in the copy's transaction."""
        path = self.images / name
        if not path.exists():
            write_atomic(path, data)
        self._keep_image(db, operation_id, data)

    def record_queued(self, request: GenerationRequest, key: str, *, notebook: str | None = None) -> None:
        """Commit a generation as ``queued`` before anything is sent (its idempotency key names it)."""
        self.record_queued_many([(request, key)], notebook=notebook)

    def record_queued_many(self, intents: Sequence[tuple[GenerationRequest, str]], *,
                           notebook: str | None = None) -> None:
        """:meth:`record_queued` for many generations in one transaction (a batch of a thousand rows)."""
        when = datetime.now(timezone.utc).timestamp()
        owner, host = user_name(), host_name()
        values = [(INTENT_PREFIX + key, request.prompt,
                   json.dumps([[m.text, m.weight] for m in request.messages], ensure_ascii=False), request.seed,
                   int(request.seed_was_given), str(request.aspect), request.mime_type, request.model_uri,
                   request_key(request), when + index * 1e-6, notebook, key, request.api, owner, host)
                  for index, (request, key) in enumerate(intents)]  # a microsecond apart: the run's order

        def insert(db: Conn) -> None:
            db.executemany(
                "INSERT INTO generations (operation_id, status, prompt, messages, seed, seed_given,"
                " aspect, mime_type, model_uri, request_key, submitted_at, notebook, idempotency_key, api,"
                " owner, host) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING", values)

        if values:
            self._write(insert)

    def mark_submitting(self, key: str) -> None:
        """The start request of ``key`` is about to go out: from now on the service may have it."""

        def update(db: Conn) -> None:
            db.execute("UPDATE generations SET status='submitting' WHERE idempotency_key=? AND status='queued'",
                       (key,))

        self._write(update)

    def forget_intent(self, key: str) -> None:
        """Drop a generation asked for and not started: it joined the same picture already on its way
        (another run's), so it is no generation of its own and nothing is left to send (``queued``, or
        ``submitting`` when the service refused its start and it gave up before sending it again)."""

        def delete(db: Conn) -> None:
            db.execute("DELETE FROM generations WHERE idempotency_key=? AND status IN ('queued', 'submitting')",
                       (key,))

        self._write(delete)

    def settle_intent(self, key: str, status: str, error: str) -> None:
        """End a generation that never got an operation id (refused at its start, or cancelled unsent)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")

        def update(db: Conn) -> None:
            db.execute(
                "UPDATE generations SET status=?, error=?, finished_at=? WHERE idempotency_key=?"
                " AND status IN ('queued', 'submitting')", (status, error, time.time(), key),
            )

        self._write(update)

    def record_started(
        self, operation_id: str, request: GenerationRequest | None, *, notebook: str | None = None,
        submitted_at: datetime | None = None, key: str | None = None,
    ) -> None:
        """Commit an operation as ``pending`` (before any waiting starts); a queued generation's record
        (named by its idempotency ``key``) takes the operation id."""
        when = (submitted_at or datetime.now(timezone.utc)).timestamp()
        messages = json.dumps([[m.text, m.weight] for m in request.messages] if request else [], ensure_ascii=False)

        def insert(db: Conn) -> None:
            if key is not None:
                if db.execute("SELECT 1 FROM generations WHERE operation_id=?"
                              " AND (idempotency_key IS NULL OR idempotency_key!=?)",
                              (operation_id, key)).fetchone() is not None:
                    # the operation is recorded already (a replayed start): the intent goes
                    db.execute("DELETE FROM generations WHERE idempotency_key=? AND operation_id!=?",
                               (key, operation_id))
                    return
                if db.execute("UPDATE generations SET operation_id=?, status='pending' WHERE idempotency_key=?",
                              (operation_id, key)).rowcount:
                    return
            db.execute(
                "INSERT INTO generations (operation_id, status, prompt, messages, seed, seed_given,"
                " aspect, mime_type, model_uri, request_key, submitted_at, notebook, api, owner, host)"
                " VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (operation_id, request.prompt if request else "", messages,
                 request.seed if request else None, int(request.seed_was_given) if request else 0,
                 str(request.aspect) if request else None, request.mime_type if request else None,
                 request.model_uri if request else None, request_key(request) if request else None,
                 when, notebook, request.api if request else None, user_name(), host_name()),
            )

        self._write(insert)

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

        def update(db: Conn) -> None:
            known = db.execute("SELECT 1 FROM generations WHERE operation_id=?", (image.operation_id,)).fetchone()
            if known is None:
                db.execute(
                    "INSERT INTO generations (operation_id, status, prompt, messages, submitted_at, owner, host)"
                    " VALUES (?, 'pending', '', '[]', ?, ?, ?)",
                    (image.operation_id, (image.submitted_at or image.done_at or datetime.now(timezone.utc))
                     .timestamp(), user_name(), host_name()),
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
            self._keep_image(db, image.operation_id, data)
            self._made_later(db, image.operation_id)

        self._write(update)
        image.path = path
        return path

    def _made_later(self, db: Conn, operation_id: str) -> None:
        """A seeded picture is made: my intents of the same request that an earlier run left unsent (a
        kernel that died waiting for quota, or with its start out) are no longer to send — ``resume
        --all`` would pay for the picture again. One never sent goes; one whose start went out is
        settled as cancelled, saying why; a sweep that named either names the picture now."""
        made = db.execute("SELECT request_key FROM generations WHERE operation_id=? AND seed_given=1"
                          " AND request_key IS NOT NULL", (operation_id,)).fetchone()
        if made is None:
            return
        stale = db.execute("SELECT idempotency_key, status FROM generations WHERE request_key=? AND owner=?"
                           " AND status IN ('queued', 'submitting') AND idempotency_key IS NOT NULL",
                           (made["request_key"], user_name())).fetchall()
        for row in stale:
            key = row["idempotency_key"]
            if row["status"] == "queued":
                db.execute("DELETE FROM generations WHERE idempotency_key=? AND status='queued'", (key,))
            else:
                db.execute("UPDATE generations SET status='cancelled', error=?, finished_at=? WHERE idempotency_key=?"
                           " AND status='submitting'",
                           (f"made by a later run ({operation_id}): not collected", time.time(), key))
            repoint(db, key, operation_id)

    def forget_unknown(self, operation_id: str) -> None:
        """Drop the record a collect by id made for an operation the service does not know (a
        mistyped or long-expired id): it holds no request and no picture, and is no generation."""
        def delete(db: Conn) -> None:
            db.execute("DELETE FROM generations WHERE operation_id=? AND status='pending' AND request_key IS NULL",
                       (operation_id,))

        self._write(delete)

    def record_failed(self, operation_id: str, status: str, error: str) -> None:
        """Mark an operation failed, cancelled or expired, with its error line."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")

        def update(db: Conn) -> None:
            db.execute(
                "UPDATE generations SET status=?, error=?, finished_at=? WHERE operation_id=? AND status!='done'",
                (status, error, time.time(), operation_id),
            )

        self._write(update)

    def record_running(self, operation_id: str, seen: float) -> None:
        """A wait ended (interrupted, timed out) with the operation still running ``seen`` seconds after
        its start: a lower bound on its duration, which the schedule learns from too."""
        def update(db: Conn) -> None:
            db.execute("UPDATE generations SET seen_running=? WHERE operation_id=? AND status IN ('pending', 'expired')"
                       " AND COALESCE(seen_running, 0) < ?", (seen, operation_id, seen))

        self._write(update)
