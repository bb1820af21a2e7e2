"""Client-side quota limiters: never send more than the folder's quota allows, and back off together.

A limiter allows at most ``limit`` events in any ``window`` seconds (the service counts quotas
per folder in such windows). After a 429 every caller of the same limiter pauses, so concurrent
requests do not hammer the service; nothing is dropped, callers only wait.
"""

from __future__ import annotations

import asyncio
import collections
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..core.errors import YandexArtError
from ..core.redact import get_logger
from ..core.steps import off_thread, one_per_turn

log = get_logger("yart_jupyter.clients.limits")

#: Added to each window (seconds, plus 2% of the window): our clock and the server's never quite
#: agree about when a request counted, and concurrent requests may arrive out of order.
WINDOW_MARGIN = 0.05
WINDOW_SLACK = 0.02


class Ledger(Protocol):
    """The folder's quota as several processes spend it (a team store's database): each slot is taken
    there too, so that everyone's requests together stay within the quota. Calls block (a worker
    thread makes them)."""

    key: str

    def claim(self, scope: str, limit: int, window: float, spacing: float = 0.0) -> tuple[float, int | None]:
        """(0, slot) when a slot was taken; (seconds to wait, None) when the window is full."""
        ...

    def settle(self, slot: int) -> None:
        """The slot's request was answered: count it from now."""
        ...

    def block(self, scope: str, seconds: float) -> None:
        """The service said 429: nobody sends in ``scope`` for ``seconds``."""
        ...

    def release(self, slot: int) -> None:
        """The slot's request never reached the service: it counts for nothing."""
        ...


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions in any ``window`` seconds; ``penalize`` pauses everyone.

    With a ``ledger``, each slot is also taken in it under ``scope``: the window is then the one
    every process of the folder shares, and a 429 pauses them all."""

    def __init__(self, limit: int, window: float, name: str = "requests", *, paced: bool = False,
                 ledger: Ledger | None = None, scope: str = "") -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a limiter needs a positive limit and window")
        self.limit = limit
        self.window = window * (1 + WINDOW_SLACK) + WINDOW_MARGIN
        #: The window a shared ledger counts in: its slots count until their request is answered and
        #: by one clock, so neither the slack for out-of-order arrival nor for clocks is needed there.
        self.shared_window = window + WINDOW_MARGIN
        self.name = name
        self._times: collections.deque[float] = collections.deque()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()
        #: With ``paced``, acquisitions are also spread at least window/limit apart: a burst would
        #: reach the server out of order and could overrun its window even when ours is respected.
        self.spacing = self.window / limit if paced else 0.0
        self.ledger, self.scope = ledger, scope or name
        #: The ledger's slot of each slot taken here (to settle it there too).
        self._slots: dict[float, int] = {}
        self._ledger_failed = False
        self._background: set[asyncio.Future[None]] = set()

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()

    def delay(self) -> float:
        """Seconds until one more acquisition would be allowed (0 when it is allowed now)."""
        now = time.monotonic()
        self._expire(now)
        wait = max(0.0, self._blocked_until - now)
        if len(self._times) >= self.limit:
            wait = max(wait, self._times[0] + self.window - now)
        if self.spacing and self._times:
            wait = max(wait, self._times[-1] + self.spacing - now)
        return wait

    async def acquire(self) -> float:
        """Wait for a free slot in the window, then take it; the slot's time is returned (see :meth:`settle`).

        Slots are taken one per turn of the event loop: fifty requests due at once (reads, starts)
        go out one per turn, each right after its slot, rather than fifty in one turn (each send
        costs the loop one to three milliseconds)."""
        async with self._lock:
            await one_per_turn()
            while True:
                wait = self.delay()
                slot = None
                if wait <= 0:
                    wait, slot = await self._claim()
                if wait <= 0:
                    taken = time.monotonic()
                    self._times.append(taken)
                    if slot is not None:
                        self._slots[taken] = slot
                    return taken
                await asyncio.sleep(wait)

    async def _claim(self) -> tuple[float, int | None]:
        """Take the slot in the shared ledger too; if the ledger cannot be reached, go on with this
        process's own window (said once in the log: the store's writes will say the rest)."""
        if self.ledger is None:
            return 0.0, None
        try:
            wait, slot = await off_thread(self.ledger.claim, self.scope, self.limit, self.shared_window,
                                          self.spacing)
        except YandexArtError as exc:
            if not self._ledger_failed:
                log.warning("%s: the shared quota could not be read (%s); counting this process's requests only",
                            self.name, exc)
            self._ledger_failed = True
            return 0.0, None
        self._ledger_failed = False
        return wait, slot

    def _in_background(self, call: Callable[..., None], *args: object) -> None:
        """A ledger write nobody waits for (a settle, a block), made in a worker thread."""
        future: asyncio.Future[None] = asyncio.ensure_future(off_thread(call, *args))
        self._background.add(future)
        future.add_done_callback(self._ledger_done)

    def _ledger_done(self, future: asyncio.Future[None]) -> None:
        self._background.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.debug("%s: a shared quota write failed: %s", self.name, future.exception())

    def settle(self, taken: float) -> None:
        """The request of the slot taken at ``taken`` was answered: count it from now. The server
        counted it when it arrived, which for a burst queued in the connection pool is later than
        the slot was taken; so the next window opens late enough for the server's count too."""
        slot = self._slots.pop(taken, None)
        if slot is not None and self.ledger is not None:
            self._in_background(self.ledger.settle, slot)
        try:
            index = self._times.index(taken)
        except ValueError:
            return  # expired already
        self._times[index] = max(taken, time.monotonic())
        self._times = collections.deque(sorted(self._times))

    def release(self, taken: float) -> None:
        """The request of the slot taken at ``taken`` never reached the service (its connection never
        opened): the slot is given back, so that a service out of reach does not spend the quota's
        window on attempts it never counted (a table of 300 rows spent three minutes so)."""
        slot = self._slots.pop(taken, None)
        if slot is not None and self.ledger is not None:
            self._in_background(self.ledger.release, slot)
        try:
            self._times.remove(taken)
        except ValueError:
            return  # expired already

    def penalize(self, seconds: float) -> None:
        """The service said 429: nobody sends through this limiter for ``seconds``."""
        until = time.monotonic() + seconds
        if until > self._blocked_until:
            log.debug("%s: quota hit, pausing everyone for %.2f s", self.name, seconds)
            self._blocked_until = until
            if self.ledger is not None:
                self._in_background(self.ledger.block, self.scope, seconds)


@dataclass(frozen=True)
class Quotas:
    """The folder's quotas (they change: configurable). Defaults: the documented ones."""

    generations_per_minute: int = 500
    reads_per_second: int = 50
    generation_window: float = 60.0
    read_window: float = 1.0


class QuotaLimiters:
    """The generation and read limiters of one endpoint and folder (shared through ``ledger`` if given)."""

    def __init__(self, quotas: Quotas, ledger: Ledger | None = None, folder_id: str | None = None) -> None:
        self.quotas = quotas
        folder = folder_id or "-"
        self.starts = SlidingWindowLimiter(quotas.generations_per_minute, quotas.generation_window, "generations",
                                           ledger=ledger, scope=f"{folder}/generations")
        self.reads = SlidingWindowLimiter(quotas.reads_per_second, quotas.read_window, "operation reads", paced=True,
                                          ledger=ledger, scope=f"{folder}/reads")


_Key = tuple[str, "str | None", Quotas, "str | None"]
_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, QuotaLimiters]]
_registry = weakref.WeakKeyDictionary()


def limiters_for(base_url: str, folder_id: str | None, quotas: Quotas, ledger: Ledger | None = None) -> QuotaLimiters:
    """One pair of limiters per (endpoint, folder, quotas, ledger) on the running loop, shared by every client."""
    per_loop = _registry.setdefault(asyncio.get_running_loop(), {})
    key = (base_url, folder_id, quotas, ledger.key if ledger is not None else None)
    if key not in per_loop:
        per_loop[key] = QuotaLimiters(quotas, ledger, folder_id)
    return per_loop[key]
