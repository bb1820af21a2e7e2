"""The folder's quota as a team spends it: every start and read takes a slot in the shared database.

Each process still keeps its own window (:mod:`..clients.limits`); a team store adds this ledger,
so that N kernels on N machines together stay within the folder's quota, each one's share
following what the others do. A slot counts from the moment it is taken until its request is answered,
then for one window (by the database's clock): the service counted the request when it arrived,
somewhere in between. A kernel that dies holds its unanswered slots for a window and HOLD seconds at most.
"""

from __future__ import annotations

import itertools

from ..core.redact import get_logger
from .backend import Conn
from .database import Database

log = get_logger("yart_jupyter.store.quota")

#: How long a slot whose request was never answered (its process died) still counts, beyond a window.
HOLD = 10.0
#: Slots older than this many windows (and the hold) are deleted now and then: they count for nothing.
KEEP_WINDOWS = 2


class QuotaLedger:
    """Slots of the folder's quotas in a team store's ``quota_slots`` table (PostgreSQL)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        #: What names the ledger (its database, without the password): limiters are shared per key.
        self.key = database.location
        self._claims = itertools.count()

    def claim(self, scope: str, limit: int, window: float, spacing: float = 0.0) -> tuple[float, int | None]:
        """Take a slot of ``scope`` (at most ``limit`` in any ``window`` seconds, ``spacing`` apart) if one
        is free: (0, slot id); else (seconds to wait, None). One short transaction, serialised per scope."""

        def work(db: Conn) -> tuple[float, int | None]:
            wait, slot = db.execute("SELECT wait, slot FROM yart_claim(?, ?, ?, ?, ?)",
                                    (scope, limit, window, spacing, window + HOLD)).fetchone()
            if slot is not None and next(self._claims) % 200 == 0:
                db.execute("DELETE FROM quota_slots WHERE scope=? AND taken_at < EXTRACT(EPOCH FROM clock_timestamp())"
                           " - ?", (scope, KEEP_WINDOWS * window + HOLD))
            return float(wait), int(slot) if slot is not None else None

        return self._database._write(work)

    def settle(self, slot: int) -> None:
        """The slot's request was answered: count it from now (the service counted it when it arrived)."""

        def work(db: Conn) -> None:
            db.execute("UPDATE quota_slots SET taken_at=GREATEST(taken_at, EXTRACT(EPOCH FROM clock_timestamp())),"
                       " settled=TRUE WHERE id=?", (slot,))

        self._database._write(work)

    def block(self, scope: str, seconds: float) -> None:
        """The service said 429: nobody of the team sends in ``scope`` for ``seconds``."""

        def work(db: Conn) -> None:
            db.execute("INSERT INTO quota_blocks (scope, until_at)"
                       " VALUES (?, EXTRACT(EPOCH FROM clock_timestamp()) + ?)"
                       " ON CONFLICT (scope) DO UPDATE SET until_at=GREATEST(quota_blocks.until_at, excluded.until_at)",
                       (scope, seconds))

        self._database._write(work)

    def release(self, slot: int) -> None:
        """The slot's request never reached the service (its connection never opened): it counts for nothing."""

        def work(db: Conn) -> None:
            db.execute("DELETE FROM quota_slots WHERE id=?", (slot,))

        self._database._write(work)
