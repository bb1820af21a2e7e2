"""Joining a picture already on its way instead of paying for it again: the part of a batch's run
that waits for another run's flight (in this process) or collects another kernel's operation.

:class:`Joining` is the base of the runner's ``_Run``: the run provides what it keeps (status,
store, client, queued intents) and how it tells the face of an item's state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from ..clients.client import Progress, YandexArtClient
from ..core import errors
from ..core.redact import get_logger
from ..core.status import BatchStatus
from ..core.steps import off_thread
from ..media.image import GeneratedImage
from ..store import Store
from .arrivals import ARRIVALS, Arrival, Unseen
from .collect import resume
from .flights import Flight
from .intents import Intent
from .outcomes import final_status, settle_failure

log = get_logger("yart_jupyter.engine.joining")


class Joining:
    """How a run joins pictures on its way: waiting for a flight, collecting an operation, and the
    bookkeeping of an intent that sends nothing (its record, the status, a sweep's cell)."""

    client: YandexArtClient
    status: BatchStatus
    store: Store | None
    timeout: float | None
    notebook: str | None
    #: Intents whose start has not gone out yet.
    queued: set[str]
    #: The endpoint and folder of the run (``arrivals.place``).
    where: str

    def progress(self, event: Progress) -> None:
        raise NotImplementedError

    async def running(self, index: int, operation_id: str) -> None:
        """Tell the face that item ``index`` waits for ``operation_id`` now."""
        raise NotImplementedError

    async def join_flight(self, index: int, intent: Intent, flight: Flight) -> GeneratedImage | None:
        """Wait for the picture another run of this process is making of the same request; collect its
        operation if that run stopped waiting. None: it ended with nothing to collect (ask anew)."""
        await self.unqueue(intent)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        await self.within(deadline, [flight.started, flight.ended], None)
        operation_id = flight.started.result() if flight.started.done() else None
        if operation_id is not None:
            await self.joined(index, intent, operation_id)
        await self.within(deadline, [flight.ended], operation_id)
        landing = flight.ended.result()
        if landing.image is not None:
            image = dataclasses.replace(landing.image, saved=[], _previews={})
            if image.cached:  # the owner found it in the store when its turn came: so does this one
                self.status.answered_from_store(intent.key)
                return image
            await self.follow(index, intent, operation_id, image.operation_id)
            self.progress(Progress("done", image.operation_id, 0.0))
            return image
        if landing.running and landing.operation_id is not None:
            await self.follow(index, intent, operation_id, landing.operation_id)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            collected = await self.fetch(landing.operation_id, left)
            if collected is not None:
                return collected
            operation_id = landing.operation_id  # its owner's user cancelled it: this run still wants it
        await self.requeue(intent, operation_id)
        return None

    async def take(self, index: int, intent: Intent, unseen: Unseen) -> GeneratedImage | None:
        """Take a picture of the same request (no seed chosen) that nobody has seen instead of paying
        for another: the answer a cancelled run's Images API request brought (or is bringing), or the
        operation a run stopped waiting for. None: there is no picture after all (ask anew). A cancel
        of this run leaves it for the next ask."""
        image = await self._take(index, intent, unseen)
        if image is not None:
            self.status.unseen_taken += 1  # said apart from joins of a run still going
        return image

    async def _take(self, index: int, intent: Intent, unseen: Unseen) -> GeneratedImage | None:
        if not isinstance(unseen, Arrival):
            try:
                return await self.collect(index, intent, unseen, None)
            except asyncio.CancelledError:
                ARRIVALS.abandon(intent.request, unseen, self.where)
                raise
            except errors.YandexArtError as exc:
                if exc.operation_id != unseen or final_status(exc) is None:
                    raise
                await settle_failure(self.store, exc)  # it failed: recorded so, and this ask makes its own
                await self.requeue(intent, unseen)
                return None
        await self.unqueue(intent)
        await self.joined(index, intent, unseen.picture_id)
        if not unseen.task.done():  # on this loop (claim saw to it)
            try:
                await asyncio.wait([unseen.task])
            except asyncio.CancelledError:
                ARRIVALS.put_back(unseen)
                raise
        if unseen.task.cancelled() or unseen.task.exception() is not None:
            await self.requeue(intent, unseen.picture_id)
            return None
        self.progress(Progress("done", unseen.picture_id, 0.0))
        return dataclasses.replace(unseen.task.result(), saved=[], _previews={})

    async def within(self, deadline: float | None, futures: list[asyncio.Future[Any]],
                     operation_id: str | None) -> None:
        """Wait until one of ``futures`` is done (never cancelling them: they are the owner's), or
        raise the timeout a wait of one's own would at ``deadline``."""
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        done, _ = await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            where = errors.collect_later(operation_id) if operation_id else "The history shows it when it arrives"
            raise errors.GenerationTimeoutError(
                f"Gave up waiting after {self.timeout:g} s; another run of this process is still making the "
                "same picture", operation_id=operation_id, hint=where)

    async def collect(self, index: int, intent: Intent, operation_id: str,
                      flight: Flight | None) -> GeneratedImage | None:
        """Collect the operation of the same picture the store has on its way (another kernel's, a
        teammate's) instead of paying for it again. None: the service does not have it (an embedded
        emulator's operation of another process), or its owner cancelled it: the intent is sent after all."""
        await self.unqueue(intent)
        await self.joined(index, intent, operation_id)
        if flight is not None:
            flight.start(operation_id)
        image = await self.fetch(operation_id, self.timeout)
        if image is None:
            await self.requeue(intent, operation_id)
        return image

    async def fetch(self, operation_id: str, timeout: float | None) -> GeneratedImage | None:
        """Collect an operation another run started; None when it is not to be had after all (the
        service does not have it, or its owner cancelled it): the joiner asks for its own."""
        try:
            return await resume(self.client, operation_id, store=self.store, timeout=timeout,
                                on_progress=self.progress)
        except (errors.OperationNotFoundError, errors.OperationCancelledError) as exc:
            log.info("%s is not to be collected: %s", operation_id, exc)
            return None

    async def unqueue(self, intent: Intent) -> None:
        """An intent that joins a picture on its way sends nothing: its ``queued`` record goes (a
        ``resume --all`` would send it), and a cancel has nothing of it to settle."""
        self.queued.discard(intent.key)
        if self.store is not None:
            await off_thread(self.store.forget_intent, intent.key)

    async def repoint(self, intent: Intent, image: GeneratedImage) -> GeneratedImage:
        """A sweep that named the intent by its key names the operation it joined (its record went)."""
        if self.store is not None:
            await off_thread(self.store.repoint, intent.key, image.operation_id)
        return image

    async def requeue(self, intent: Intent, operation_id: str | None) -> None:
        """What an intent joined ended with nothing to collect: it is recorded again, to be sent."""
        self.status.rejoined(intent.key, operation_id)
        self.queued.add(intent.key)
        if self.store is not None:
            await off_thread(self.store.record_queued, intent.request, intent.key, notebook=self.notebook)

    async def follow(self, index: int, intent: Intent, was: str | None, now: str) -> None:
        """A joiner's status follows the operation the flight ended on (its owner may have started its
        own after one it could not collect)."""
        if was != now:
            if was is not None:
                self.status.rejoined(intent.key, was)
            await self.joined(index, intent, now)

    async def joined(self, index: int, intent: Intent, operation_id: str) -> None:
        self.status.joined(intent.key, operation_id)
        await self.running(index, operation_id)
