"""Waiting for one operation: reads on the loop's scheduler, progress events, a timeout naming the id.

Cancellation (an interrupt, ``asyncio.wait_for``, ``asyncio.timeout``, a TaskGroup) passes
through untouched; only our own time limit becomes :class:`~.errors.GenerationTimeoutError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..core import errors
from ..core.request import GenerationRequest
from ..core.steps import awaited
from .answers import error_for
from .limits import SlidingWindowLimiter
from .operation import Operation
from .polling import PollPolicy
from .read_policy import AdaptivePolicy
from .scheduler import scheduler


@dataclass(frozen=True)
class Progress:
    """What a waiting caller may show: one event of a generation's life."""

    phase: str  # "starting", "started", "polling", "retry", "done", "failed"
    operation_id: str | None
    elapsed: float
    polls: int = 0
    retries: int = 0
    detail: str = ""
    #: What the reads saw, in seconds after the start: (the last read that found the operation
    #: running, the read that found it done); the second is None while it is still running.
    observed: tuple[float, float | None] | None = None


ProgressCallback = Callable[[Progress], None]
RetryCallback = Callable[[int, str, float], None]
#: Reads an operation once, within a quota slot the caller already holds.
Reader = Callable[[str, RetryCallback], Awaitable[Operation]]


async def wait_for_operation(
    read_operation: Reader,
    operation_id: str,
    *,
    policy: PollPolicy,
    limiter: SlidingWindowLimiter,
    limit: float,
    started: float,
    read_now: bool = False,
    on_progress: ProgressCallback | None = None,
) -> Operation:
    """Read until done within ``limit`` seconds of ``started`` (monotonic); raise the operation's error."""
    retries = 0
    polls = 0

    def report(phase: str, detail: str = "", observed: tuple[float, float | None] | None = None) -> None:
        if on_progress is not None:
            on_progress(Progress(phase, operation_id, time.monotonic() - started, polls, retries, detail, observed))

    def retried(attempt: int, reason: str, delay: float) -> None:
        nonlocal retries
        retries += 1
        report("retry", reason)

    watch = None
    if isinstance(policy, AdaptivePolicy) and not read_now:
        watch = policy.watch()
        policy = policy.placed(watch)
    sent = started
    running = 0.0  # when the last read that found it running was sent (seconds after the start)

    def polled(operation: Operation, count: int) -> None:
        nonlocal polls, running
        polls = count
        running = sent - started
        if watch is not None:
            watch.alive(running)
        report("polling", observed=None if read_now else (running, None))  # resumed: times mean nothing

    async def read() -> Operation:
        nonlocal sent
        sent = time.monotonic()  # what the server saw, it saw after this
        return await read_operation(operation_id, retried)

    duration: float | None = None

    def ended_with(operation: Operation) -> None:
        # told by the scheduler before it replans the others: the model must know this one by then
        nonlocal duration
        if operation.error is None:
            duration = sent - started
        if watch is not None:
            watch.finished(duration)

    try:
        operation = await asyncio.wait_for(
            scheduler().wait(read, policy, started=started, limiter=limiter, read_now=read_now, on_poll=polled,
                             on_done=ended_with),
            max(0.0, limit - (time.monotonic() - started)),
        )
    except asyncio.TimeoutError:
        raise errors.GenerationTimeoutError(
            f"Gave up waiting after {time.monotonic() - started:.0f} s (timeout {limit:g} s); "
            "the generation may still finish",
            operation_id=operation_id,
            hint=errors.collect_later(operation_id),
        ) from None
    finally:
        if watch is not None:  # timed out, cancelled or a read failed: never known (else already ended)
            watch.finished(None)
    if operation.error is not None:
        report("failed", operation.error.message)
        raise operation_error(operation)
    report("done", observed=(running, duration) if duration is not None and not read_now else None)
    return operation


def operation_error(operation: Operation) -> errors.YandexArtError:
    """The typed error of a finished operation that failed."""
    assert operation.error is not None
    code, message = operation.error.code, operation.error.message
    mapped = error_for(None, code, message, operation_id=operation.id, grpc_code=code)
    if isinstance(mapped, (errors.ContentModerationError, errors.OperationCancelledError)):
        return mapped
    return errors.OperationFailedError(
        f"The generation failed (code {code}): {message or 'no message'}",
        operation_id=operation.id, grpc_code=code,
    )


#: Called with the operation id (or a picture's id) as soon as it is known; plain or async.
StartedCallback = Callable[[str, GenerationRequest], "Awaitable[None] | None"]
#: Called right before a start request goes out (the quota allows it); plain or async.
SubmittingCallback = Callable[[], "Awaitable[None] | None"]


async def notify_started(callback: StartedCallback | None, operation_id: str, request: GenerationRequest) -> None:
    """Tell a caller the id of its generation (awaiting an async callback), so it can record it first."""
    if callback is not None:
        await awaited(callback(operation_id, request))


async def notify_submitting(callback: SubmittingCallback | None, limiter: SlidingWindowLimiter | None = None,
                            taken: float | None = None) -> None:
    """Tell a caller its start request is about to go out (awaiting an async callback): it records
    that the service may have it from now on, and the request waits until that is written. A caller
    that stops the request there (by raising: refused meanwhile, made meanwhile) gives back the
    quota slot ``taken`` of ``limiter``: nothing was sent."""
    if callback is None:
        return
    try:
        await awaited(callback())
    except BaseException:
        if limiter is not None and taken is not None:
            limiter.release(taken)
        raise


def start_progress(on_progress: ProgressCallback | None) -> tuple[float, RetryCallback]:
    """Report a generation's start to ``on_progress``; return its clock (monotonic) and the retry
    listener that reports each retry with the time since."""
    clock = time.monotonic()
    if on_progress is not None:
        on_progress(Progress("starting", None, 0.0))

    def retried(attempt: int, reason: str, delay: float) -> None:
        if on_progress is not None:
            on_progress(Progress("retry", None, time.monotonic() - clock, retries=attempt, detail=reason))

    return clock, retried
