"""A batch presented in a view: the live status, each item's state, then the pictures, notes and failures.

A face (the magic's status line, the form's job card, a plain script) passes a :class:`BatchView`
and gets the images back; ``out`` files are saved here. Cancellation passes through as
:class:`asyncio.CancelledError`: only the notebook face turns it into a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ..clients.client import YandexArtClient
from ..clients.durations import ANSWERS, DURATIONS
from ..core import errors
from ..core.redact import get_logger
from ..core.request import GenerationRequest
from ..core.status import BatchStatus, Collect
from ..core.steps import awaited, off_thread
from ..media.image import GeneratedImage, ImageSet
from ..media.outputs import save_all
from ..store import Store
from .intents import Batch, Intent, prepare, reuse_notes
from .runner import ItemEvent, run_batch

log = get_logger("yart_jupyter")


class BatchView(Protocol):
    """Where a batch shows itself while it runs and when it ends."""

    def progress(self, status: BatchStatus) -> None:
        """The status changed (called often; throttle if drawing is costly)."""

    def prepare_picture(self, image: GeneratedImage) -> None:
        """A picture arrived: do the costly part of drawing it (previews, thumbnails). Called in a
        worker thread before :meth:`item` tells of it, so the event loop keeps running meanwhile."""

    def prepare_finish(self, images: ImageSet) -> list[str]:
        """The batch ended: do the costly part of its end (files the view writes) in a worker thread;
        return lines for :meth:`finished` to show."""

    def item(self, event: ItemEvent) -> Awaitable[None] | None:
        """One item changed state (a sweep's grid shows each cell's own state; others may ignore it).
        A view that builds widgets returns a coroutine, built a widget per turn of the loop."""

    def finished(
        self, images: ImageSet, failures: Sequence[errors.YandexArtError], notes: Sequence[str],
    ) -> Awaitable[None] | None:
        """The batch ended: its pictures, a line per failure, and notes such as saved files (plain or
        async, as :meth:`item`)."""

    def stopped(self, status: BatchStatus) -> None:
        """The batch was interrupted or cancelled; ``status`` knows what still runs on the server."""


class CallbackView:
    """The view of a face with no display (a script, the ``yart`` command): an optional callback for
    the status, the batch's notes (what a model could not do as asked) to ``on_note`` or as logged
    warnings, and a warning naming what still runs when the batch is stopped (``collect`` is the
    face's own words)."""

    def __init__(self, on_update: Callable[[BatchStatus], None] | None, collect: Collect,
                 on_note: Callable[[str], None] | None = None) -> None:
        self.on_update = on_update
        self.collect = collect
        self.on_note = on_note

    def progress(self, status: BatchStatus) -> None:
        if self.on_update is not None:
            self.on_update(status)

    def prepare_finish(self, images: Sequence[GeneratedImage]) -> list[str]:
        """Nothing to write."""
        return []

    def prepare_picture(self, image: GeneratedImage) -> None:
        """Nothing to draw."""

    def item(self, event: ItemEvent) -> None:
        """Nothing to draw per item."""

    def finished(self, images: ImageSet, failures: Sequence[errors.YandexArtError], notes: Sequence[str]) -> None:
        """The caller gets the images, or the error; the notes are said (weights the model may not
        follow, messages joined into one prompt, pictures from another model version)."""
        for note in notes:
            if self.on_note is not None:
                self.on_note(note)
            else:
                log.warning("%s", note)

    def stopped(self, status: BatchStatus) -> None:
        message, hint = status.interrupted_text(self.collect)
        if status.pending_ids or status.arriving:
            log.warning("%s. %s", message, hint)


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
    if any(isinstance(item, GenerationRequest) for item in batch.items):  # a face that did not record them first
        batch = prepare(store, batch, status)
    for item in batch.items:
        if isinstance(item, str):
            status.mark_started(item)
    if status.estimate is None:
        status.estimate = time_left
    if status.answer_estimate is None:
        status.answer_estimate = answer_time_left
    ticker = asyncio.ensure_future(_tick(view, status))
    arrived: dict[int, GeneratedImage] = {}

    def on_item(event: ItemEvent) -> Awaitable[None] | None:
        if event.image is not None:
            arrived[event.index] = event.image
        return view.item(event)

    try:
        images, failures = await run_batch(
            client, batch.items, status=status, timeout=batch.timeout, on_update=view.progress, store=store,
            use_cache=batch.use_cache, reuse_samples=batch.reuse_samples, notebook=batch.notebook, on_item=on_item,
            prepare_picture=view.prepare_picture,
        )
    except asyncio.CancelledError:
        view.stopped(status)
        raise
    finally:
        ticker.cancel()
    sent = [item.request if isinstance(item, Intent) else item for index, item in enumerate(batch.items)
            if isinstance(item, (Intent, GenerationRequest))  # recorded by a face first, or not (a script)
            and not (index in arrived and arrived[index].cached)]  # the store's answers sent nothing
    notes = model_notes(sent)
    notes += version_notes(store, images)
    notes += reuse_notes(batch)
    notes += joined_notes(status)
    if batch.out and images:
        try:
            numbered = [(index + 1, image, batch.fields[index] if batch.fields else {})
                        for index, image in sorted(arrived.items())]
            notes.append("saved " + ", ".join(str(p) for p in await off_thread(save_all, batch.out, numbered)))
        except errors.StorageError as exc:
            failures.append(exc)
    notes += await off_thread(view.prepare_finish, images)
    await awaited(view.finished(images, failures, notes))
    if len(failures) == 1 and len(batch.items) == 1:
        raise failures[0]
    if failures:
        raise errors.BatchError(failures, images, len(batch.items))
    return images


def joined_notes(status: BatchStatus) -> list[str]:
    """What a run collected that another run was already making (another cell or kernel, a teammate),
    or that a run interrupted before showing it had paid for, so that a researcher who sees no new
    operation knows why it cost nothing."""
    notes = []
    count, unseen = status.joined_count - status.unseen_taken, status.unseen_taken
    if count:
        which = ("this picture was on its" if status.total == 1 else "1 of these pictures was on its" if count == 1
                 else f"{count} of these pictures were on their")
        notes.append(f"ℹ {which} way already (asked for by another run, kernel or teammate): collected "
                     "from there, not paid for again")
    if unseen:
        which = ("this picture was" if status.total == 1 else "1 of these pictures was" if unseen == 1
                 else f"{unseen} of these pictures were")
        notes.append(f"ℹ {which} paid for by a run that was interrupted or gave up waiting before it showed "
                     f"{'it' if unseen == 1 else 'them'}: shown now, not paid for again")
    return notes


def model_notes(requests: Sequence[GenerationRequest]) -> list[str]:
    """What the models of a batch could not do as asked, said once each: weights the service documents
    as unsupported, several messages combined into one prompt, a prompt the service rewrote."""
    from ..core.models import WEIGHTS_UNSUPPORTED

    notes = []
    if any(request.weighted and request.model.messages for request in requests):  # combined ones send none
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


def answer_time_left(elapsed: float) -> float | None:
    """The Images API's median time still to wait for an answer whose request has been out
    ``elapsed`` seconds; None until an answer has come (before that it knows only its prior)."""
    if ANSWERS.count() == 0:
        return None
    return ANSWERS.distribution().remaining(elapsed)


async def _tick(view: BatchView, status: BatchStatus) -> None:
    """Refresh the view every second, so elapsed time moves while nothing else happens."""
    while True:
        await asyncio.sleep(1.0)
        view.progress(status)
