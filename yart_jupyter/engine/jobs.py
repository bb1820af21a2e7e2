"""Background jobs of the process (the magic's ``--background`` and the form's clicks).

The registry holds running jobs only; a finished job leaves a one-line summary behind, so its
images are freed once the notebook lets go of them.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import errors
from ..core.redact import get_logger
from ..core.status import BatchStatus
from .arrivals import ARRIVALS

log = get_logger("yart_jupyter.engine.jobs")
#: How many finished jobs ``%yandexart jobs`` still lists.
KEEP_FINISHED = 20


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
        if self.task.cancelled() or isinstance(self.task.exception(), errors.GenerationInterrupted):
            return "cancelled"
        return "failed" if self.task.exception() is not None else "done"

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


@dataclass(frozen=True)
class Finished:
    """What is remembered of a finished job: a line for ``%yandexart jobs``, not its images."""

    id: str
    description: str
    state: str
    summary: str


class JobRegistry:
    """Every running background job of the process, by id (``j1``, ``j2`` ...)."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.finished: collections.deque[Finished] = collections.deque(maxlen=KEEP_FINISHED)
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
            self.jobs.pop(job_id, None)
            self.finished.append(Finished(job_id, description, job.state, status.text()))
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
        """Running jobs by job id, by an operation id they started, or ``all``."""
        if key == "all":
            return self.running()
        if key in self.jobs:
            return [self.jobs[key]]
        return [j for j in self.jobs.values() if key in j.status.operation_ids]

    async def cancel(
        self, jobs: Sequence[Job], cancel_remote: Callable[[str], Awaitable[bool]] | None = None
    ) -> list[str]:
        """Cancel the jobs' tasks and (where the API allows) their server-side operations, but not one
        that another running job waits for too (it joined the same picture): that job still gets it."""
        cancelled_ops: list[str] = []
        for job in jobs:
            pending = job.status.pending_ids
            job.status.cancelled_by_user = True
            job.task.cancel()
            await asyncio.gather(job.task, return_exceptions=True)
            if cancel_remote is not None:
                for op in pending:
                    if self.wanted(op, besides=jobs):
                        continue
                    try:
                        if await cancel_remote(op):
                            cancelled_ops.append(op)
                    except errors.YandexArtError as exc:
                        log.debug("cancel of %s failed: %s", op, exc)
        return cancelled_ops

    def busy_keys(self) -> set[str]:
        """The intents this process is still making: its running jobs', and the Images API answers
        still arriving for a cancelled run (not to be sent again by ``resume --all`` meanwhile)."""
        return {key for job in self.running() for key in job.status.keys} | ARRIVALS.intents()

    def wanted(self, operation_id: str, *, besides: Sequence[Job] = ()) -> list[Job]:
        """The running jobs, other than ``besides``, that wait for ``operation_id``."""
        return [job for job in self.running() if job not in besides and operation_id in job.status.pending_ids]


#: Every background job of the process: the magic's and the form's.
JOBS = JobRegistry()
