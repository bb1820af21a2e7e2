"""Answers already paid for, received to the end: an Images API request that went out is not dropped.

The Images API bills a request when it arrives and keeps nothing to collect, so a run cancelled while
its synchronous request is out (an interrupt, ``%yandexart cancel``, the form's Cancel) would pay for
a picture and lose it. Instead the request's answer goes on arriving in the background, on the same
event loop, and its picture is recorded in the store under its ``img-…`` id; ``resume`` of that id
waits for it. A request still waiting for its turn (nothing sent) is cancelled as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..core import errors
from ..core.redact import get_logger
from ..media.image import GeneratedImage

log = get_logger("yart_jupyter.engine.arrivals")


@dataclass(frozen=True)
class Arrival:
    """A synchronous request whose run was cancelled after it went out: its answer still to come."""

    key: str
    picture_id: str
    task: asyncio.Task[GeneratedImage]


class Arrivals:
    """The process's answers still arriving after their run was cancelled, by picture id."""

    def __init__(self) -> None:
        self._arriving: dict[str, Arrival] = {}

    async def see_through(
        self, key: str, picture_id: str, work: Coroutine[Any, Any, GeneratedImage], *,
        sent: Callable[[], bool], settle: Callable[[errors.YandexArtError], Awaitable[None]],
    ) -> GeneratedImage:
        """Await ``work`` (a synchronous request and the recording of its picture). Cancelled once
        ``sent()`` says the request went out, ``work`` goes on in the background and the caller's
        cancellation is re-raised; ``settle`` then records a failure, since nobody awaits it."""
        detached = False

        async def receive() -> GeneratedImage:
            try:
                return await work
            except errors.YandexArtError as exc:
                if detached:
                    await settle(exc)
                raise

        task = asyncio.ensure_future(receive())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() or not sent():  # nothing went out (or all is over): cancelled as before
                task.cancel()
                await asyncio.wait([task])
                if not task.cancelled() and task.exception() is not None:
                    log.debug("%s ended while cancelled: %s", picture_id, task.exception())
                raise
            detached = True
            self._arriving[picture_id] = Arrival(key, picture_id, task)
            task.add_done_callback(lambda done: self._landed(picture_id, done))
            raise

    def _landed(self, picture_id: str, task: asyncio.Task[GeneratedImage]) -> None:
        self._arriving.pop(picture_id, None)
        if task.cancelled():
            log.debug("%s: its answer was given up (the event loop closed)", picture_id)
        elif task.exception() is not None:
            log.debug("%s arrived with an error: %s", picture_id, task.exception())
        else:
            log.debug("%s arrived after its run was cancelled: kept in the store", picture_id)

    def arriving(self) -> list[Arrival]:
        """The answers still arriving on the running loop."""
        loop = asyncio.get_running_loop()
        return [a for a in self._arriving.values() if a.task.get_loop() is loop and not a.task.done()]

    def intents(self) -> set[str]:
        """The intents whose answers are still arriving (any loop): not to be sent again meanwhile."""
        return {a.key for a in self._arriving.values()}

    async def wait_for(self, picture_id: str) -> None:
        """If ``picture_id`` is still arriving on the running loop, wait until it is in (or failed: its
        error is raised); a cancellation of this wait leaves the answer arriving."""
        arrival = self._arriving.get(picture_id)
        if arrival is not None and arrival.task.get_loop() is asyncio.get_running_loop():
            await asyncio.shield(arrival.task)

    async def wait_all(self, limit: float) -> list[Arrival]:
        """Wait (at most ``limit`` seconds) for every answer arriving on the running loop; those still
        out are returned (a command ending, which would drop them)."""
        deadline = time.monotonic() + limit
        while (left := self.arriving()) and time.monotonic() < deadline:
            await asyncio.wait([a.task for a in left], timeout=deadline - time.monotonic())
        return self.arriving()


#: The process's answers still arriving (every face's runs share them).
ARRIVALS = Arrivals()
