"""The shared engine under every face: a batch is run, recorded and presented here, once.

A face (the magic's status line, the form's job card, a plain script) passes a :class:`BatchView`
and gets the images back; the engine keeps the store up to date (every operation id committed
before its wait starts, every image written before it is returned) and saves ``out`` files.
Cancellation passes through as :class:`asyncio.CancelledError`: only the notebook face turns it
into a message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..clients.client import Progress, YandexArtClient
from ..clients.durations import DURATIONS
from ..core import errors
from ..core.redact import get_logger
from ..core.request import GenerationRequest
from ..core.status import BatchStatus
from ..media.image import GeneratedImage, ImageSet
from ..media.outputs import save_all
from ..store import Record, Store, request_key

log = get_logger("yart_jupyter.engine")

StatusCallback = Callable[[BatchStatus], None]
#: How long ``--background`` waits for its start requests to go out before it returns.
START_WAIT = 2.0


@dataclass(frozen=True)
class Intent:
    """A generation recorded as asked for: its request and the idempotency key its start carries.

    ``resend``: its start went out before and its answer was never recorded (after a crash); it
    goes out again with the same key, which the service deduplicates on.
    """

    request: GenerationRequest
    key: str
    resend: bool = False


@dataclass(frozen=True)
class Cached:
    """A request the local store has already answered (no API call)."""

    record: Record


#: A batch item: a request to generate (made an Intent by :func:`prepare`), an operation id to
#: collect, or a stored answer.
Item = GenerationRequest | Intent | Cached | str


@dataclass(frozen=True)
class ItemEvent:
    """One item of a batch changed state: ``running`` (its operation started), ``done`` or ``failed``."""

    index: int
    state: str
    operation_id: str | None = None
    image: GeneratedImage | None = None
    error: errors.YandexArtError | None = None


class BatchView(Protocol):
    """Where a batch shows itself while it runs and when it ends."""

    def progress(self, status: BatchStatus) -> None:
        """The status changed (called often; throttle if drawing is costly)."""

    def item(self, event: ItemEvent) -> None:
        """One item changed state (a sweep's grid shows each cell's own state; others may ignore it)."""

    def finished(self, images: ImageSet, failures: Sequence[errors.YandexArtError], notes: Sequence[str]) -> None:
        """The batch ended: its pictures, a line per failure, and notes such as saved files."""

    def stopped(self, status: BatchStatus) -> None:
        """The batch was interrupted or cancelled; ``status`` knows what still runs on the server."""


@dataclass(frozen=True)
class Batch:
    """What to run: requests and/or operation ids to collect, with the cell's or form's options."""

    items: Sequence[Item]
    timeout: float | None = None
    use_cache: bool = True
    out: str | None = None
    notebook: str | None = None
    #: Extra fields ``out`` may name, per item (a sweep's axis values: ``--out {style}-{seed}.jpg``).
    fields: Sequence[dict[str, str]] = ()


def prepare(store: Store | None, batch: Batch, status: BatchStatus) -> Batch:
    """Record every requested generation before anything is sent, synchronously, on the caller's turn.

    A face calls it before it hands control back (a background cell, the form's click), so a
    kernel that dies right after still has a ``queued`` record of each, with the idempotency key
    its start will carry. Requests the store already answered become :class:`Cached` items.
    """
    items: list[Item] = []
    asked = [item for item in batch.items if isinstance(item, GenerationRequest)]
    cached = store.find_many([r for r in asked if r.seed_was_given], ("done",)) \
        if store is not None and batch.use_cache else {}
    queued: list[tuple[GenerationRequest, str]] = []
    for item in batch.items:
        if isinstance(item, GenerationRequest):
            record = cached.get(request_key(item)) if item.seed_was_given else None
            if record is not None:
                items.append(Cached(record))
                continue
            key = str(uuid.uuid4())
            queued.append((item, key))
            item = Intent(item, key)
        if isinstance(item, Intent):
            status.unsent += 1
            status.keys.append(item.key)
        items.append(item)
    if store is not None:
        store.record_queued_many(queued, notebook=batch.notebook)
    return dataclasses.replace(batch, items=items)


def unfinished_item(record: Record, *, resend_lost: bool = False) -> Item | None:
    """What finishes a record still on its way: its operation id to collect (pending), or its intent
    to start again with the same Idempotency-Key (queued, or submitting with the answer lost).

    A synchronous request whose answer was lost (the Images API keeps nothing to collect) is sent
    again only with ``resend_lost``: it was billed on arrival, and sending it again bills again."""
    if record.status == "pending":
        return record.operation_id
    if record.answer_lost and not resend_lost:
        return None
    request = record.request()
    if record.status in ("queued", "submitting") and request is not None and record.idempotency_key:
        return Intent(request, record.idempotency_key, resend=record.status == "submitting")
    return None


def unfinished_items(store: Store, busy: Collection[str] = (), *, resend_lost: bool = False) -> list[Item]:
    """Every generation of the store still on its way (``resume --all``): pending operations, then
    the generations never answered, except those whose idempotency keys are ``busy`` (running here)
    and, unless ``resend_lost``, Images API requests whose answer was lost."""
    records = store.pending() + [r for r in store.unsent() if r.idempotency_key not in busy]
    return [item for record in records if (item := unfinished_item(record, resend_lost=resend_lost)) is not None]


def lost_answers(store: Store, busy: Collection[str] = ()) -> list[Record]:
    """Images API requests sent whose answer never came (``resume --all`` leaves them to the user)."""
    return [r for r in store.unsent() if r.answer_lost and r.idempotency_key not in busy]


async def wait_for_starts(status: BatchStatus, limit: float = START_WAIT) -> None:
    """Wait (at most ``limit`` seconds) until every start request of a batch went out and was answered."""
    deadline = time.monotonic() + limit
    while status.unsent and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


#: Start failures after which the service may still have the generation (the answer was lost).
AMBIGUOUS = (errors.ServiceUnavailableError, errors.GenerationTimeoutError)


def final_status(error: errors.YandexArtError) -> str | None:
    """The store status an error settles, or None when the operation may still finish on the server."""
    if isinstance(error, errors.OperationCancelledError):
        return "cancelled"
    if isinstance(error, errors.OperationNotFoundError):
        return "expired"
    if isinstance(error, (errors.OperationFailedError, errors.ContentModerationError)):
        return "failed"
    return None


async def settle_failure(store: Store | None, error: errors.YandexArtError, intent: Intent | None = None) -> None:
    """Record a definitive failure; leave an operation pending, or a start submitting, when the
    service may still have it."""
    if store is None:
        return
    if error.operation_id:
        outcome = final_status(error)
        if outcome is not None:
            await asyncio.to_thread(store.record_failed, error.operation_id, outcome, str(error))
    elif intent is not None and intent.request.api == "images":
        if not isinstance(error, errors.AnswerLostError):  # refused: a synchronous answer is never ambiguous
            store.settle_intent(intent.key, "failed", str(error))
    elif intent is not None and not isinstance(error, AMBIGUOUS):
        store.settle_intent(intent.key, "failed", str(error))  # refused at its start: nothing was made


async def run_batch(
    client: YandexArtClient,
    items: Sequence[Item],
    *,
    status: BatchStatus | None = None,
    timeout: float | None = None,
    on_update: StatusCallback | None = None,
    store: Store | None = None,
    use_cache: bool = True,
    notebook: str | None = None,
    on_item: Callable[[ItemEvent], None] | None = None,
) -> tuple[ImageSet, list[errors.YandexArtError]]:
    """Generate (or collect) every item concurrently; return the images and the errors, in order.

    A request with an explicit seed that the store already answered is served from it (no API
    call) unless ``use_cache`` is false. A cancellation cancels every local task and is re-raised;
    the operations still running on the server stay ``pending`` in the store and in ``status``.
    """
    status = status or BatchStatus(len(items))
    if any(isinstance(item, GenerationRequest) for item in items):
        items = prepare(store, Batch(items, use_cache=use_cache, notebook=notebook), status).items
    if store is not None:
        await asyncio.to_thread(DURATIONS.learn_once, str(store.home), store.durations)
    queued = {item.key for item in items if isinstance(item, Intent)}
    #: What each wait saw (see Progress.observed), kept with the record for the next start-up.
    observed: dict[str, tuple[float, float | None]] = {}

    def notify() -> None:
        if on_update is not None:
            on_update(status)

    def tell(event: ItemEvent) -> None:
        if on_item is not None:
            on_item(event)

    def progress(event: Progress) -> None:
        if event.phase == "retry":
            status.retries += 1
        if event.phase == "done" and event.operation_id:
            status.finished_ids.add(event.operation_id)
        if event.observed is not None and event.operation_id:
            observed[event.operation_id] = event.observed
        notify()

    async def generate(index: int, intent: Intent) -> GeneratedImage:
        def submitting() -> None:  # on the loop, right before the request goes out
            queued.discard(intent.key)
            if intent.request.api == "images":
                status.awaiting_answer.add(intent.key)
            if store is not None:
                store.mark_submitting(intent.key)

        def started(operation_id: str, request: GenerationRequest) -> None:  # on the loop, at once
            status.awaiting_answer.discard(intent.key)
            status.mark_started(operation_id)
            status.unsent -= 1
            if store is not None:
                store.record_started(operation_id, request, notebook=notebook, key=intent.key)
            tell(ItemEvent(index, "running", operation_id))
            notify()

        image = await client.generate(intent.request, timeout=timeout, on_progress=progress, on_started=started,
                                      on_submitting=submitting, idempotency_key=intent.key)
        if store is not None:
            await asyncio.to_thread(store.record_done, image, observed.get(image.operation_id))
        return image

    def keep_lower_bound(operation_id: str) -> None:
        """A wait ended before its operation finished: store how long it was seen running."""
        seen = observed.get(operation_id)
        if store is not None and seen is not None and seen[1] is None and seen[0] > 0:
            store.record_running(operation_id, seen[0])

    async def one(index: int, item: Item) -> GeneratedImage:
        try:
            if isinstance(item, Cached):
                image = await asyncio.to_thread(item.record.to_image, cached=True)
                status.cached += 1
            elif isinstance(item, str):
                tell(ItemEvent(index, "running", item))
                image = await resume(client, item, store=store, timeout=timeout, on_progress=progress)
            else:
                assert isinstance(item, Intent), item
                image = await generate(index, item)
            tell(ItemEvent(index, "done", image.operation_id, image=image))
            if isinstance(item, Cached):
                notify()
            return image
        except errors.YandexArtError as exc:
            if isinstance(exc, errors.GenerationTimeoutError) and exc.operation_id:
                await asyncio.to_thread(keep_lower_bound, exc.operation_id)
            status.failed += 1
            intent = item if isinstance(item, Intent) else None
            if intent is not None and not exc.operation_id:
                status.unsent -= 1
                if not isinstance(exc, errors.AnswerLostError):
                    status.awaiting_answer.discard(intent.key)
            if exc.operation_id and final_status(exc) is not None:
                status.failed_ids.add(exc.operation_id)
            await settle_failure(store, exc, intent)
            tell(ItemEvent(index, "failed", exc.operation_id, error=exc))
            notify()
            raise

    tasks = [asyncio.ensure_future(one(index, item)) for index, item in enumerate(items)]
    try:
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for operation_id in status.pending_ids:
            keep_lower_bound(operation_id)
        if store is not None:
            for key in queued:  # never sent: nothing to collect, and nothing to start after a restart
                store.settle_intent(key, "cancelled", "interrupted before it was sent")
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
    notify()
    return images, failures


async def run_in_view(
    client: YandexArtClient, store: Store | None, batch: Batch, view: BatchView, *,
    status: BatchStatus | None = None,
) -> ImageSet:
    """Run a batch and present it in ``view``: live status, then the pictures and a line per failure.

    Files named by ``batch.out`` are written (a failed save is one more failure; the pictures are
    still shown). One failed item of a one-item batch raises its own error; more raise one
    :class:`~.errors.BatchError` carrying every failure and every image that did arrive.
    """
    status = status or BatchStatus(len(batch.items))
    for item in batch.items:
        if isinstance(item, str):
            status.mark_started(item)
    if status.estimate is None:
        status.estimate = time_left
    ticker = asyncio.ensure_future(_tick(view, status))
    arrived: dict[int, GeneratedImage] = {}

    def on_item(event: ItemEvent) -> None:
        if event.image is not None:
            arrived[event.index] = event.image
        view.item(event)

    try:
        images, failures = await run_batch(
            client, batch.items, status=status, timeout=batch.timeout, on_update=view.progress, store=store,
            use_cache=batch.use_cache, notebook=batch.notebook, on_item=on_item,
        )
    except asyncio.CancelledError:
        view.stopped(status)
        raise
    finally:
        ticker.cancel()
    notes = model_notes([item.request for item in batch.items if isinstance(item, Intent)])
    notes += version_notes(store, images)
    if batch.out and images:
        try:
            numbered = [(index + 1, image, batch.fields[index] if batch.fields else {})
                        for index, image in sorted(arrived.items())]
            notes.append("saved " + ", ".join(str(p) for p in save_all(batch.out, numbered)))
        except errors.StorageError as exc:
            failures.append(exc)
    view.finished(images, failures, notes)
    if len(failures) == 1 and len(batch.items) == 1:
        raise failures[0]
    if failures:
        raise errors.BatchError(failures, images, len(batch.items))
    return images


def model_notes(requests: Sequence[GenerationRequest]) -> list[str]:
    """What the models of a batch could not do as asked, said once each: weights the service documents
    as unsupported, several messages combined into one prompt, a prompt the service rewrote."""
    from ..core.models import WEIGHTS_UNSUPPORTED

    notes = []
    if any(request.weighted for request in requests):
        notes.append(f"⚠ {WEIGHTS_UNSUPPORTED}: the weights were sent, but the pictures may not follow them")
    combined = sorted({request.model.name for request in requests if len(request.messages) > 1
                       and not request.model.messages})
    if combined:
        notes.append(f"ℹ {', '.join(combined)} takes one prompt: the messages were sent joined by '; ' "
                     "(without their weights)")
    return notes


def version_notes(store: Store | None, images: Sequence[GeneratedImage]) -> list[str]:
    """The reproducibility guard: a line when pictures of one batch, or a stored answer and the
    service today, come from different model versions (the same seed then gives another picture)."""
    notes = []
    versions = sorted({image.model_version for image in images if image.model_version})
    if len(versions) > 1:
        notes.append(f"⚠ these pictures come from {len(versions)} model versions ({', '.join(versions)}): "
                     "the same seed on another model version is a different picture")
    if store is not None:
        for image in images:
            latest = store.latest_model_version(image.model_uri) if image.cached and image.model_uri else None
            if latest and image.model_version and latest != image.model_version:
                notes.append(f"⚠ seed {image.seed} was answered from the store, made by model version "
                             f"{image.model_version}; the service's newest answers come from {latest} "
                             "(--no-cache makes it anew)")
    return notes


def time_left(elapsed: float) -> float | None:
    """The learned model's median time still to wait for a generation running ``elapsed`` seconds;
    None until a generation has finished (before that the model knows only its prior)."""
    if DURATIONS.count() == 0:
        return None
    return DURATIONS.distribution().remaining(elapsed)


async def _tick(view: BatchView, status: BatchStatus) -> None:
    """Refresh the view every second, so elapsed time moves while nothing else happens."""
    while True:
        await asyncio.sleep(1.0)
        view.progress(status)


async def resume(
    client: YandexArtClient,
    operation_id: str,
    *,
    store: Store | None = None,
    timeout: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> GeneratedImage:
    """Collect an operation by id: from the store when it is already there, else from the server.

    The stored request (prompt, seed, aspect) is attached to the result; an operation the server
    no longer has is marked expired.
    """
    record = await asyncio.to_thread(store.get, operation_id) if store is not None else None
    if record is not None and record.status == "done" and record.image_path and record.image_path.exists():
        image = await asyncio.to_thread(record.to_image)
        if on_progress is not None:
            on_progress(Progress("done", operation_id, 0.0))
        return image
    if store is not None and record is None:
        await asyncio.to_thread(store.record_started, operation_id, None)
    image = await client.resume(operation_id, timeout=timeout, on_progress=on_progress)
    request = record.request() if record is not None else None
    if request is not None:
        image.seed, image.aspect, image.messages = request.seed, request.aspect, request.messages
        image.model_uri = request.model_uri
    if record is not None:
        image.submitted_at = record.submitted_at
    if store is not None:
        await asyncio.to_thread(store.record_done, image)
    return image


def server_canceller(client: YandexArtClient, store: Store | None) -> Callable[[str], Awaitable[bool]]:
    """Cancel an operation on the server and, when the server confirms, record it as cancelled."""

    async def cancel(operation_id: str) -> bool:
        confirmed = await client.cancel(operation_id)
        if confirmed and store is not None:
            await asyncio.to_thread(store.record_failed, operation_id, "cancelled", "cancelled by the user")
        return confirmed

    return cancel
