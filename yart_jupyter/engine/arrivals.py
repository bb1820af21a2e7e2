"""Answers already paid for, received to the end: an Images API request that went out is not dropped.

The Images API bills a request when it arrives and keeps nothing to collect, so a run cancelled while
its synchronous request is out (an interrupt, ``%yandexart cancel``, the form's Cancel) would pay for
a picture and lose it. Instead the request's answer goes on arriving in the background, on the same
event loop, and its picture is recorded in the store under its ``img-…`` id; ``resume`` of that id
waits for it. A request still waiting for its turn (nothing sent) is cancelled as before.

Nobody has seen such a picture yet: the next run of this process that asks for the same request (the
cell run again, the batch run again) takes it instead of paying for another (:meth:`Arrivals.claim`).
So it goes for an operation of a request without a chosen seed that a run stopped waiting for (an
interrupt, ``--timeout``): the next ask without a seed collects it rather than starting another
(a seeded request's operation is found by its request, see :mod:`.flights` and the store).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..core import errors
from ..core.redact import get_logger
from ..core.request import GenerationRequest
from ..media.image import GeneratedImage
from ..store import request_key

log = get_logger("yart_jupyter.engine.arrivals")


#: How many pictures nobody has seen are kept for a later run to take (by id: the store holds them);
#: older ones stay in the store only (``resume``, ``resume --all``).
KEEP_UNCLAIMED = 32


def sample_key(request: GenerationRequest, where: str) -> str:
    """What makes two requests the same ask when no seed was chosen: all but the seed, on one service
    and folder (``where``: a picture of another endpoint or folder is not to be had here)."""
    return f"{where} {request_key(dataclasses.replace(request, seed=None))}"


def place(base_url: str | None, folder_id: str | None) -> str:
    """The ``where`` of :func:`sample_key`: the endpoint and folder a run's settings name."""
    return f"{base_url or ''}|{folder_id or ''}"


@dataclass
class Arrival:
    """A synchronous request whose run was cancelled after it went out: its answer still to come."""

    key: str
    #: The request's :func:`sample_key`: a later ask of the same request may take it.
    request: str
    picture_id: str
    task: asyncio.Task[GeneratedImage]
    #: Delivered where its run would have put it, once in (:meth:`Arrivals.then`).
    delivered: bool = False


#: A picture nobody has seen: an Images API answer (arriving or in), or an operation left running.
Unseen = Arrival | str


class Arrivals:
    """The process's answers still arriving after their run was cancelled, by picture id; and the
    pictures no run has taken yet (those, and operations runs stopped waiting for), by sample key."""

    def __init__(self) -> None:
        self._arriving: dict[str, Arrival] = {}
        self._unclaimed: dict[str, list[Unseen]] = {}

    async def see_through(
        self, key: str, request: GenerationRequest, picture_id: str, work: Coroutine[Any, Any, GeneratedImage], *,
        where: str, sent: Callable[[], bool], settle: Callable[[errors.YandexArtError], Awaitable[None]],
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
            failed = task.done() and (task.cancelled() or task.exception() is not None)
            if failed or not sent():  # nothing went out, or nothing came: cancelled as before
                task.cancel()
                await asyncio.wait([task])
                if not task.cancelled() and task.exception() is not None:
                    log.debug("%s ended while cancelled: %s", picture_id, task.exception())
                raise
            detached = True
            arrival = self._arriving[picture_id] = Arrival(key, sample_key(request, where), picture_id, task)
            self.put_back(arrival)
            task.add_done_callback(lambda done: self._landed(arrival, done))
            raise

    def abandon(self, request: GenerationRequest, operation_id: str, where: str) -> None:
        """A run stopped waiting for ``operation_id``, an operation of ``request`` (no seed was
        chosen) at ``where``: the next ask of the same request there collects it instead of starting another."""
        if not request.reproducible:
            self.put_back(operation_id, sample_key(request, where))

    def put_back(self, unseen: Unseen, request: str | None = None) -> None:
        """``unseen`` is for a later ask to take again (its taker was cancelled before it had it)."""
        key = unseen.request if isinstance(unseen, Arrival) else request
        assert key is not None
        kept = self._unclaimed.setdefault(key, [])
        if unseen not in kept:
            kept.append(unseen)
        while sum(map(len, self._unclaimed.values())) > KEEP_UNCLAIMED:  # the oldest request's first goes
            first = next(iter(self._unclaimed))
            self._unclaimed[first].pop(0)
            if not self._unclaimed[first]:
                del self._unclaimed[first]

    def _landed(self, arrival: Arrival, task: asyncio.Task[GeneratedImage]) -> None:
        if arrival.task is not task:  # a delivery was chained to it (:meth:`then`): that one ends it
            return
        self._arriving.pop(arrival.picture_id, None)
        if task.cancelled() or task.exception() is not None:
            self._drop(arrival)
            log.debug("%s: no picture after all (%s)", arrival.picture_id,
                      "the event loop closed" if task.cancelled() else task.exception())
            return
        log.debug("%s arrived after its run was cancelled: kept in the store", arrival.picture_id)
        kept = self._unclaimed.get(arrival.request, [])
        for place, unseen in enumerate(kept):
            if unseen is arrival:  # in the store now: a later ask takes it from there (no picture held here)
                kept[place] = arrival.picture_id

    def _drop(self, unseen: Unseen, request: str | None = None) -> None:
        key = unseen.request if isinstance(unseen, Arrival) else request
        kept = self._unclaimed.get(key or "", [])
        if unseen in kept:
            kept.remove(unseen)
        if not kept:
            self._unclaimed.pop(key or "", None)

    def claimable(self, request: GenerationRequest, where: str) -> int:
        """How many pictures nobody has seen the next asks of ``request`` would take (a dry run's count)."""
        if request.reproducible:
            return 0
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no loop: only what is in already counts
            loop = None
        return sum(1 for unseen in self._unclaimed.get(sample_key(request, where), []) if _takeable(unseen, loop))

    def claim(self, request: GenerationRequest, where: str) -> Unseen | None:
        """A picture of ``request`` (no seed chosen) that nobody has seen: an answer that arrived, or is
        arriving on the running loop, for a run that was cancelled, or an operation a run stopped
        waiting for; taken by the caller, so no other run gets it too."""
        if request.reproducible:
            return None
        key, loop = sample_key(request, where), asyncio.get_running_loop()
        for unseen in self._unclaimed.get(key, []):
            if _takeable(unseen, loop):
                self._drop(unseen, key)
                return unseen
        return None

    def seen(self, picture_id: str) -> None:
        """``picture_id`` was asked for by its id (``resume``): it is no longer for a later ask to take."""
        for key, kept in list(self._unclaimed.items()):
            for unseen in list(kept):
                if unseen == picture_id or (isinstance(unseen, Arrival) and unseen.picture_id == picture_id):
                    self._drop(unseen, key)

    def then(self, picture_id: str, deliver: Callable[[GeneratedImage], Awaitable[None]]) -> None:
        """Once ``picture_id`` is in, ``deliver`` it where its run would have (a batch row's file);
        the picture is then taken, and waits for it wait for the delivery too."""
        arrival = self._arriving.get(picture_id)
        if arrival is None:
            return
        self._drop(arrival)
        arrival.delivered = True
        received = arrival.task

        async def chained() -> GeneratedImage:
            image = await received
            await deliver(image)
            return image

        arrival.task = asyncio.ensure_future(chained())
        arrival.task.add_done_callback(lambda done: self._landed(arrival, done))

    def clear(self) -> None:
        """Forget every answer and picture (what a new process starts with)."""
        self._arriving.clear()
        self._unclaimed.clear()

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


def _takeable(unseen: Unseen, loop: asyncio.AbstractEventLoop | None) -> bool:
    """An operation id always; an answer once in with a picture, or still arriving on ``loop``."""
    if not isinstance(unseen, Arrival):
        return True
    task = unseen.task
    if task.done():
        return not task.cancelled() and task.exception() is None
    return task.get_loop() is loop


#: The process's answers still arriving (every face's runs share them).
ARRIVALS = Arrivals()
