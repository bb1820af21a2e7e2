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
from dataclasses import dataclass

from ..core.redact import get_logger
from ..core.steps import one_per_turn

log = get_logger("yart_jupyter.clients.limits")

#: Added to each window (seconds, plus 2% of the window): our clock and the server's never quite
#: agree about when a request counted, and concurrent requests may arrive out of order.
WINDOW_MARGIN = 0.05
WINDOW_SLACK = 0.02


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions in any ``window`` seconds; ``penalize`` pauses everyone."""

    def __init__(self, limit: int, window: float, name: str = "requests", *, paced: bool = False) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a limiter needs a positive limit and window")
        self.limit = limit
        self.window = window * (1 + WINDOW_SLACK) + WINDOW_MARGIN
        self.name = name
        self._times: collections.deque[float] = collections.deque()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()
        #: With ``paced``, acquisitions are also spread at least window/limit apart: a burst would
        #: reach the server out of order and could overrun its window even when ours is respected.
        self.spacing = self.window / limit if paced else 0.0

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
                if wait <= 0:
                    taken = time.monotonic()
                    self._times.append(taken)
                    return taken
                await asyncio.sleep(wait)

    def settle(self, taken: float) -> None:
        """The request of the slot taken at ``taken`` was answered: count it from now. The server
        counted it when it arrived, which for a burst queued in the connection pool is later than
        the slot was taken; so the next window opens late enough for the server's count too."""
        try:
            index = self._times.index(taken)
        except ValueError:
            return  # expired already
        self._times[index] = max(taken, time.monotonic())
        self._times = collections.deque(sorted(self._times))

    def penalize(self, seconds: float) -> None:
        """The service said 429: nobody sends through this limiter for ``seconds``."""
        until = time.monotonic() + seconds
        if until > self._blocked_until:
            log.debug("%s: quota hit, pausing everyone for %.2f s", self.name, seconds)
            self._blocked_until = until


@dataclass(frozen=True)
class Quotas:
    """The folder's quotas (they change: configurable). Defaults: the documented ones."""

    generations_per_minute: int = 500
    reads_per_second: int = 50
    generation_window: float = 60.0
    read_window: float = 1.0


class QuotaLimiters:
    """The generation and read limiters of one endpoint and folder."""

    def __init__(self, quotas: Quotas) -> None:
        self.quotas = quotas
        self.starts = SlidingWindowLimiter(quotas.generations_per_minute, quotas.generation_window, "generations")
        self.reads = SlidingWindowLimiter(quotas.reads_per_second, quotas.read_window, "operation reads", paced=True)


_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str | None, Quotas], QuotaLimiters]]
_registry = weakref.WeakKeyDictionary()


def limiters_for(base_url: str, folder_id: str | None, quotas: Quotas) -> QuotaLimiters:
    """One pair of limiters per (endpoint, folder, quotas) on the running loop, shared by every client."""
    per_loop = _registry.setdefault(asyncio.get_running_loop(), {})
    key = (base_url, folder_id, quotas)
    if key not in per_loop:
        per_loop[key] = QuotaLimiters(quotas)
    return per_loop[key]
