"""The shared engine under the magic and the form: batches, their status, background jobs.

It knows the client and the display-free bookkeeping (which operations are in flight, how many
are done, what was interrupted); the faces only turn its status into something to look at.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .client import Progress, YandexArtClient
from .image import GeneratedImage, ImageSet
from .redact import get_logger
from .request import GenerationRequest
from .scheduler import DURATIONS
from .store import Store

log = get_logger("yart_jupyter.engine")


class GenerationInterrupted(errors.YandexArtError):
    """The user interrupted a wait; the operations named are still running on the server."""


@dataclass
class BatchStatus:
    """Live bookkeeping of one batch of generations."""

    total: int
    started_at: float = field(default_factory=time.monotonic)
    operation_ids: list[str] = field(default_factory=list)
    finished_ids: set[str] = field(default_factory=set)
    failed: int = 0
    retries: int = 0
    cached: int = 0
    #: Set when the user cancelled the job on purpose (not an interrupt of a waiting cell).
    cancelled_by_user: bool = False

    @property
    def done(self) -> int:
        return len(self.finished_ids) + self.cached

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def pending_ids(self) -> list[str]:
        """Operations started on the server and not yet collected."""
        return [op for op in self.operation_ids if op not in self.finished_ids]

    def text(self) -> str:
        """One status line: progress, time, operation ids, retries."""
        parts = [f"YandexART · {self.done}/{self.total} done", f"{self.elapsed:.0f} s"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        pending = self.pending_ids
        if pending:
            more = f" +{len(pending) - 1}" if len(pending) > 1 else ""
            parts.append(f"op {pending[0]}{more}")
        elif not self.operation_ids and self.done < self.total:
            parts.append("starting")
        if self.retries:
            parts.append(f"{self.retries} retr{'y' if self.retries == 1 else 'ies'}")
        return " · ".join(parts)


StatusCallback = Callable[[BatchStatus], None]


def final_status(error: errors.YandexArtError) -> str | None:
    """The store status an error settles, or None when the operation may still finish on the server."""
    if isinstance(error, errors.OperationCancelledError):
        return "cancelled"
    if isinstance(error, errors.OperationNotFoundError):
        return "expired"
    if isinstance(error, (errors.OperationFailedError, errors.ContentModerationError)):
        return "failed"
    return None


async def settle_failure(store: Store | None, error: errors.YandexArtError) -> None:
    """Record a definitive failure; leave the operation pending when it may still finish."""
    outcome = final_status(error)
    if store is not None and error.operation_id and outcome is not None:
        await asyncio.to_thread(store.record_failed, error.operation_id, outcome, str(error))


async def run_batch(
    client: YandexArtClient,
    requests: Sequence[GenerationRequest],
    *,
    status: BatchStatus | None = None,
    timeout: float | None = None,
    on_update: StatusCallback | None = None,
    store: Store | None = None,
    use_cache: bool = True,
    notebook: str | None = None,
) -> tuple[ImageSet, list[errors.YandexArtError]]:
    """Generate every request concurrently; return the images and the errors, in request order.

    With a store, every operation id is committed before its wait starts and every image is
    written there before it is returned; a request with an explicit seed that the store has
    already answered is served from it (no API call) unless ``use_cache`` is false. An
    interruption cancels every local task and raises :class:`GenerationInterrupted` naming the
    operations still running on the server, so none is lost.
    """
    status = status or BatchStatus(len(requests))
    if store is not None:
        await asyncio.to_thread(DURATIONS.learn_once, str(store.home), store.durations)

    def notify() -> None:
        if on_update is not None:
            on_update(status)

    async def started(operation_id: str, request: GenerationRequest) -> None:
        status.operation_ids.append(operation_id)
        if store is not None:
            await asyncio.to_thread(store.record_started, operation_id, request, notebook=notebook)
        notify()

    def progress(event: Progress) -> None:
        if event.phase == "retry":
            status.retries += 1
        if event.phase == "done" and event.operation_id:
            status.finished_ids.add(event.operation_id)
        notify()

    async def one(request: GenerationRequest) -> GeneratedImage:
        if store is not None and use_cache and request.seed_was_given:
            record = await asyncio.to_thread(store.find_cached, request)
            if record is not None:
                image = await asyncio.to_thread(record.to_image, cached=True)
                status.cached += 1
                notify()
                return image
        try:
            image = await client.generate(request, timeout=timeout, on_progress=progress, on_started=started)
        except errors.YandexArtError as exc:
            status.failed += 1
            await settle_failure(store, exc)
            notify()
            raise
        if store is not None:
            await asyncio.to_thread(store.record_done, image)
        return image

    tasks = [asyncio.ensure_future(one(r)) for r in requests]
    try:
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise interrupted(status) from None
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
        return await asyncio.to_thread(record.to_image)
    if store is not None and record is None:
        await asyncio.to_thread(store.record_started, operation_id, None)
    try:
        image = await client.resume(operation_id, timeout=timeout, on_progress=on_progress)
    except errors.YandexArtError as exc:
        await settle_failure(store, exc)
        raise
    request = record.request() if record is not None else None
    if request is not None:
        image.seed, image.aspect, image.messages = request.seed, request.aspect, request.messages
        image.model_uri = request.model_uri
    if record is not None:
        image.submitted_at = record.submitted_at
    if store is not None:
        await asyncio.to_thread(store.record_done, image)
    return image


def interrupted(status: BatchStatus) -> GenerationInterrupted:
    """The error that tells which operations are still running and how to collect them."""
    pending = status.pending_ids
    if status.cancelled_by_user:
        ids = f": {', '.join(pending)} asked to stop on the server" if pending else ""
        return GenerationInterrupted(f"Cancelled{ids}")
    if not pending:
        return GenerationInterrupted("Interrupted; no generation had started on the server")
    ids = ", ".join(pending)
    return GenerationInterrupted(
        f"Interrupted; {len(pending)} operation{'s are' if len(pending) > 1 else ' is'} still running "
        f"on the server: {ids}",
        hint=f"Collect with `%yandexart resume {pending[0]}`"
        + (" (one id at a time, or `%yandexart resume --all`)" if len(pending) > 1 else ""),
    )


class Job:
    """A background generation: awaitable, cancellable, listed by ``%yandexart jobs``."""

    def __init__(self, job_id: str, description: str, status: BatchStatus, task: asyncio.Task[Any]) -> None:
        self.id = job_id
        self.description = description
        self.status = status
        self.task = task
        self.created = time.time()

    @property
    def state(self) -> str:
        if not self.task.done():
            return "running"
        if self.task.cancelled():
            return "cancelled"
        exc = self.task.exception()
        if isinstance(exc, GenerationInterrupted):
            return "cancelled"
        return "failed" if exc is not None else "done"

    def result(self) -> Any:
        """The job's result (raises its error); only once it is done."""
        return self.task.result()

    def __await__(self) -> Generator[Any, None, Any]:
        return self.task.__await__()

    def __repr__(self) -> str:
        return (
            f"<yandexart job {self.id}: {self.description} — {self.state}; "
            f"{self.status.text()}. Await it, or see %yandexart jobs>"
        )


class JobRegistry:
    """Every background job of the process, by id (``j1``, ``j2`` ...)."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)

    def submit(
        self, coro: Coroutine[Any, Any, Any], description: str, status: BatchStatus,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Job:
        """Run ``coro`` as a task on the running loop; errors go to ``on_error``, never to nowhere."""
        job_id = f"j{next(self._ids)}"
        task = asyncio.get_running_loop().create_task(coro, name=f"yandexart-{job_id}")
        job = Job(job_id, description, status, task)
        self.jobs[job_id] = job

        def finished(t: asyncio.Task[Any]) -> None:
            if t.cancelled():
                return
            exc = t.exception()
            if exc is not None:
                log.debug("job %s failed: %s", job_id, exc)
                if on_error is not None:
                    on_error(exc)

        task.add_done_callback(finished)
        return job

    def running(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.state == "running"]

    def find(self, key: str) -> list[Job]:
        """Jobs by job id, by an operation id they started, or ``all`` running ones."""
        if key == "all":
            return self.running()
        if key in self.jobs:
            return [self.jobs[key]]
        return [j for j in self.jobs.values() if key in j.status.operation_ids]

    async def cancel(
        self, jobs: Sequence[Job], cancel_remote: Callable[[str], Awaitable[bool]] | None = None
    ) -> list[str]:
        """Cancel the jobs' tasks and (where the API allows) their server-side operations."""
        cancelled_ops: list[str] = []
        for job in jobs:
            pending = job.status.pending_ids
            job.status.cancelled_by_user = True
            job.task.cancel()
            await asyncio.gather(job.task, return_exceptions=True)
            if cancel_remote is not None:
                for op in pending:
                    try:
                        if await cancel_remote(op):
                            cancelled_ops.append(op)
                    except errors.YandexArtError as exc:
                        log.debug("cancel of %s failed: %s", op, exc)
        return cancelled_ops


#: Every background job of the process: the magic's and the form's.
JOBS = JobRegistry()


def server_canceller(client: YandexArtClient, store: Store | None) -> Callable[[str], Awaitable[bool]]:
    """Cancel an operation on the server and, when the server confirms, record it as cancelled."""

    async def cancel(operation_id: str) -> bool:
        confirmed = await client.cancel(operation_id)
        if confirmed and store is not None:
            await asyncio.to_thread(store.record_failed, operation_id, "cancelled", "cancelled by the user")
        return confirmed

    return cancel
