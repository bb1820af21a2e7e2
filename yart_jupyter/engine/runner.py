"""Running a batch's items concurrently: each generated, collected or read from the store, and recorded.

The store is kept up to date as the run goes (every operation id committed before its wait starts,
every image written before it is returned); a cancellation cancels every local task and is
re-raised, leaving the operations still running on the server ``pending`` in the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from ..clients.client import Progress, YandexArtClient
from ..clients.durations import ANSWERS, DURATIONS
from ..clients.images_api import images_id
from ..core import errors
from ..core.redact import get_logger
from ..core.request import GenerationRequest
from ..core.status import BatchStatus
from ..core.steps import awaited, off_thread
from ..media.image import GeneratedImage, ImageSet
from ..store import Record, Store, request_key
from .arrivals import ARRIVALS, place
from .collect import resume, share_quota
from .flights import FLIGHTS, Flight, Landing
from .intents import Batch, Cached, Intent, Item, found_meanwhile, prepare
from .joining import Joining
from .outcomes import Refusals, cancel_and_settle, final_status, settle_failure

log = get_logger("yart_jupyter.engine.runner")

StatusCallback = Callable[[BatchStatus], None]
#: Told of each item's change of state; plain or async (the batch's item waits for it).
ItemCallback = Callable[["ItemEvent"], "Awaitable[None] | None"]
#: How long ``--background`` waits for its start requests to go out before it returns.
START_WAIT = 2.0
#: The state an item of a batch moves to.
ItemState = Literal["running", "done", "failed"]


class Meanwhile(Exception):
    """Raised where a start was about to go out: the store has its picture now (another run made it
    while this one waited: answered from there), or an operation of it (another run started it:
    collected instead); nothing is sent."""

    def __init__(self, found: Record | str) -> None:
        super().__init__(found if isinstance(found, str) else found.operation_id)
        self.found = found


@dataclass(frozen=True)
class ItemEvent:
    """One item of a batch changed state: ``running`` (its operation started), ``done`` or ``failed``."""

    index: int
    state: ItemState
    operation_id: str | None = None
    image: GeneratedImage | None = None
    error: errors.YandexArtError | None = None


class _Run(Joining):
    """One run of a batch's items: the status it keeps, the store it records in, what it tells the face
    (joining pictures already on its way: :class:`.joining.Joining`)."""

    def __init__(self, client: YandexArtClient, status: BatchStatus, store: Store | None, *, timeout: float | None,
                 notebook: str | None, on_update: StatusCallback | None,
                 on_item: ItemCallback | None, queued: set[str],
                 prepare_picture: Callable[[GeneratedImage], None] | None = None,
                 refusals: Refusals | None = None, join: bool = True) -> None:
        self.client, self.status, self.store, self.timeout, self.notebook = client, status, store, timeout, notebook
        #: Join a picture already on its way instead of paying for it again (not with ``use_cache=False``).
        self.join = join
        #: The endpoint and folder its pictures are made at (a picture nobody has seen is taken there only).
        self.where = place(client.settings.base_url, client.settings.folder_id)
        #: What the service refused for a whole kind of request: no more of that kind is sent.
        self.refusals = refusals or Refusals()
        self.on_update, self.on_item, self.prepare_picture = on_update, on_item, prepare_picture
        #: Intents whose start has not gone out yet (settled as cancelled if the run is cancelled).
        self.queued = queued
        #: What each wait saw (see Progress.observed), kept with the record for the next start-up.
        self.observed: dict[str, tuple[float, float | None]] = {}

    def notify(self) -> None:
        if self.on_update is not None:
            self.on_update(self.status)

    async def tell(self, event: ItemEvent) -> None:
        if self.on_item is not None:
            await awaited(self.on_item(event))

    def progress(self, event: Progress) -> None:
        if event.phase == "retry":
            self.status.retries += 1
        if event.phase == "done" and event.operation_id:
            self.status.finished_ids.add(event.operation_id)
        if event.observed is not None and event.operation_id:
            self.observed[event.operation_id] = event.observed
        self.notify()

    async def generate(self, index: int, intent: Intent) -> GeneratedImage:
        """Make the picture of ``intent``: join it where it is on its way already (another run of
        this process makes it, or the store has its pending operation), else send its start."""
        key = request_key(intent.request)
        unseen = ARRIVALS.claim(intent.request, self.where) if self.join and not intent.resend else None
        if unseen is not None:  # a picture an interrupted run paid for (no seed chosen): nobody has seen it
            image = await self.take(index, intent, unseen)
            if image is not None:
                return await self.repoint(intent, image)
        flight: Flight | None = None
        while self.join and intent.request.reproducible and not intent.resend:
            flight, mine = FLIGHTS.board(key)
            if mine:
                break
            image = await self.join_flight(index, intent, flight)
            if image is not None:
                return await self.repoint(intent, image)
            flight = None
        landing = Landing()
        try:
            tried: set[str] = set()  # operations on their way that the service turned out not to have
            joins, image = intent.joins, None
            while image is None:
                if joins is not None:
                    tried.add(joins)
                    image = await self.collect(index, intent, joins, flight)
                    joins = None
                    if image is not None:
                        await self.repoint(intent, image)
                    continue
                found = await self.send(index, intent, flight, tried)
                joins, image = (found, None) if isinstance(found, str) else (None, found)
            landing = Landing(image, image.operation_id)
            return image
        except asyncio.CancelledError:
            operation_id = flight.operation_id if flight is not None else None
            landing = Landing(None, operation_id, running=operation_id is not None)
            raise
        except errors.YandexArtError as exc:  # collectable unless the operation itself ended so
            operation_id = exc.operation_id or (flight.operation_id if flight is not None else None)
            landing = Landing(None, operation_id, running=operation_id is not None and final_status(exc) is None)
            raise
        finally:
            if flight is not None:
                FLIGHTS.land(key, flight, landing)

    async def running(self, index: int, operation_id: str) -> None:
        await self.tell(ItemEvent(index, "running", operation_id))
        self.notify()

    async def send(self, index: int, intent: Intent, flight: Flight | None,
                   tried: Collection[str] = ()) -> GeneratedImage | str:
        """Send the intent's start (with its idempotency key), wait for the picture, record it. Right
        before it goes out, the store is asked once more: a picture another run made meanwhile is
        answered from there; an operation of it another run started meanwhile (not one ``tried``) is
        returned, to collect instead."""
        status, store = self.status, self.store
        answered: str | None = None  # the operation its start was answered with

        async def submitting() -> None:  # right before the request goes out, which waits for the write
            self.refusals.sending(intent.key, intent.request)  # refused meanwhile for another of its kind: not sent
            if store is not None and self.join and intent.request.reproducible:
                found = await off_thread(found_meanwhile, store, intent.request, tried)
                if found is not None:  # another run made it, or started it, while this one waited: not sent
                    raise Meanwhile(found)
            if store is not None:
                await off_thread(store.mark_submitting, intent.key)  # cancelled meanwhile: still queued, unsent
            self.queued.discard(intent.key)
            status.submitting(intent.key, synchronous=intent.request.api == "images")

        async def started(operation_id: str, request: GenerationRequest) -> None:  # committed before any wait
            nonlocal answered
            answered = operation_id
            status.answered(intent.key, operation_id)
            if flight is not None:  # before the write: a cancel during it still leaves the id to its joiners
                flight.start(operation_id)
            if store is not None:
                await off_thread(store.record_started, operation_id, request, notebook=self.notebook, key=intent.key)
            await self.running(index, operation_id)

        async def make() -> GeneratedImage:  # the picture, recorded in the store before it is returned
            image = await self.client.generate(intent.request, timeout=self.timeout, on_progress=self.progress,
                                               on_started=started, on_submitting=submitting,
                                               idempotency_key=intent.key)
            if store is not None:
                await off_thread(store.record_done, image, self.observed.get(image.operation_id))
            return image

        self.refusals.check(intent.request)
        self.refusals.waiting(intent.key, intent.request)
        try:
            if intent.request.api == "images":  # billed once out: received and kept even if this run is cancelled
                return await ARRIVALS.see_through(
                    intent.key, intent.request, images_id(intent.key), make(), where=self.where,
                    sent=lambda: intent.key not in self.queued,
                    settle=lambda exc: settle_failure(store, exc, intent))
            return await make()
        except Meanwhile as meanwhile:
            if isinstance(meanwhile.found, str):
                return meanwhile.found
            await self.unqueue(intent)
            status.answered_from_store(intent.key)
            return await self.repoint(intent, await asyncio.to_thread(meanwhile.found.to_image, cached=True))
        except asyncio.CancelledError:
            if intent.key in ARRIVALS.intents():  # its answer still comes, into the store
                status.arriving[intent.key] = images_id(intent.key)
            elif answered is not None and intent.request.api == "operations":  # still running: the next ask takes it
                ARRIVALS.abandon(intent.request, answered, self.where)
            stopped = self.refusals.stopped(intent.key)
            if stopped is None:
                raise
            raise stopped from None
        finally:
            self.refusals.stopped(intent.key)  # no longer waiting, whatever happened

    def keep_lower_bound(self, operation_id: str) -> None:
        """A wait ended before its operation finished: store how long it was seen running."""
        seen = self.observed.get(operation_id)
        if self.store is not None and seen is not None and seen[1] is None and seen[0] > 0:
            self.store.record_running(operation_id, seen[0])

    def keep_lower_bounds(self, operation_ids: Sequence[str]) -> None:
        for operation_id in operation_ids:
            self.keep_lower_bound(operation_id)

    async def one(self, index: int, item: Item) -> GeneratedImage:
        try:
            if isinstance(item, Cached):
                image = await asyncio.to_thread(item.record.to_image, cached=True)
                self.status.from_store()
            elif isinstance(item, str):
                await self.tell(ItemEvent(index, "running", item))
                image = await resume(self.client, item, store=self.store, timeout=self.timeout,
                                     on_progress=self.progress)
            else:
                assert isinstance(item, Intent), item
                image = await self.generate(index, item)
            if self.prepare_picture is not None:
                try:
                    await asyncio.to_thread(self.prepare_picture, image)
                except Exception as exc:  # a picture the view cannot draw is still kept and returned
                    log.warning("could not prepare %s for display: %s", image.operation_id, exc)
            await self.tell(ItemEvent(index, "done", image.operation_id, image=image))
            if isinstance(item, Cached):
                self.notify()
            return image
        except errors.YandexArtError as exc:
            await self.failed(index, item, exc)
            raise

    async def failed(self, index: int, item: Item, exc: errors.YandexArtError) -> None:
        intent = item if isinstance(item, Intent) else None
        if isinstance(exc, errors.GenerationTimeoutError) and exc.operation_id:
            await off_thread(self.keep_lower_bound, exc.operation_id)
            if intent is not None:  # it goes on: the next ask of the same request collects it
                ARRIVALS.abandon(intent.request, exc.operation_id, self.where)
        if intent is not None and not exc.operation_id:
            self.refusals.note(exc, intent.request)
        self.status.failed_item(key=intent.key if intent is not None else None, operation_id=exc.operation_id,
                                answer_lost=isinstance(exc, errors.AnswerLostError),
                                settled=final_status(exc) is not None)
        await settle_failure(self.store, exc, intent)
        await self.tell(ItemEvent(index, "failed", exc.operation_id, error=exc))
        self.notify()


async def run_batch(
    client: YandexArtClient,
    items: Sequence[Item],
    *,
    status: BatchStatus | None = None,
    timeout: float | None = None,
    on_update: StatusCallback | None = None,
    store: Store | None = None,
    use_cache: bool = True,
    reuse_samples: bool = False,
    notebook: str | None = None,
    on_item: ItemCallback | None = None,
    prepare_picture: Callable[[GeneratedImage], None] | None = None,
    refusals: Refusals | None = None,
) -> tuple[ImageSet, list[errors.YandexArtError]]:
    """Generate (or collect) every item concurrently; return the images and the errors, in order.

    A request with an explicit seed that the store already answered is served from it (no API
    call) unless ``use_cache`` is false; so is a seedless one's sample with ``reuse_samples``.
    ``prepare_picture`` runs in a worker thread for each picture before ``on_item`` tells of it (a
    view's previews: CPU work kept off the event loop). Once the service refuses a start for a whole
    kind of request (``refusals``: this run's own, or one shared by the runs of a table), the rest of
    that kind are not sent. A cancellation cancels every local task and is re-raised; the operations
    still running on the server stay ``pending`` in the store and in ``status``.
    """
    status = status or BatchStatus(len(items))
    share_quota(client, store)
    if any(isinstance(item, GenerationRequest) for item in items):
        items = prepare(store, Batch(items, use_cache=use_cache, reuse_samples=reuse_samples, notebook=notebook),
                        status).items
    run = _Run(client, status, store, timeout=timeout, notebook=notebook, on_update=on_update, on_item=on_item,
               queued={item.key for item in items if isinstance(item, Intent)}, prepare_picture=prepare_picture,
               refusals=refusals, join=use_cache)
    tasks: list[asyncio.Future[GeneratedImage]] = []
    try:  # from here a cancel settles every intent not sent (each is recorded queued already)
        if store is not None:
            await asyncio.to_thread(_learn_once, store)
        tasks = [asyncio.ensure_future(run.one(index, item)) for index, item in enumerate(items)]
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    except asyncio.CancelledError:
        await cancel_and_settle(tasks, store, run.queued)
        run.on_update = run.on_item = None  # an answer still arriving (ARRIVALS) no longer redraws the face
        await off_thread(run.keep_lower_bounds, list(status.pending_ids))
        raise
    images = ImageSet()
    failures: list[errors.YandexArtError] = []
    for outcome in outcomes:
        if isinstance(outcome, GeneratedImage):
            images.append(outcome)
        elif isinstance(outcome, errors.YandexArtError):
            failures.append(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
    run.notify()
    return images, failures


def _learn_once(store: Store) -> None:
    """What the store's earlier waits saw, read once per store: the operations' durations (the read
    schedule's and the time left's) and the Images API's answer times (the time left's)."""
    DURATIONS.learn_once(str(store.home), store.durations)
    ANSWERS.learn_once(str(store.home), store.answer_times)


async def wait_for_starts(status: BatchStatus, limit: float = START_WAIT) -> None:
    """Wait (at most ``limit`` seconds) until every start request of a batch went out and was answered
    (a synchronous request's answer is its picture: it counts once it went out)."""
    deadline = time.monotonic() + limit
    while status.unsent > len(status.awaiting_answer) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
